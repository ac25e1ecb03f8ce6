"""M5 ``best_result``: weighted quality × cost × speed over the scored outputs of the job's
target effect (the primary target first: a candidate never wins across effect types)
→ BestResultSelected and the job's charge (its reservation consumed), or NoUsableResult with
the job refunded and a notification.

The weights are the uploader's (the ``priorities`` of the video's ``uploads`` row), the cost
each task's full cost as the economics job states it (``assets.costing.task_costs``)."""

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.costing import task_costs
from assets.lineage import reads
from assets.logs import warn
from assets.uploads import UPLOADS_TABLE, upload_field
from economics import ledger
from economics.best import rank_candidates
from economics.margin import margin
from economics.telemetry import finished_executions
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events, utcnow
from resources.job_status import DONE, mark_job
from resources.lake import Lake
from resources.priorities import Priorities, parse_priorities
from resources.providers.client import ProviderRegistry
from resources.refunds import refund_and_notify
from resources.schemas import BEST_RESULT, EXECUTION_EVENTS
from resources.settings import Settings
from resources.store.client import Store
from resources.store.errors import JobNotReserved

STAGE = "M5"
# The winner and its economics: copied into the best_result row and announced with it.
WINNER = ("task_id", "effect_type", "provider_id", "score", "composite", "cost_usd", "margin")


