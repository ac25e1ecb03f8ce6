"""Admin decisions on economic recommendations (the API and the dashboard share this). The
recommendations are lake rows (the economics job writes them); decisions go to the
transactional store and are landed in the lake's ``recommendation_decisions``."""

from __future__ import annotations

import polars as pl

from resources.lake import Lake
from resources.schemas import RECOMMENDATIONS
from resources.services.decisions import DecisionNotFound
from resources.store.client import Store

RECOMMENDATION = "recommendation"


def recommendations_with_status(lake: Lake, store: Store) -> pl.DataFrame:
    """Current recommendations with ``status`` pending / approve / reject, newest first."""
    decided = store.decisions(RECOMMENDATION)
    decisions = pl.DataFrame(
        {"recommendation_id": [d["subject_id"] for d in decided], "decision": [d["decision"] for d in decided]},
        schema={"recommendation_id": pl.String, "decision": pl.String},
    )
    return (
        lake.read(RECOMMENDATIONS)
        .join(decisions, on="recommendation_id", how="left")
        .with_columns(status=pl.col("decision").fill_null("pending"))
        .drop("decision")
        .sort("created_at", descending=True)
    )


def decide_recommendation(
    lake: Lake, store: Store, recommendation_id: str, decision: str, admin: str, reason: str = ""
) -> dict:
    """Record an admin's decision on a recommendation; returns ``recommendation_id,
    decision, admin, reason, decided_at``.

    Raises:
        resources.store.errors.InvalidInput: ``decision`` is not approve/reject.
        DecisionNotFound: no such recommendation in the current cycle's table.
        resources.services.decisions.DecisionConflict: already decided differently.
    """
    if lake.read(RECOMMENDATIONS, pl.col("recommendation_id") == recommendation_id).is_empty():
        raise DecisionNotFound(recommendation_id)
    stored = store.record_decision(RECOMMENDATION, recommendation_id, decision, admin, reason)
    return {
        "recommendation_id": recommendation_id,
        **{k: stored[k] for k in ("decision", "admin", "reason", "decided_at")},
    }
