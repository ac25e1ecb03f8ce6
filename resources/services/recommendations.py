"""Admin decisions on economic recommendations (the API and the dashboard share this)."""

from __future__ import annotations

import polars as pl

from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import RECOMMENDATION_DECISIONS, RECOMMENDATIONS
from resources.services.decisions import DecisionNotFound, record_decision


def recommendations_with_status(lake: Lake) -> pl.DataFrame:
    """Current recommendations with ``status`` pending / approve / reject, newest first."""
    decisions = lake.read(RECOMMENDATION_DECISIONS).select("recommendation_id", "decision")
    return (
        lake.read(RECOMMENDATIONS)
        .join(decisions, on="recommendation_id", how="left")
        .with_columns(status=pl.col("decision").fill_null("pending"))
        .drop("decision")
        .sort("created_at", descending=True)
    )


def decide_recommendation(lake: Lake, recommendation_id: str, decision: str, admin: str, reason: str = "") -> dict:
    """Record an admin's decision on a recommendation.

    Raises:
        ValueError: ``decision`` is not approve/reject.
        DecisionNotFound: no such recommendation in the current cycle's table.
        resources.services.decisions.DecisionConflict: already decided differently.
    """
    rec = lake.read(RECOMMENDATIONS, pl.col("recommendation_id") == recommendation_id)
    if rec.is_empty():
        raise DecisionNotFound(recommendation_id)
    r = rec.row(0, named=True)
    return record_decision(
        lake,
        RECOMMENDATION_DECISIONS,
        {
            "recommendation_id": recommendation_id,
            "type": r["type"],
            "title": r["title"],
            "decision": decision,
            "admin": admin,
            "reason": reason,
            "decided_at": utcnow(),
        },
    )
