"""Telling a user something: the in-app notification and the ``UserNotified`` event that
records it, written by one function so every stage does both the same way.

The notification goes to the transactional store's outbox (``resources/store/outbox.py``),
where the API reads it at once and a deliverer sends it; the store's rows are landed into the
lake's ``bronze/notifications`` in batches (``assets/landing``)."""

from __future__ import annotations

from typing import Any

from resources.events import event, stable_id
from resources.store.client import Store

USER_NOTIFIED = "UserNotified"


def notification_id(video_id: str, kind: str, identity: Any = "") -> str:
    """The stable id of a stage's notification: ``stable_id("notification", video_id, kind,
    identity)``, so a re-run writes it once."""
    return stable_id("notification", video_id, kind, identity)


def notify_user(
    store: Store,
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
    """Queue an in-app notification for ``user_id`` in the store's outbox and return the
    ``UserNotified`` event that records it.

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
            id); see ``notification_id``.
        event_identity: the event's identity within (stage, ``UserNotified``, video);
            defaults to ``kind``.

    Returns:
        A ``pipeline_events`` row with payload ``{notification_id, kind}``.

    Raises:
        Store errors (e.g. ``StoreBusy``); an unknown user violates the outbox's foreign key.
    """
    nid = notification_id(video_id, kind, identity)
    store.notify(user_id, kind, title, body, url or "", correlation_id=video_id, notification_id=nid)
    return event(
        USER_NOTIFIED,
        video_id,
        stage,
        {"notification_id": nid, "kind": kind},
        identity=kind if event_identity is None else event_identity,
    )
