"""Admin decisions on approval requests — one service for the API and the admin dashboard.

A decision is a bronze row keyed by approval id: the first decision stands; repeating it is
a no-op, contradicting it is a conflict. The approval sensor turns it into a publish run.
"""

from __future__ import annotations

import polars as pl

from resources.events import utcnow
from resources.lake import LakeResource
from resources.schemas import APPROVAL_DECISIONS, APPROVAL_REQUESTS

DECISIONS = ("approve", "reject")


class ApprovalNotFound(LookupError):
    """No approval request has this id."""


class ApprovalConflict(ValueError):
    """The request was already decided the other way; ``existing`` holds that decision."""

    def __init__(self, existing: dict):
        super().__init__(f"approval {existing['approval_id']} was already decided: {existing['decision']}")
        self.existing = existing


def pending_requests(lake: LakeResource) -> pl.DataFrame:
    """Approval requests without a decision, oldest first."""
    decided = lake.read(APPROVAL_DECISIONS).select("approval_id")
    return (lake.read(APPROVAL_REQUESTS).join(decided, on="approval_id", how="anti")
            .sort("requested_at"))


def decide(lake: LakeResource, approval_id: str, decision: str, admin: str, reason: str = "") -> dict:
    """Record an admin's decision.

    Returns:
        The decision row (``approval_id, video_id, decision, admin, reason, decided_at``)
        — the existing one when the same decision was already recorded.

    Raises:
        ValueError: ``decision`` is not approve/reject.
        ApprovalNotFound: unknown approval id.
        ApprovalConflict: already decided differently.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    request = lake.read(APPROVAL_REQUESTS, pl.col("approval_id") == approval_id)
    if request.is_empty():
        raise ApprovalNotFound(approval_id)
    existing = lake.read(APPROVAL_DECISIONS, pl.col("approval_id") == approval_id)
    if not existing.is_empty():
        row = existing.row(0, named=True)
        if row["decision"] != decision:
            raise ApprovalConflict(row)
        return row
    row = {"approval_id": approval_id, "video_id": request["video_id"][0], "decision": decision,
           "admin": admin, "reason": reason, "decided_at": utcnow()}
    lake.append(APPROVAL_DECISIONS, pl.DataFrame([row]))
    # Two admins racing: the key-idempotent append keeps the first; report what stands.
    stored = lake.read(APPROVAL_DECISIONS, pl.col("approval_id") == approval_id).row(0, named=True)
    if stored["decision"] != decision:
        raise ApprovalConflict(stored)
    return stored
