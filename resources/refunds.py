"""Giving a video's tokens back: when no output was usable or an admin rejected the result,
every consumed task is refunded and the user is told, by one function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from economics import ledger
from resources.lake import LakeResource
from resources.notifications import notify_user
from resources.schemas import LEDGER_ENTRIES


def refund_and_notify(
    lake: LakeResource, stage: str, tasks: list[dict], at: datetime, reason: str, *,
    user_id: str, video_id: str, kind: str, title: str, body: str,
    identity: Any = "", event_identity: Any = None,
) -> tuple[int, dict]:
    """Refund what each task consumed (``economics.ledger.refund_consumed``: a task is
    refunded at most once, however often this runs) and notify the user.

    Args:
        tasks: ``test_batch`` rows of the video (``task_id``, ``user_id``, ``video_id``,
            ``tokens_reserved``); tasks that reserved nothing (shadow copies) are skipped.
        reason: the ledger entries' reason.
        user_id, video_id, kind, title, body, identity, event_identity: the notification
            (see ``resources.notifications.notify_user``).

    Returns:
        (number of refund entries, the ``UserNotified`` event for the caller to record).
    """
    refunds = [r for t in tasks if (r := ledger.refund_consumed(t, at, reason))]
    if refunds:
        lake.append(LEDGER_ENTRIES, pl.DataFrame(refunds, schema=LEDGER_ENTRIES.schema))
    notified = notify_user(lake, stage, user_id, video_id, kind, title, body,
                           identity=identity, event_identity=event_identity)
    return len(refunds), notified
