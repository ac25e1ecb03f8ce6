"""Admin decisions on economic recommendations, and applying them (the API, the dashboard and
the economics job's unattended applier share this; docs/signals.md "Recommendations that
apply").

The recommendations are lake rows: the economics job's (``gold/recommendations``) and those the
automatic actions raise for an admin (``bronze/bottleneck_actions`` rows recommended or
flagged, while their classification is open: a scale-up over the budget, a warm-pool
schedule, a workflow review). Decisions go to the transactional store (landed in the lake's
``recommendation_decisions``); approving one applies its change
(``economics.applications.change_for``) through ``resources.services.runtime`` — the value and
its audit row in one transaction — and any application can be rolled back.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import polars as pl

from economics.actions import FLAGGED, RECOMMENDED
from economics.applications import ACTION_TYPES, NotApplicable, Stale, change_for, unattended_refusal
from economics.recommendations import RECOMMENDATION_SCHEMA
from resources.catalog import Catalog
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import BOTTLENECK_ACTIONS, BOTTLENECK_CLASSIFICATIONS, RECOMMENDATIONS
from resources.services.decisions import DecisionNotFound
from resources.services.runtime import CONCURRENCY, PROVIDER, apply_change, effective_prices, rollback_change
from resources.store.client import Store
from resources.store.errors import Conflict, DecisionConflict, NotFound

RECOMMENDATION = "recommendation"
AUTO = "auto"


class NotApplied(Conflict):
    """The recommendation cannot be applied as it stands (stale: computed from a value no
    longer in force); nothing was recorded."""

    code = "recommendation_stale"


def action_recommendations(lake: Lake) -> pl.DataFrame:
    """The automatic actions' recommendations awaiting an admin, as RECOMMENDATION_SCHEMA
    rows: recommended or flagged ``bottleneck_actions`` rows whose classification is open."""
    acts = lake.read(BOTTLENECK_ACTIONS, pl.col("outcome").is_in([RECOMMENDED, FLAGGED]))
    if acts.is_empty():
        return pl.DataFrame(schema=RECOMMENDATION_SCHEMA)
    classes = lake.read(BOTTLENECK_CLASSIFICATIONS, pl.col("status") == "open").select(
        "classification_id", "provider_id", "effect_type", "cost_impact_usd_per_hour", "evidence"
    )
    rows = []
    for r in acts.join(classes, on="classification_id").iter_rows(named=True):
        proposal = json.loads(r["proposal"] or "{}")
        cost_day = 24 * float(proposal.get("cost_usd_per_hour") or 0) or float(proposal.get("cost_usd_per_day") or 0)
        saved_day = 24 * float(r["cost_impact_usd_per_hour"] or 0)
        runs = json.loads(r["evidence"] or "{}").get("runs_per_hour") or 0
        rows.append(
            {
                "recommendation_id": r["action_id"],
                "type": ACTION_TYPES.get(r["action"], r["action"].upper()),
                "effect_type": r["effect_type"],
                "provider_id": r["provider_id"],
                "title": proposal.get("title") or r["detail"][:120],
                "rationale": r["detail"],
                "action": json.dumps(proposal, sort_keys=True),
                "projected_margin_impact_usd": round(saved_day - cost_day, 6),
                "projected_quality_impact": None,
                "confidence": None,
                "based_on_executions": int(runs),
                "auto_applicable": False,
                "requires_admin_approval": True,
                "created_at": r["taken_at"],
            }
        )
    return pl.DataFrame(rows, schema=RECOMMENDATION_SCHEMA)


def all_recommendations(lake: Lake) -> pl.DataFrame:
    """The economics job's recommendations and the automatic actions' ones."""
    return pl.concat([lake.read(RECOMMENDATIONS), action_recommendations(lake)], how="vertical_relaxed")


def applications(store: Store, recommendation_ids: list[str] | None = None) -> pl.DataFrame:
    """recommendation_id → its latest application (``change_id``, ``applied_at``,
    ``rolled_back_by``), from the store's audit trail."""
    changes = store.parameter_changes(source=RECOMMENDATION, source_ids=recommendation_ids, limit=10_000)
    schema = {
        "recommendation_id": pl.String,
        "change_id": pl.String,
        "applied_at": pl.Datetime("us", "UTC"),
        "rolled_back_by": pl.String,
    }
    rows = [
        {"recommendation_id": c["source_id"], **{k: c[k] for k in ("change_id", "applied_at", "rolled_back_by")}}
        for c in changes
    ]
    frame = pl.DataFrame(rows, schema=schema)
    return frame.sort("applied_at").group_by("recommendation_id").last()


