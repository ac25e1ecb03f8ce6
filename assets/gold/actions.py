"""The automatic actions on bottleneck classifications (docs/signals.md, "Actions"), started by
``bottleneck_action_sensor`` and recorded in ``bronze/bottleneck_actions``: once per
classification and action when it is open, and once more when it clears for the actions that
are undone then (a throttled provider's concurrency, a latency demotion).

What to do is planned by ``economics.actions.plan`` (pure, with its guardrails) and carried
out by ``assets.gold.remediation.execute``; parameter changes go through the store with their
audit rows (``parameter_changes``).
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from assets.gold.remediation import current_state, execute, policy_of, record
from assets.gold.signals import bottleneck_classifications, metric_streams
from assets.lineage import reads
from assets.logs import warn
from economics.actions import APPLY, DONE, FAILED, RESTORE, RESTORED_ON_CLEAR, plan
from resources.catalog import Catalog
from resources.events import utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.providers.client import ProviderRegistry
from resources.schemas import BOTTLENECK_ACTIONS, BOTTLENECK_CLASSIFICATIONS, ROUTING_MANIFESTS
from resources.settings import Settings
from resources.store.client import Store

# Resolved classifications are looked at this long for changes still to restore.
RESTORE_LOOKBACK = timedelta(days=7)


def _phase(acts: pl.DataFrame) -> pl.Expr:
    # Rows written before restores existed have no phase: they are applies.
    return pl.col("phase").fill_null(APPLY) if "phase" in acts.columns else pl.lit(APPLY)


def relevant_classifications(lake: Lake, now) -> pl.DataFrame:
    """The open classifications and those resolved within ``RESTORE_LOOKBACK``."""
    return lake.read(
        BOTTLENECK_CLASSIFICATIONS,
        (pl.col("status") == "open") | (pl.col("resolved_at") > now - RESTORE_LOOKBACK),
    )


def pending(lake: Lake) -> list[str]:
    """Work waiting for ``actions_job``, as ``<classification>:<phase>`` ids: open
    classifications with an automatic action not recorded yet, and resolved ones whose
    undoable action was applied and not restored yet. (The planner may still wait on a
    restore: a provider throttled on another effect type keeps its reduced concurrency.)"""
    classes = relevant_classifications(lake, utcnow())
    acts = lake.read(BOTTLENECK_ACTIONS)
    acts = acts.with_columns(phase=_phase(acts))
    applied = acts.filter(pl.col("phase") == APPLY)
    todo = classes.filter((pl.col("status") == "open") & pl.col("automatic_action").is_not_null()).join(
        applied.select("classification_id", action="action"),
        left_on=["classification_id", "automatic_action"],
        right_on=["classification_id", "action"],
        how="anti",
    )
    undoable = applied.filter(
        pl.col("action").is_in(list(RESTORED_ON_CLEAR))
        & (pl.col("outcome") == DONE)
        & pl.col("change_id").is_not_null()
    )
    restored = acts.filter(pl.col("phase") == RESTORE).select("classification_id", "action")
    cleared = (
        classes.filter(pl.col("status") == "resolved")
        .select("classification_id")
        .join(undoable.select("classification_id", "action"), on="classification_id")
        .join(restored, on=["classification_id", "action"], how="anti")
    )
    return sorted(
        [f"{c}:{APPLY}" for c in todo["classification_id"]] + [f"{c}:{RESTORE}" for c in cleared["classification_id"]]
    )


def taken_actions(lake: Lake) -> pl.DataFrame:
    """classification_id → ``action_taken`` text ("<action>: <outcome> — <detail>"), the
    latest per classification."""
    acts = lake.read(BOTTLENECK_ACTIONS).sort("taken_at")
    return acts.group_by("classification_id").agg(
        action_taken=pl.concat_str("action", pl.lit(": "), "outcome", pl.lit(" — "), "detail").last()
    )


# Also reads its own table (what was done before) and the runtime parameters in the store.
@dg.asset(
    key=["bronze", "bottleneck_actions"],
    deps=[bottleneck_classifications, metric_streams, *reads(ROUTING_MANIFESTS)],
    group_name="bronze",
    kinds={"deltalake"},
)
def bottleneck_actions(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    store: dg.ResourceParam[Store],
    manifest_store: dg.ResourceParam[ManifestStore],
    providers: dg.ResourceParam[ProviderRegistry],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    """Plan the actions due (economics.actions: reduce a throttled provider's concurrency,
    demote a degraded one, tell a user their tokens run out, scale a saturated GPU fleet up
    within budget, recommend a warm pool, flag a workflow) and the restores of cleared ones,
    carry them out and record each; a failed step is recorded ``failed`` (not retried)."""
    now = utcnow()
    policy = policy_of(platform)
    state = current_state(lake, store, manifest_store, providers.registry(), catalog, platform, now)
    steps = plan(relevant_classifications(lake, now), lake.read(BOTTLENECK_ACTIONS), state, policy)
    rows = execute(steps, lake, store, manifest_store, state, policy, now)
    record(lake, rows)
    impact = {s.classification_id: s.impact_usd_per_hour for s in steps}
    for r in rows:
        if r["outcome"] == FAILED:
            warn(
                context,
                f"automatic action {r['action']} ({r['phase']}) of {r['category']} failed: {r['detail']}",
                event_type="automatic_action_failed",
                # What the bottleneck keeps costing while nothing is done about it.
                economic_impact_usd=impact.get(r["classification_id"], 0.0),
                urgency="high",
                operator_action="Read the error in bronze/bottleneck_actions, fix the cause, then take the action "
                "by hand (the runbook of the category) — a failed action is not retried.",
                runbook="docs/runbooks/platform-logs.md#automatic_action_failed",
                classification_id=r["classification_id"],
            )
    outcomes = pl.DataFrame(rows, schema=BOTTLENECK_ACTIONS.schema)["outcome"].value_counts() if rows else None
    return dg.MaterializeResult(
        metadata={
            "actions": len(rows),
            **({r["outcome"]: int(r["count"]) for r in outcomes.iter_rows(named=True)} if outcomes is not None else {}),
        }
    )
