"""Token ledger entries (DESIGN.md §6): reserve on dispatch, consume on success, refund on
failure or rejection — each exactly once.

Exactly-once comes from deterministic entry ids: an entry is identified by (kind, task), so
a retried or re-executed run produces the same ids and the lake's insert-if-absent append
(bronze) drops the repeat. A task is settled by consume XOR refund: ``settle`` never emits
a refund for a task that was consumed (and vice versa) because it derives the kind from the
task's single final status.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

RESERVE, CONSUME, REFUND = "reserve", "consume", "refund"


def entry_id(kind: str, task_id: str) -> str:
    """Deterministic ledger entry id for (kind, task): 32 hex chars of sha256."""
    return hashlib.sha256(f"ledger|{kind}|{task_id}".encode()).hexdigest()[:32]


def _entry(kind, user_id, video_id, task_id, tokens, reason, at) -> dict:
    return {
        "entry_id": entry_id(kind, task_id), "user_id": user_id, "correlation_id": video_id,
        "task_id": task_id, "kind": kind, "tokens": int(tokens), "reason": reason,
        "occurred_at": at,
    }


def reserve(tasks: list[dict], at: datetime) -> list[dict]:
    """Reserve entries for dispatched tasks.

    Args:
        tasks: dicts with ``user_id``, ``video_id``, ``task_id``, ``tokens_reserved``
            (shadow copies carry 0 and get no entry: they are never charged).
    """
    return [
        _entry(RESERVE, t["user_id"], t["video_id"], t["task_id"], t["tokens_reserved"],
               "dispatched", at)
        for t in tasks if t["tokens_reserved"] > 0
    ]


def settle(task: dict, status: str, at: datetime, reason: str = "") -> dict | None:
    """The one settling entry for a reserved task: consume when ``status == 'succeeded'``,
    refund otherwise (failed, rejected, timed out). None when nothing was reserved."""
    if task["tokens_reserved"] <= 0:
        return None
    kind = CONSUME if status == "succeeded" else REFUND
    return _entry(kind, task["user_id"], task["video_id"], task["task_id"],
                  task["tokens_reserved"], reason or status, at)


def refund_consumed(task: dict, at: datetime, reason: str) -> dict | None:
    """Refund of a consumed task after the fact (an admin rejected the result): its own
    kind ``refund`` id is the same as a failure refund, so a task is refunded at most once."""
    if task["tokens_reserved"] <= 0:
        return None
    return _entry(REFUND, task["user_id"], task["video_id"], task["task_id"],
                  task["tokens_reserved"], reason, at)
