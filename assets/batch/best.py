"""M5 ``best_result``: weighted quality × cost × speed over the scored outputs
→ BestResultSelected and the job's charge (its reservation consumed), or NoUsableResult with
the job refunded and a notification."""

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.lineage import reads
from economics import ledger
from economics.best import rank_candidates
from economics.margin import margin
from economics.pricing import parse_priorities
from resources.events import event, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.refunds import refund_and_notify
from resources.schemas import BEST_RESULT, UPLOADS
from resources.settings import Settings
from resources.store.client import Store
from resources.store.errors import JobNotReserved

STAGE = "M5"
# The winner and its economics: copied into the best_result row and announced with it.
WINNER = ("task_id", "effect_type", "provider_id", "score", "composite", "cost_usd", "margin")


@dg.asset(
    group_name="M5_batch",
    ins=silver_ins("quality_scores", "provider_outputs", "test_batch"),
    deps=reads(UPLOADS),
    **SILVER_KW,
)
def best_result(
    context: dg.AssetExecutionContext,
    quality_scores: pl.DataFrame,
    provider_outputs: pl.DataFrame,
    test_batch: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> pl.DataFrame:
    """The winning output of the video (outcome ``selected``): the result is delivered, so
    the job's reservation is consumed (charged once, whatever the number of tasks); or
    outcome ``no_usable_result`` when every task failed or no output passed the gate: then
    the job is refunded and the user is told."""
    candidates = quality_scores.join(
        provider_outputs.select("task_id", "selection", "duration_ms", "output_key"), on="task_id"
    )
    # The uploader's own weights when they gave some (they may have paid a premium for
    # them, economics.pricing), else the platform's priority.
    upload = lake.read(UPLOADS, pl.col("video_id") == test_batch["video_id"][0])
    weights = parse_priorities(upload["priorities"][0]) if upload.height else None
    ranked = rank_candidates(candidates, weights or platform.priority)
    video_id = only_row(test_batch.select("video_id").unique(), "video")["video_id"]
    now = utcnow()
    if ranked.is_empty():
        return _no_result(context, store, lake, video_id, test_batch, candidates.height)
    best = ranked.row(0, named=True)
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
        "margin": margin(charged, float(quality_scores["cost_usd"].sum() or 0) / platform.token_usd_rate),
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


def _no_result(context, store, lake, video_id, test_batch, outputs) -> pl.DataFrame:
    now = utcnow()
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
    context.log.warning(f"video {video_id}: no usable result among {outputs} outputs")
    return frame(
        [{"video_id": video_id, "outcome": "no_usable_result", "candidates": 0, "selected_at": now}], BEST_RESULT
    )