def recommendations_with_status(lake: Lake, store: Store, *, from_actions: bool = True) -> pl.DataFrame:
    """Current recommendations (with ``from_actions``, the automatic actions' too) with
    ``status`` pending / approve / reject and their application (``change_id``,
    ``applied_at``, ``rolled_back_by``; null when nothing was applied), newest first."""
    decided = store.decisions(RECOMMENDATION)
    decisions = pl.DataFrame(
        {"recommendation_id": [d["subject_id"] for d in decided], "decision": [d["decision"] for d in decided]},
        schema={"recommendation_id": pl.String, "decision": pl.String},
    )
    recs = all_recommendations(lake) if from_actions else lake.read(RECOMMENDATIONS)
    return (
        recs.join(decisions, on="recommendation_id", how="left")
        .join(applications(store, recs["recommendation_id"].to_list()), on="recommendation_id", how="left")
        .with_columns(status=pl.col("decision").fill_null("pending"))
        .drop("decision")
        .sort("created_at", descending=True)
    )


def _change_of(rec: dict, store: Store, catalog: Catalog):
    in_force = {k: r["value"] for k, r in store.parameters().items()}
    return change_for(rec, in_force, effective_prices(catalog, store), catalog.prices())


def _apply(
    rec: dict, lake: Lake, store: Store, manifest_store: ManifestStore, catalog: Catalog, actor: str, reason: str
) -> dict:
    change = _change_of(rec, store, catalog)
    return apply_change(
        lake,
        store,
        manifest_store,
        change.scope,
        change.subject,
        change.name,
        change.after,
        source=RECOMMENDATION,
        source_id=rec["recommendation_id"],
        actor=actor,
        reason=reason or rec["title"],
        expect=change.before,
        cost_usd_per_hour=change.cost_usd_per_hour,
    )


def decide_recommendation(
    lake: Lake,
    store: Store,
    manifest_store: ManifestStore,
    catalog: Catalog,
    recommendation_id: str,
    decision: str,
    admin: str,
    reason: str = "",
) -> dict:
    """Record an admin's decision on a recommendation; approving applies its change (once:
    an approval repeated, or of a recommendation already applied, changes nothing more).

    Returns:
        ``recommendation_id, decision, admin, reason, decided_at``, ``applied`` (the audit
        row of the change made now or before, or None) and ``note`` (why nothing was applied,
        or None).

    Raises:
        resources.store.errors.InvalidInput: ``decision`` is not approve/reject.
        DecisionNotFound: no such recommendation now.
        DecisionConflict: already decided differently.
        NotApplied: stale (computed from a value no longer in force); nothing recorded.
        resources.store.parameters.ParameterConflict: the value changed between reading and
            applying; nothing recorded.
    """
    found = all_recommendations(lake).filter(pl.col("recommendation_id") == recommendation_id)
    if found.is_empty():
        raise DecisionNotFound(recommendation_id)
    rec = found.row(0, named=True)
    try:
        before = store.decision(RECOMMENDATION, recommendation_id)
    except NotFound:
        before = None
    if before is not None and before["decision"] != decision:
        raise DecisionConflict(before)
    applied, note = None, None
    earlier = store.parameter_changes(source=RECOMMENDATION, source_ids=[recommendation_id], limit=1, newest_first=True)
    if decision == "approve" and earlier:
        applied = earlier[0]
    elif decision == "approve":
        try:
            applied = _apply(rec, lake, store, manifest_store, catalog, admin, reason)
        except Stale as exc:
            raise NotApplied(str(exc)) from None
        except NotApplicable as exc:
            note = str(exc)
    stored = store.record_decision(RECOMMENDATION, recommendation_id, decision, admin, reason)
    return {
        "recommendation_id": recommendation_id,
        **{k: stored[k] for k in ("decision", "admin", "reason", "decided_at")},
        "applied": applied,
        "note": note,
    }