@dg.asset(
    group_name="M5_batch",
    ins=silver_ins("quality_scores", "provider_outputs", "test_batch", "content_analysis"),
    deps=[UPLOADS_TABLE, *reads(EXECUTION_EVENTS)],
    **SILVER_KW,
)
def best_result(
    context: dg.AssetExecutionContext,
    quality_scores: pl.DataFrame,
    provider_outputs: pl.DataFrame,
    test_batch: pl.DataFrame,
    content_analysis: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    catalog: dg.ResourceParam[Catalog],
    providers: dg.ResourceParam[ProviderRegistry],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> pl.DataFrame:
    """The winning output of the video (outcome ``selected``): the result is delivered, so
    the job's reservation is consumed (charged once, whatever the number of tasks); or
    outcome ``no_usable_result`` when every task failed or no output passed the gate: then
    the job is refunded and the user is told.

    The candidates are ranked one target effect type at a time, in M2's order (the primary
    target first; ``target_ranking``): the winner is the best output of the first target that
    has a usable one, never the output of another effect type that happens to score higher."""
    video_id = only_row(test_batch.select("video_id").unique(), "video")["video_id"]
    now = utcnow()
    costs = selection_costs(lake, catalog, providers, platform, video_id, now)
    candidates = _with_full_costs(
        quality_scores.join(provider_outputs.select("task_id", "selection", "duration_ms", "output_key"), on="task_id"),
        costs,
    )
    targets = only_row(content_analysis, "content_analysis")["target_effect_types"]
    weights = upload_priorities(context, store, video_id, platform.priority).weights()
    ranked = target_ranking(candidates, targets, weights)
    if ranked.is_empty():
        return _no_result(context, store, lake, video_id, test_batch, candidates.height, now)
    best = ranked.row(0, named=True)
    mark_job(store, video_id, DONE)  # the GPU work is over (the admin's decision is not GPU work)
    try:
        charged = store.consume(ledger.job_id(video_id), "delivered", at=now)["tokens"]
    except JobNotReserved:  # a job with nothing to charge (no priced task) reserved nothing
        charged = 0
    row = {
        "video_id": video_id,
        "outcome": "selected",
        "candidates": ranked.height,
        "selected_at": now,
        **{k: best[k] for k in (*WINNER, "duration_ms", "output_key")},
        # The job's margin: its one charge against every task it ran (economics.revenue).
        "margin": margin(charged, float(costs["cost_usd"].sum() or 0) / platform.token_usd_rate),
    }
    record_pipeline_events(
        lake,
        [
            event(
                "BestResultSelected",
                video_id,
                STAGE,
                {**{k: row[k] for k in (*WINNER, "candidates")}, "tokens_charged": charged},
            )
        ],
    )
    context.add_output_metadata(
        {
            "winner": f"{row['effect_type']} on {row['provider_id']}",
            "score": round(row["score"], 4),
            "candidates": row["candidates"],
            "tokens_charged": charged,
        }
    )
    return frame([row], BEST_RESULT)


def target_ranking(candidates: pl.DataFrame, targets: list[str], weights) -> pl.DataFrame:
    """The ranked candidates (``economics.best.rank_candidates``) of the first of ``targets``
    that has a usable one; empty when none has."""
    for effect_type in targets:
        ranked = rank_candidates(candidates.filter(pl.col("effect_type") == effect_type), weights)
        if not ranked.is_empty():
            return ranked
    return rank_candidates(candidates.clear(), weights)


def selection_costs(
    lake: Lake, catalog: Catalog, providers: ProviderRegistry, platform: Settings, video_id: str, now
) -> pl.DataFrame:
    """``task_id, cost_usd, margin`` of the video's finished tasks: the cost the economics
    job's ``execution_costs`` states for them (the same ``task_costs`` over the same telemetry
    events), with the list-price margin."""
    executions = finished_executions(lake.scan(EXECUTION_EVENTS).filter(pl.col("correlation_id") == video_id))
    costs = task_costs(executions, lake, catalog, platform.token_usd_rate, providers.registry().providers, now)
    return costs.select("task_id", "cost_usd", "margin")


def _with_full_costs(candidates: pl.DataFrame, costs: pl.DataFrame) -> pl.DataFrame:
    # M6 records a terminal event for every task before its output row exists, so every
    # candidate has a full cost; M7's compute + partner figure is kept only as a fallback,
    # because a null cost would score null and sort first.
    return (
        candidates.join(costs, on="task_id", how="left", suffix="_full")
        .with_columns(
            cost_usd=pl.coalesce("cost_usd_full", "cost_usd"),
            margin=pl.when(pl.col("cost_usd_full").is_not_null()).then("margin_full").otherwise("margin"),
        )
        .drop("cost_usd_full", "margin_full")
    )


def upload_priorities(context, store: Store, video_id: str, default: str) -> Priorities:
    """The uploader's weights from the video's upload row in the store; the ``default``
    preset (Settings.priority, balanced unless set) when the row or its value is missing, or
    the stored value does not parse (it was validated at the door, so that is logged)."""
    raw = upload_field(store, video_id, "priorities")
    try:
        return parse_priorities(raw) if raw else Priorities.named(default)
    except ValueError as e:
        warn(
            context,
            f"video {video_id}: stored priorities ignored ({e}); using {default}",
            event_type="priorities_ignored",
            economic_impact_usd=0.0,
            urgency="low",
            operator_action="Check the intake's priority validation: a stored value should always parse.",
            runbook="docs/runbooks/platform-logs.md#priorities_ignored",
            video_id=video_id,
        )
        return Priorities.named(default)


def _no_result(context, store, lake, video_id, test_batch, outputs, now) -> pl.DataFrame:
    mark_job(store, video_id, DONE)
    refund_and_notify(
        store,
        lake,
        STAGE,
        "no usable result",
        outcome="NoUsableResult",
        details={"outputs": outputs},
        user_id=test_batch["user_id"][0],
        video_id=video_id,
        kind="no_result",
        title="We could not make your effect",
        body=f"None of the {outputs} provider outputs was usable; your {{tokens}} tokens were refunded.",
    )
    warn(
        context,
        f"video {video_id}: no usable result among {outputs} outputs",
        event_type="no_usable_result",
        # The outputs' compute is spent and the tokens refunded; the lost cost is priced per task in
        # execution_costs (not known in this step), so the line states none of its own.
        economic_impact_usd=0.0,
        urgency="high",
        operator_action="Look at the video's quality_scores gate failures; a provider may be producing broken output.",
        runbook="docs/runbooks/platform-logs.md#no_usable_result",
        video_id=video_id,
    )
    return frame(
        [{"video_id": video_id, "outcome": "no_usable_result", "candidates": 0, "selected_at": now}], BEST_RESULT
    )
