"""Admin decisions on approval requests (effects waiting to be published). The approval
sensor turns a decision into a publish run."""

from __future__ import annotations

import polars as pl

from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import APPROVAL_DECISIONS, APPROVAL_REQUESTS
from resources.services.decisions import DecisionConflict, DecisionNotFound, record_decision

__all__ = ["DecisionConflict", "DecisionNotFound", "decide", "pending_requests"]


def pending_requests(lake: Lake) -> pl.DataFrame:
    """Approval requests without a decision, oldest first."""
    decided = lake.read(APPROVAL_DECISIONS).select("approval_id")
    return lake.read(APPROVAL_REQUESTS).join(decided, on="approval_id", how="anti").sort("requested_at")


def decide(lake: Lake, approval_id: str, decision: str, admin: str, reason: str = "") -> dict:
    """Record an admin's decision on an approval request.

    Returns:
        The decision row that stands (``approval_id, video_id, decision, admin, reason,
        decided_at``).

    Raises:
        ValueError: ``decision`` is not approve/reject.
        DecisionNotFound: unknown approval id.
        DecisionConflict: already decided differently.
    """
    request = lake.read(APPROVAL_REQUESTS, pl.col("approval_id") == approval_id)
    if request.is_empty():
        raise DecisionNotFound(approval_id)
    return record_decision(
        lake,
        APPROVAL_DECISIONS,
        {
            "approval_id": approval_id,
            "video_id": request["video_id"][0],
            "decision": decision,
            "admin": admin,
            "reason": reason,
            "decided_at": utcnow(),
        },
    )
