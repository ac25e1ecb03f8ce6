"""Per-stage timing of the main chain, read back from the lake's events.

Usage: ``python bench/chain_timing.py`` (after ``effectlake demo``; honours ``LAKE_URI``).
Prints, per video, the seconds from upload to each stage's event, and the stage-to-stage
gaps (which include sensor latency and, before publication, the admin's decision).
"""

import polars as pl

from resources.lake import Lake
from resources.schemas import PIPELINE_EVENTS, UPLOADS
from resources.settings import get_settings

MILESTONES = [
    "VideoIngested",
    "ContentAnalyzed",
    "PromptsGenerated",
    "TestBatchDispatched",
    "TasksFinished",
    "QualityEvaluated",
    "BestResultSelected",
    "ApprovalRequested",
    "EffectPublished",
]


def main() -> None:
    lake = Lake(uri=get_settings().lake_uri)
    uploads = lake.read(UPLOADS).select("video_id", "filename", "uploaded_at")
    # The last task outcome of a video marks the end of execution.
    task_done = pl.col("event_type").is_in(["TaskSucceeded", "TaskFailed"])
    events = (
        lake.read(PIPELINE_EVENTS)
        .with_columns(event_type=pl.when(task_done).then(pl.lit("TasksFinished")).otherwise("event_type"))
        .filter(pl.col("event_type").is_in(MILESTONES))
        .group_by("correlation_id", "event_type")
        .agg(at=pl.col("occurred_at").max())
    )
    wide = events.pivot(on="event_type", index="correlation_id", values="at")
    table = uploads.join(wide, left_on="video_id", right_on="correlation_id", how="inner")
    cols = [m for m in MILESTONES if m in table.columns]
    out = table.select(
        "filename",
        *[((pl.col(m) - pl.col("uploaded_at")).dt.total_milliseconds() / 1000).round(2).alias(m) for m in cols],
    )
    with pl.Config(tbl_cols=-1, tbl_width_chars=250):
        print("seconds from upload to each event")
        print(out)


if __name__ == "__main__":
    main()
