"""How accurate the cost estimator would have been: leave-one-video-out backtest.

Each video's tasks are estimated by a model fitted on every *other* video's executions —
what the estimator could have known before that video ran — and compared with what was
measured. Videos are the unit left out because tasks of one video share its size and
content; leaving single tasks out would leak that into the fit.
"""

from __future__ import annotations

import polars as pl

from economics.cost_model import RateCard
from economics.estimator import CostEstimator, estimate_accuracy

TASK_COLUMNS = (
    "task_id",
    "video_id",
    "provider_id",
    "effect_type",
    "instance_type",
    "compute_seconds",
    "status",
    "width",
    "height",
    "frames",
    "fps",
)


def backtest_estimates(executions: pl.DataFrame, rate_card: RateCard, max_videos: int = 200) -> pl.DataFrame:
    """Out-of-sample estimates for the executions of the latest ``max_videos`` videos.

    Args:
        executions: one row per task with TASK_COLUMNS (``width``/``height``/``frames``/
            ``fps`` of the proxy the provider processed).
        max_videos: cap on the videos evaluated (one fit each), newest by row order last.

    Returns:
        ``estimate_frame`` output (``compute_seconds``, ``_low``, ``_high``, ``method``…) with
        ``task_id``, for the succeeded tasks of the evaluated videos.
    """
    ok = executions.filter((pl.col("status") == "succeeded") & (pl.col("compute_seconds") > 0))
    videos = ok["video_id"].unique(maintain_order=True).to_list()[-max_videos:]
    frames = []
    for video_id in videos:
        train = ok.filter(pl.col("video_id") != video_id)
        test = ok.filter(pl.col("video_id") == video_id)
        model = CostEstimator.fit(train)
        tasks = test.select(
            "task_id",
            "provider_id",
            "effect_type",
            "instance_type",
            "width",
            "height",
            "fps",
            duration_s=pl.col("frames") / pl.col("fps"),
        )
        frames.append(model.estimate_frame(tasks, rate_card))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def estimate_accuracy_backtest(executions: pl.DataFrame, rate_card: RateCard, max_videos: int = 200) -> pl.DataFrame:
    """Per provider × effect type: n, MAPE, p90 absolute percentage error and coverage of the
    80% interval, of compute-seconds estimates in the leave-one-video-out backtest."""
    estimates = backtest_estimates(executions, rate_card, max_videos)
    if estimates.is_empty():
        return pl.DataFrame(
            schema={
                "provider_id": pl.String,
                "effect_type": pl.String,
                "n": pl.Int64,
                "mape": pl.Float64,
                "p90_ape": pl.Float64,
                "coverage": pl.Float64,
            }
        )
    return estimate_accuracy(estimates, executions.select("task_id", "compute_seconds"))
