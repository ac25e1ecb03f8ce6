"""Admin decisions on approval requests (effects waiting to be published). The request is a
lake row (M9 writes it); the decision goes to the transactional store, from where it is
landed in the lake's ``approval_decisions`` and the approval sensor turns it into a publish
run."""

from __future__ import annotations

import polars as pl

from resources.lake import Lake
from resources.schemas import APPROVAL_REQUESTS
from resources.services.decisions import DecisionConflict, DecisionNotFound
from resources.store.client import Store

__all__ = ["DecisionConflict", "DecisionNotFound", "decide", "pending_requests"]

APPROVAL = "approval"


def pending_requests(lake: Lake, store: Store) -> pl.DataFrame:
    """Approval requests without a decision in the store, oldest first."""
    decided = [d["subject_id"] for d in store.decisions(APPROVAL)]
    return lake.read(APPROVAL_REQUESTS).filter(~pl.col("approval_id").is_in(decided)).sort("requested_at")


def decide(lake: Lake, store: Store, approval_id: str, decision: str, admin: str, reason: str = "") -> dict:
    """Record an admin's decision on an approval request.

    Returns:
        The decision that stands: ``approval_id, video_id, decision, admin, reason,
        decided_at``.

    Raises:
        resources.store.errors.InvalidInput: ``decision`` is not approve/reject.
        DecisionNotFound: unknown approval id.
        DecisionConflict: already decided differently.
    """
    request = lake.read(APPROVAL_REQUESTS, pl.col("approval_id") == approval_id)
    if request.is_empty():
        raise DecisionNotFound(approval_id)
    video_id = request["video_id"][0]
    stored = store.record_decision(APPROVAL, approval_id, decision, admin, reason, correlation_id=video_id)
    return {
        "approval_id": approval_id,
        "video_id": video_id,
        **{k: stored[k] for k in ("decision", "admin", "reason", "decided_at")},
    }
