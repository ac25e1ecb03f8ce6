"""Giving a job's tokens back: when no output was usable or an admin rejected the result, the
video's job is refunded in the store's ledger and the user is told, by one function."""

from __future__ import annotations

from typing import Any

from economics import ledger
from resources.events import event, record_pipeline_events
from resources.lake import Lake
from resources.notifications import notify_user
from resources.store.client import Store
from resources.store.errors import JobNotReserved


def refund_and_notify(
    store: Store,
    lake: Lake,
    stage: str,
    reason: str,
    *,
    outcome: str,
    details: dict,
    user_id: str,
    video_id: str,
    kind: str,
    title: str,
    body: str,
    identity: Any = "",
    event_identity: Any = None,
) -> int:
    """Refund the video's job (``economics.ledger.job_id``), record why, and notify the user.

    The store refunds a job at most once: it releases an open reservation, or reverses the
    charge of a consumed job; a repeat returns the first refund. Then the stage's ``outcome``
    event and the ``UserNotified`` event are recorded, in that order.

    Args:
        reason: the refund entry's reason.
        outcome: the event type saying what happened (``NoUsableResult``,
            ``EffectRejected``); its payload is ``details`` plus ``refunded_tokens``.
        user_id, video_id, kind, title, body, identity, event_identity: the notification
            (see ``resources.notifications.notify_user``); ``body`` may contain
            ``{tokens}``, replaced by the tokens given back.

    Returns:
        The tokens given back (0 when the job had reserved nothing).
    """
    try:
        tokens = store.refund(ledger.job_id(video_id), reason)["tokens"]
    except JobNotReserved:  # a job that charged nothing (e.g. only shadow copies) has nothing to give back
        tokens = 0
    record_pipeline_events(
        lake,
        [
            event(outcome, video_id, stage, {**details, "refunded_tokens": tokens}),
            notify_user(
                store,
                stage,
                user_id,
                video_id,
                kind,
                title,
                body.replace("{tokens}", str(tokens)),
                identity=identity,
                event_identity=event_identity,
            ),
        ],
    )
    return tokens
