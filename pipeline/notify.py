"""Webhook notifications of the platform: a JSON POST to ``PIPELINE_NOTIFY_WEBHOOK`` when set.

Used by the clickstream run notifications and the events freshness alerts. Standard library only
(urllib); a refused or unreachable webhook raises, so the sensor that sends fails visibly and
sends again on its next tick instead of losing the notification.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

WEBHOOK_ENV = "PIPELINE_NOTIFY_WEBHOOK"


class NotificationError(RuntimeError):
    """The webhook could not be reached or refused the notification."""


def webhook_url(env: Mapping[str, str] | None = None) -> str | None:
    """The webhook URL, or None when unset. Only http(s): urllib would also open file:// URLs."""
    env = os.environ if env is None else env
    url = env.get(WEBHOOK_ENV, "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL may carry a token: do not echo it.
        raise NotificationError(f"{WEBHOOK_ENV} must be an http:// or https:// URL")
    return url


def post_json(url: str, payload: Mapping[str, Any], timeout: float = 10.0) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "clickflow"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return response.status
    except urllib.error.HTTPError as error:
        raise NotificationError(f"the webhook in {WEBHOOK_ENV} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NotificationError(f"the webhook in {WEBHOOK_ENV} could not be reached: {reason}") from None
