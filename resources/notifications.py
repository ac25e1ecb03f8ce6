"""Telling a user something: the in-app notification and the ``UserNotified`` event that
records it, written by one function so every stage does both the same way."""

from __future__ import annotations

from typing import Any

import polars as pl

from resources.events import event, stable_id, utcnow
from resources.lake import Lake
from resources.schemas import NOTIFICATIONS

USER_NOTIFIED = "UserNotified"


def notify_user(
    lake: Lake,
    stage: str,
    user_id: str,
    video_id: str,
    kind: str,
    title: str,
    body: str,
    *,
    url: str | None = None,
    identity: Any = "",
    event_identity: Any = None,
) -> dict:
    """Append an in-app notification for ``user_id`` and return the ``UserNotified`` event
    that records it.

    The event is returned, not written, so the stage appends it with its own events in one
    commit and in order (what happened, then that the user was told). Events are ordered by
    ``occurred_at``, stamped when built: build the stage's own event first, e.g.
    ``record_pipeline_events(lake, [event("VideoRejected", …), notify_user(…)])``.

    Args:
        stage: the stage telling the user (``M1``…), the event's stage.
        video_id: the correlation id of the notification and of the event.
        kind: machine-readable kind (``video_rejected``, ``no_result``…), in the event's
            payload too.
        identity: tells apart notifications of one kind for one video (e.g. an approval
            id); the notification id is ``stable_id("notification", video_id, kind,
            identity)``, so a re-run notifies once.
        event_identity: the event's identity within (stage, ``UserNotified``, video);
            defaults to ``kind``.

    Returns:
        A ``pipeline_events`` row with payload ``{notification_id, kind}``.
    """
    row = {
        "notification_id": stable_id("notification", video_id, kind, identity),
        "user_id": user_id,
        "correlation_id": video_id,
        "kind": kind,
        "title": title,
        "body": body,
        "url": url,
        "created_at": utcnow(),
    }
    lake.append(NOTIFICATIONS, pl.DataFrame([row], schema=NOTIFICATIONS.schema))
    return event(
        USER_NOTIFIED,
        video_id,
        stage,
        {"notification_id": row["notification_id"], "kind": kind},
        identity=kind if event_identity is None else event_identity,
    )
