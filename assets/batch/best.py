"""M5 ``best_result``: weighted quality × cost × speed over the scored outputs
→ BestResultSelected, or NoUsableResult with a refund and a notification."""

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from economics.best import rank_candidates
from resources.events import event, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.refunds import refund_and_notify
from resources.schemas import BEST_RESULT
from resources.settings import Settings

STAGE = "M5"
# The winner and its economics: copied into the best_result row and announced with it.
WINNER = ("task_id", "effect_type", "provider_id", "score", "composite", "cost_usd", "margin")


@dg.asset(group_name="M5_batch", ins=silver_ins("quality_scores", "provider_outputs", "test_batch"), **SILVER_KW)
def best_result(
    context: dg.AssetExecutionContext,
    quality_scores: pl.DataFrame,
    provider_outputs: pl.DataFrame,
    test_batch: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    platform: dg.ResourceParam[Settings],
) -> pl.DataFrame:
    """The winning output of the video (outcome ``selected``), or outcome
    ``no_usable_result`` when every task failed or no output passed the gate: then every
    reserved token is refunded and the user is told."""
    candidates = quality_scores.join(
        provider_outputs.select("task_id", "selection", "duration_ms", "output_key"), on="task_id"
    )
    ranked = rank_candidates(candidates, platform.priority)
    video_id = only_row(test_batch.select("video_id").unique(), "video")["video_id"]
    now = utcnow()
    if ranked.is_empty():
        return _no_result(context, lake, video_id, test_batch, candidates.height, now)
    best = ranked.row(0, named=True)
    row = {
        "video_id": video_id,
        "outcome": "selected",
        "candidates": ranked.height,
        "selected_at": now,
        **{k: best[k] for k in (*WINNER, "duration_ms", "output_key")},
    }
    record_pipeline_events(
        lake,
        [
            event(
                "BestResultSelected",
                video_id,
                STAGE,
                {k: row[k] for k in (*WINNER, "candidates")},
            )
        ],
    )
    context.add_output_metadata(
        {
            "winner": f"{row['effect_type']} on {row['provider_id']}",
            "score": round(row["score"], 4),
            "candidates": row["candidates"],
        }
    )
    return frame([row], BEST_RESULT)


def _no_result(context, lake, video_id, test_batch, outputs, now) -> pl.DataFrame:
    tasks = list(test_batch.iter_rows(named=True))
    refund_and_notify(
        lake,
        STAGE,
        tasks,
        now,
        "no usable result",
        outcome="NoUsableResult",
        details={"outputs": outputs},
        user_id=tasks[0]["user_id"],
        video_id=video_id,
        kind="no_result",
        title="We could not make your effect",
        body=f"None of the {outputs} provider outputs was usable; your "
        f"{sum(t['tokens_reserved'] for t in tasks)} tokens were refunded.",
    )
    context.log.warning(f"video {video_id}: no usable result among {outputs} outputs")
    return frame(
        [{"video_id": video_id, "outcome": "no_usable_result", "candidates": 0, "selected_at": now}], BEST_RESULT
    )