def rollback(
    lake: Lake, store: Store, manifest_store: ManifestStore, change_id: str, admin: str, reason: str = ""
) -> dict:
    """Roll back one parameter change (an applied recommendation or an automatic action): its
    value before comes back exactly. Returns the rollback's audit row.

    Raises:
        resources.store.errors.NotFound: no such change.
        resources.store.parameters.ParameterConflict: already rolled back, or a later change
            of the same parameter is in force (roll that one back first).
    """
    return rollback_change(lake, store, manifest_store, change_id, admin, reason or "rolled back by an admin")


def auto_apply(
    lake: Lake,
    store: Store,
    manifest_store: ManifestStore,
    catalog: Catalog,
    registry_concurrency: dict[str, int],
    per_cycle: int,
    max_step: float,
    now: datetime,
) -> list[dict]:
    """Apply the economics job's ``auto_applicable`` recommendations unattended, within the
    guardrails (``economics.applications.unattended_refusal``), largest projected impact
    first; each applied one is recorded as approved by ``auto``.

    Returns:
        One row per recommendation looked at: ``recommendation_id, type, outcome`` (applied |
        deferred | refused | not_applicable | stale | failed), ``detail``, ``change_id``,
        ``decided_at`` (``gold/recommendation_applications`` rows).
    """
    # Only providers the published manifest routes to may be pinned (an unhealthy one left it).
    routable = {
        (e, x["provider_id"]) for e, xs in (manifest_store.read() or {"effects": {}})["effects"].items() for x in xs
    }
    recs = recommendations_with_status(lake, store, from_actions=False).filter(
        pl.col("auto_applicable") & (pl.col("status") == "pending") & pl.col("change_id").is_null()
    )
    recs = recs.sort(["projected_margin_impact_usd", "recommendation_id"], descending=[True, False])
    prices, list_prices = effective_prices(catalog, store), catalog.prices()

    def in_effect(change, value):
        # The value a change moves from or to, defaults included: an unset price is the list
        # price, an unset concurrency the registry's.
        if value is not None:
            return value
        if (change.scope, change.name) == ("effect", "price_tokens"):
            return list_prices.get(change.subject)
        if (change.scope, change.name) == (PROVIDER, CONCURRENCY):
            return registry_concurrency.get(change.subject)
        return None

    out, applied = [], 0
    for rec in recs.iter_rows(named=True):
        row = {"recommendation_id": rec["recommendation_id"], "type": rec["type"], "change_id": None, "decided_at": now}
        try:
            change = _change_of(rec, store, catalog)
        except (NotApplicable, Stale) as exc:
            outcome = "not_applicable" if isinstance(exc, NotApplicable) else "stale"
            out.append({**row, "outcome": outcome, "detail": str(exc)})
            continue
        if change.scope == "routing" and (change.subject, change.after) not in routable:
            out.append(
                {**row, "outcome": "refused", "detail": f"{change.after} is not routed for {change.subject} now"}
            )
            continue
        before = prices.get(change.subject) if change.scope == "effect" else in_effect(change, change.before)
        why = unattended_refusal(
            rec, replace(change, after=in_effect(change, change.after)), before, applied, per_cycle, max_step
        )
        if why is not None:
            out.append({**row, "outcome": "deferred" if applied >= per_cycle else "refused", "detail": why})
            continue
        try:
            done = _apply(rec, lake, store, manifest_store, catalog, AUTO, f"auto-applied: {rec['title']}")
        except Conflict as exc:
            out.append({**row, "outcome": "failed", "detail": f"{type(exc).__name__}: {exc}"})
            continue
        store.record_decision(
            RECOMMENDATION, rec["recommendation_id"], "approve", AUTO, "auto_applicable, within the guardrails"
        )
        applied += 1
        out.append({**row, "outcome": "applied", "detail": rec["title"], "change_id": done["change_id"]})
    return out
