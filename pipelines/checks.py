"""Asset checks: data invariants verified after each materialization, shown in the Dagster UI.

The checks are partitioned like the asset they check (``partitions_def=videos``, a preview
feature of Dagster 1.13's ``@asset_check``), so each result belongs to one video and the
check reads that video through ``context.partition_key``. They read it through the lake
resource: loading a dynamically partitioned asset as a check input makes the Delta IO manager
load every partition at once, which it cannot do (docs/architecture.md, "Known pitfalls", dagster#12502).
"""

import warnings

import dagster as dg
import polars as pl

from assets.execution.asset import provider_outputs
from assets.lineage import reads
from assets.partitions import videos
from assets.quality.asset import quality_scores
from economics.telemetry import DISPATCHED_EVENT
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, PROVIDER_OUTPUTS, QUALITY_METRICS, QUALITY_SCORES

# Opted into knowingly (see the module docstring); without it every process that loads the
# definitions prints the preview notice.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)


@dg.asset_check(
    asset=provider_outputs,
    partitions_def=videos,
    additional_deps=reads(EXECUTION_EVENTS),
    description="Every dispatched task of the video has exactly one outcome.",
)
def every_task_has_an_outcome(
    context: dg.AssetCheckExecutionContext, lake: dg.ResourceParam[Lake]
) -> dg.AssetCheckResult:
    video_id = context.partition_key
    dispatched = set(
        lake.read(
            EXECUTION_EVENTS, (pl.col("correlation_id") == video_id) & (pl.col("event_type") == DISPATCHED_EVENT)
        )["task_id"]
    )
    recorded = lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == video_id)["task_id"].to_list()
    missing = sorted(dispatched - set(recorded))
    return dg.AssetCheckResult(
        passed=not missing and len(recorded) == len(set(recorded)),
        metadata={
            "video_id": video_id,
            "dispatched": len(dispatched),
            "recorded": len(recorded),
            "missing": ", ".join(missing) or "none",
        },
    )


@dg.asset_check(
    asset=quality_scores,
    partitions_def=videos,
    description="Scores are within [0, 1] and unknown outputs carry confidence 0.",
)
def quality_scores_in_range(
    context: dg.AssetCheckExecutionContext, lake: dg.ResourceParam[Lake]
) -> dg.AssetCheckResult:
    scores = lake.read(QUALITY_SCORES, pl.col("video_id") == context.partition_key)
    cols = [*QUALITY_METRICS, "confidence"]
    out_of_range = scores.filter(pl.any_horizontal([(pl.col(c) < 0) | (pl.col(c) > 1) for c in cols]))
    bad_unknown = scores.filter((pl.col("status") == "unknown") & (pl.col("confidence") != 0))
    return dg.AssetCheckResult(
        passed=out_of_range.is_empty() and bad_unknown.is_empty(),
        metadata={
            "rows": scores.height,
            "out_of_range": out_of_range.height,
            "unknown_with_confidence": bad_unknown.height,
        },
    )


CHECKS = [every_task_has_an_outcome, quality_scores_in_range]
