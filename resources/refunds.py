"""Giving a video's tokens back: when no output was usable or an admin rejected the result,
every consumed task is refunded and the user is told, by one function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from economics import ledger
from resources.events import event, record_pipeline_events
from resources.lake import Lake
from resources.notifications import notify_user
from resources.schemas import LEDGER_ENTRIES


def refund_and_notify(
    lake: Lake,
    stage: str,
    tasks: list[dict],
    at: datetime,
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
    """Refund what each task consumed, record why, and notify the user.

    Refunds come from ``economics.ledger.refund_consumed``: one entry id per task, so a
    task is refunded at most once however often this runs. Then the stage's ``outcome``
    event and the ``UserNotified`` event are recorded, in that order.

    Args:
        tasks: ``test_batch`` rows of the video (``task_id``, ``user_id``, ``video_id``,
            ``tokens_reserved``); tasks that reserved nothing (shadow copies) are skipped.
        reason: the ledger entries' reason.
        outcome: the event type saying what happened (``NoUsableResult``,
            ``EffectRejected``); its payload is ``details`` plus ``refunded_tasks``.
        user_id, video_id, kind, title, body, identity, event_identity: the notification
            (see ``resources.notifications.notify_user``).

    Returns:
        The number of refund entries (tasks that had reserved tokens).
    """
    refunds = [r for t in tasks if (r := ledger.refund_consumed(t, at, reason))]
    if refunds:
        lake.append(LEDGER_ENTRIES, pl.DataFrame(refunds, schema=LEDGER_ENTRIES.schema))
    record_pipeline_events(
        lake,
        [
            event(outcome, video_id, stage, {**details, "refunded_tasks": len(refunds)}),
            notify_user(
                lake, stage, user_id, video_id, kind, title, body, identity=identity, event_identity=event_identity
            ),
        ],
    )
    return len(refunds)
