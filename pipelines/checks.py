"""Asset checks: data invariants verified after each materialization, shown in the Dagster UI.

Checks read the run's video partition through the lake resource: loading a dynamically
partitioned asset as a check input makes the Delta IO manager load every partition at once,
which it cannot do (DESIGN.md §3, dagster#12502).
"""

import dagster as dg
import polars as pl

from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, PROVIDER_OUTPUTS, QUALITY_SCORES

SILVER = ["silver"]


def _video_id(context: dg.AssetCheckExecutionContext) -> str:
    return context.run.tags["dagster/partition"]


@dg.asset_check(asset=dg.AssetKey([*SILVER, "provider_outputs"]),
                description="Every dispatched task of the video has exactly one outcome.")
def every_task_has_an_outcome(context: dg.AssetCheckExecutionContext,
                              lake: dg.ResourceParam[Lake]) -> dg.AssetCheckResult:
    video_id = _video_id(context)
    dispatched = set(lake.read(EXECUTION_EVENTS, (pl.col("correlation_id") == video_id)
                               & (pl.col("event_type") == "TaskDispatched"))["task_id"])
    recorded = lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == video_id)["task_id"].to_list()
    missing = sorted(dispatched - set(recorded))
    return dg.AssetCheckResult(
        passed=not missing and len(recorded) == len(set(recorded)),
        metadata={"video_id": video_id, "dispatched": len(dispatched), "recorded": len(recorded),
                  "missing": ", ".join(missing) or "none"},
    )


@dg.asset_check(asset=dg.AssetKey([*SILVER, "quality_scores"]),
                description="Scores are within [0, 1] and unknown outputs carry confidence 0.")
def quality_scores_in_range(context: dg.AssetCheckExecutionContext,
                            lake: dg.ResourceParam[Lake]) -> dg.AssetCheckResult:
    scores = lake.read(QUALITY_SCORES, pl.col("video_id") == _video_id(context))
    cols = ["fidelity", "artifacts", "style_adherence", "temporal_consistency",
            "perceptual_hash_distance", "composite", "confidence"]
    out_of_range = scores.filter(pl.any_horizontal([(pl.col(c) < 0) | (pl.col(c) > 1) for c in cols]))
    bad_unknown = scores.filter((pl.col("status") == "unknown") & (pl.col("confidence") != 0))
    return dg.AssetCheckResult(
        passed=out_of_range.is_empty() and bad_unknown.is_empty(),
        metadata={"rows": scores.height, "out_of_range": out_of_range.height,
                  "unknown_with_confidence": bad_unknown.height},
    )


CHECKS = [every_task_has_an_outcome, quality_scores_in_range]
