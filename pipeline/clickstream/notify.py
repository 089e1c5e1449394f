"""Run notifications: a log line always, and a JSON POST to ``PIPELINE_NOTIFY_WEBHOOK`` when set.

The seed had an AWS Lambda watch its metadata folder to send a notification; here the run-status
sensors call :func:`notify`. Standard library only (urllib).
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
        headers={"Content-Type": "application/json", "User-Agent": "clickflow-clickstream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return response.status
    except urllib.error.HTTPError as error:
        raise NotificationError(f"the webhook in {WEBHOOK_ENV} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NotificationError(f"the webhook in {WEBHOOK_ENV} could not be reached: {reason}") from None


def notify(log, payload: Mapping[str, Any], env: Mapping[str, str] | None = None) -> bool:
    """Log the notification; POST it when the webhook is configured. Returns True if posted.

    A failed POST raises, so the sensor tick fails visibly instead of losing the notification.
    """
    summary = f"clickstream run {payload.get('run_id')} {payload.get('status')}"
    if payload.get("days"):
        summary += f" for {payload['days']}"
    if payload.get("message"):
        summary += f": {payload['message']}"
    (log.error if payload.get("status") == "FAILURE" else log.info)(summary)
    url = webhook_url(env)
    if url is None:
        return False
    post_json(url, payload)
    return True
