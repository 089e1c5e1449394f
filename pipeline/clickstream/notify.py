"""Run notifications: a log line always, and a JSON POST to ``PIPELINE_NOTIFY_WEBHOOK`` when set.

The seed had an AWS Lambda watch its metadata folder to send a notification; here the run-status
sensors call :func:`notify`. The webhook itself is the platform's (:mod:`pipeline.notify`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.notify import WEBHOOK_ENV, NotificationError, post_json, webhook_url

__all__ = ["WEBHOOK_ENV", "NotificationError", "notify", "post_json", "webhook_url"]


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
