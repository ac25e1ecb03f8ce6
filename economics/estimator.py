"""What a task will cost before it runs (docs/architecture.md, "Economics"): compute seconds from input size, then
the cost model.

Size of a task: ``megapixel_frames = width × height × frames / 1e6`` with ``frames =
duration_s × fps`` — the pixels a per-frame filter has to touch. Per (provider_id,
effect_type), fitted on successful executions:

    log(seconds) = b0 + b1 · log(megapixel_frames) + ε,   ε ~ N(0, σ²)

Log-linear because the runtime of per-pixel work grows about in proportion to pixels × frames
(b1 ≈ 1, but motion search or fixed start-up bend it, so b1 is fitted) and its noise is
multiplicative (a busy host slows a task by a factor, not by a fixed number of seconds), which
a log keeps homoscedastic. The point estimate is exp(fit) — the conditional median, the value a
task is equally likely to exceed or undercut; the mean is exp(σ²/2) times larger. The 80%
interval is statsmodels' observation (prediction) interval at alpha 0.2, exponentiated.

Fallbacks, in order (the level used is returned as ``method``):

1. ``regression`` — at least MIN_REGRESSION_ROWS successes whose sizes span at least
   MIN_SIZE_RATIO (otherwise the slope is not identified).
2. ``provider_rate`` — seconds ∝ size at the median seconds per megapixel-frame of the
   (provider, effect) rows, else of all the provider's rows (≥ MIN_RATE_ROWS); interval
   exp(log median ± t(0.9, n−1) · s · √(1 + 1/n)): the half-width of the normal prediction
   interval of a new log-ratio (s = their sample standard deviation), around the median.
3. ``prior`` — PRIOR_SECONDS_PER_MPF with PRIOR_LOG_SD (measured on the demo lake, below).

Then two documented multiplicative factors on the seconds, ASSUMPTIONS until measured:
``batch_factor`` and ``QUANTIZED_FACTOR``. Cost = ``cost_model.cost_breakdown`` (the terms of
``execution_cost_usd``) at the point and interval seconds; cost grows with seconds, so the
interval carries over. Storage and egress count only if the task gives ``output_bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from economics.cost_model import ProviderCostProfile, RateCard, cost_breakdown

INTERVAL = 0.80
MIN_REGRESSION_ROWS = 10  # 8 residual df: t(0.9, 8) = 1.40 vs 1.28 asymptotic — a usable interval
MIN_SIZE_RATIO = 2.0  # largest / smallest input: below, size noise swamps the slope
MIN_RATE_ROWS = 3  # the fewest log-ratios with a standard deviation worth a t interval
# Demo lake (data/lake, 27 executions of 9 provider × effect pairs on 4 clips, proxies ≤ 480 px,
# cpu-2c and cpu-8c): per-pair median seconds per megapixel-frame from 0.032 (ffmpeg grades) to
# 0.57 (opencv-stylize); geometric mean 0.058, standard deviation of the logs 0.96 — so the
# prior's 80% interval spans ×/÷ 3.4 and covers all but the slowest provider.
PRIOR_SECONDS_PER_MPF = 0.058
PRIOR_LOG_SD = 0.96
# ASSUMPTION (not measured): a share of each task's time is fixed overhead (process start,
# model load, container I/O) that a batch pays once; per-task seconds = (1 − f) + f / batch.
BATCH_OVERHEAD_SHARE = 0.2
# ASSUMPTION (not measured): int8 inference runs ~1.5–2× faster than fp16 on GPUs with int8
# tensor cores; 0.6 ≈ 1 / 1.67. Applied to every quantized task whatever its instance.
QUANTIZED_FACTOR = 0.6
# Frame rate when a task does not give one: the proxy cap (assets/ingest/proxy.py), the most
# frames a provider ever gets per second — so an unknown rate never underestimates.
DEFAULT_FPS = 30.0


def _ols():
    """statsmodels' OLS, imported on first use: importing statsmodels takes ~2 s (scipy), which
    every process importing the economics (API, dashboard, code locations) would pay."""
    from statsmodels.regression.linear_model import OLS

    return OLS


def megapixel_frames(width, height, duration_s, fps=DEFAULT_FPS):
    """Input size in megapixel-frames (floats or polars expressions)."""
    return width * height * duration_s * fps / 1e6


def batch_factor(batch_size):
    """Per-task seconds multiplier of a batch (ASSUMPTION, see BATCH_OVERHEAD_SHARE); a number
    or a polars expression.

    Raises:
        ValueError: a numeric ``batch_size`` < 1 (``estimate_frame`` checks its column).
    """
    if isinstance(batch_size, int | float) and batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    return (1 - BATCH_OVERHEAD_SHARE) + BATCH_OVERHEAD_SHARE / batch_size


@dataclass(frozen=True)
class TaskSpec:
    """A task to price before dispatch.

    Attributes:
        effect_type, provider_id, instance_type: as in the registry and rate card.
        duration_s: input duration in seconds; width, height: pixels of what the provider
            processes (the proxy); fps: frames per second (default DEFAULT_FPS).
        batch_size: tasks run together (≥ 1); quantized: int8 model; spot: spot capacity.
        output_bytes: expected output size, for storage and egress (0 = not priced).
    """

    effect_type: str
    duration_s: float
    width: int
    height: int
    provider_id: str
    instance_type: str
    batch_size: int = 1
    quantized: bool = False
    spot: bool = False
    fps: float = DEFAULT_FPS
    output_bytes: int = 0


@dataclass(frozen=True)
class Estimate:
    """Point estimate (conditional median) and 80% interval of a task's seconds and USD."""

    provider_id: str
    effect_type: str
    method: str  # regression | provider_rate | prior
    n_train: int
    megapixel_frames: float
    compute_seconds: float
    compute_seconds_low: float
    compute_seconds_high: float
    cost_usd: float
    cost_usd_low: float
    cost_usd_high: float


@dataclass(frozen=True)
class _Regression:
    # statsmodels RegressionResults of log(seconds) on [1, log(size)]; statsmodels ships no
    # type information, so Any is all mypy can know of it.
    results: Any
    n: int

    method = "regression"

    def predict(self, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        exog = np.column_stack([np.ones(len(sizes)), np.log(sizes)])
        f = self.results.get_prediction(exog).summary_frame(alpha=1 - INTERVAL)
        return tuple(np.exp(f[c].to_numpy()) for c in ("mean", "obs_ci_lower", "obs_ci_upper"))

    def coefficients(self) -> dict:
        b0, b1 = self.results.params
        return {"intercept": float(b0), "slope": float(b1), "log_sd": float(math.sqrt(self.results.scale))}


@dataclass(frozen=True)
class _Rate:
    """seconds = size × exp(log_rate ± spread); spread = quantile · sd (· √(1 + 1/n))."""

    log_rate: float
    spread: float
    n: int
    method: str

    @classmethod
    def from_ratios(cls, log_ratios: np.ndarray) -> _Rate:
        # The observation interval of an intercept-only OLS is exactly mean ± t(0.9, n−1) · s ·
        # √(1 + 1/n); its half-width is put around the median, which one slow outlier can't drag.
        n = len(log_ratios)
        fit = _ols()(log_ratios, np.ones((n, 1))).fit()
        f = fit.get_prediction(np.ones((1, 1))).summary_frame(alpha=1 - INTERVAL)
        spread = float(f["obs_ci_upper"].iloc[0] - f["mean"].iloc[0])
        return cls(float(np.median(log_ratios)), spread, n, "provider_rate")

    def predict(self, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mid = sizes * math.exp(self.log_rate)
        return mid, mid * math.exp(-self.spread), mid * math.exp(self.spread)

    def coefficients(self) -> dict:
        return {"intercept": self.log_rate, "slope": 1.0, "log_sd": None}


PRIOR = _Rate(math.log(PRIOR_SECONDS_PER_MPF), NormalDist().inv_cdf(0.5 + INTERVAL / 2) * PRIOR_LOG_SD, 0, "prior")


def _size_expr(df: pl.DataFrame) -> pl.Expr:
    if "megapixel_frames" in df.columns:
        return pl.col("megapixel_frames")
    if "frames" in df.columns:  # one second at 1 fps is one frame
        return megapixel_frames(pl.col("width"), pl.col("height"), pl.col("frames"), 1.0)
    fps = pl.col("fps") if "fps" in df.columns else pl.lit(DEFAULT_FPS)
    return megapixel_frames(pl.col("width"), pl.col("height"), pl.col("duration_s"), fps)


def training_rows(provider_outputs: pl.DataFrame, ingested_video: pl.DataFrame) -> pl.DataFrame:
    """Estimator history from lake tables: ``provider_outputs`` joined to the proxy each
    provider processed (``ingested_video.proxy_width/proxy_height`` and ``frame_count``).

    Returns:
        ``provider_id, effect_type, status, compute_seconds, width, height, frames``.
    """
    proxies = ingested_video.select("video_id", width="proxy_width", height="proxy_height", frames="frame_count")
    return provider_outputs.join(proxies, on="video_id", how="inner").select(
        "provider_id", "effect_type", "status", "compute_seconds", "width", "height", "frames"
    )


class CostEstimator:
    """Fitted size → seconds models per (provider_id, effect_type); see the module docstring.

    Build with ``CostEstimator.fit(history)``.
    """

    def __init__(self, pairs: dict[tuple[str, str], _Regression | _Rate], providers: dict[str, _Rate]):
        self._pairs = pairs
        self._providers = providers

    @classmethod
    def fit(cls, history: pl.DataFrame) -> CostEstimator:
        """Fit on past executions.

        Args:
            history: ``provider_id``, ``effect_type``, ``compute_seconds`` and the size as
                ``megapixel_frames``, or ``width``, ``height`` and ``frames`` or
                ``duration_s`` (+ optional ``fps``). Only rows with ``status ==
                'succeeded'`` (when the column exists) and positive seconds and size are
                used: a failed task's seconds say nothing about a successful one's.
        """
        ok = pl.col("status") == "succeeded" if "status" in history.columns else pl.lit(True)
        rows = (
            history.filter(ok)
            .with_columns(_size=_size_expr(history))
            .filter((pl.col("compute_seconds") > 0) & (pl.col("_size") > 0))
            .with_columns(_log_s=pl.col("compute_seconds").log(), _log_x=pl.col("_size").log())
        )
        pairs: dict[tuple[str, str], _Regression | _Rate] = {}
        for (provider_id, effect_type), g in rows.group_by("provider_id", "effect_type"):
            log_s, log_x = g["_log_s"].to_numpy(), g["_log_x"].to_numpy()
            if len(g) >= MIN_REGRESSION_ROWS and np.ptp(log_x) >= math.log(MIN_SIZE_RATIO):
                pairs[(provider_id, effect_type)] = _Regression(
                    _ols()(log_s, np.column_stack([np.ones(len(g)), log_x])).fit(), len(g)
                )
            elif len(g) >= MIN_RATE_ROWS:
                pairs[(provider_id, effect_type)] = _Rate.from_ratios(log_s - log_x)
        providers = {
            provider_id: _Rate.from_ratios((g["_log_s"] - g["_log_x"]).to_numpy())
            for (provider_id,), g in rows.group_by("provider_id")
            if len(g) >= MIN_RATE_ROWS
        }
        return cls(pairs, providers)

    def _model(self, provider_id: str, effect_type: str) -> _Regression | _Rate:
        return self._pairs.get((provider_id, effect_type)) or self._providers.get(provider_id) or PRIOR

    def coefficients(self) -> pl.DataFrame:
        """Per fitted (provider_id, effect_type): ``method, n, intercept, slope, log_sd`` and
        ``seconds_per_mpf`` (median seconds of a 1-megapixel-frame task = exp(intercept))."""
        rows = [
            {"provider_id": p, "effect_type": e, "method": m.method, "n": m.n, **m.coefficients()}
            for (p, e), m in sorted(self._pairs.items())
        ]
        schema = {
            "provider_id": pl.String,
            "effect_type": pl.String,
            "method": pl.String,
            "n": pl.Int64,
            "intercept": pl.Float64,
            "slope": pl.Float64,
            "log_sd": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema).with_columns(seconds_per_mpf=pl.col("intercept").exp())

    def estimate(
        self,
        task: TaskSpec,
        rate_card: RateCard,
        profile: ProviderCostProfile | None = None,
    ) -> Estimate:
        """Seconds and USD of one task with 80% intervals (``estimate_frame`` of one row).

        Raises:
            KeyError: the instance type is not on the rate card.
            ValueError: non-positive size or batch size < 1.
        """
        row = self.estimate_frame(
            pl.DataFrame([asdict(task)]), rate_card, {task.provider_id: profile} if profile else None
        )
        return Estimate(**row.select(*Estimate.__dataclass_fields__).row(0, named=True))

    def estimate_frame(
        self,
        tasks: pl.DataFrame,
        rate_card: RateCard,
        profiles: Mapping[str, ProviderCostProfile] | None = None,
    ) -> pl.DataFrame:
        """Estimate every row of ``tasks``.

        Args:
            tasks: TaskSpec fields as columns (optional ones may be missing or null and take
                the TaskSpec defaults); other columns (e.g. ``task_id``) are kept.
            rate_card: instance prices; profiles: provider → cost profile (partner fee per
                call, cold start, utilisation; missing = a local adapter).

        Returns:
            ``tasks`` plus every Estimate field but ``provider_id``/``effect_type`` (already
            there), one row per task, in order.

        Raises:
            KeyError: an instance type is not on the rate card.
            ValueError: a non-positive size or a batch size < 1.
        """
        optional = {f.name: f.default for f in TaskSpec.__dataclass_fields__.values() if f.default is not MISSING}
        df = tasks.with_columns(
            (pl.col(c).fill_null(v) if c in tasks.columns else pl.lit(v)).alias(f"_{c}") for c, v in optional.items()
        ).with_columns(
            _row=pl.int_range(pl.len(), dtype=pl.Int64),
            megapixel_frames=megapixel_frames(
                pl.col("width"), pl.col("height"), pl.col("duration_s"), pl.col("_fps")
            ).cast(pl.Float64),
        )
        if not (df["megapixel_frames"] > 0).all():
            raise ValueError("task size must be positive (width, height, duration_s, fps)")
        if not (df["_batch_size"] >= 1).all():
            raise ValueError("batch_size must be ≥ 1")
        predicted = pl.DataFrame(
            schema={
                "_row": pl.Int64,
                "method": pl.String,
                "n_train": pl.Int64,
                "_mid": pl.Float64,
                "_low": pl.Float64,
                "_high": pl.Float64,
            }
        )
        for (provider_id, effect_type), g in df.group_by("provider_id", "effect_type"):
            model = self._model(provider_id, effect_type)
            mid, low, high = model.predict(g["megapixel_frames"].to_numpy())
            part = {
                "_row": g["_row"],
                "method": model.method,
                "n_train": model.n,
                "_mid": mid,
                "_low": low,
                "_high": high,
            }
            predicted = pl.concat([predicted, pl.DataFrame(part, schema=predicted.schema)])
        quantized = pl.when(pl.col("_quantized")).then(QUANTIZED_FACTOR).otherwise(1.0)
        factor = batch_factor(pl.col("_batch_size")) * quantized
        df = (
            df.join(predicted, on="_row", how="left")
            .sort("_row")
            .with_columns(
                compute_seconds=pl.col("_mid") * factor,
                compute_seconds_low=pl.col("_low") * factor,
                compute_seconds_high=pl.col("_high") * factor,
            )
        )
        per_call = {p: prof.partner_usd_per_call for p, prof in (profiles or {}).items()}
        billed = df.select(
            "provider_id",
            "instance_type",
            spot="_spot",
            output_bytes="_output_bytes",
            partner_cost_usd=pl.col("provider_id").replace_strict(per_call, default=0.0, return_dtype=pl.Float64),
        )
        costs = {
            f"cost_usd{q}": cost_breakdown(
                billed.with_columns(compute_seconds=df[f"compute_seconds{q}"]), rate_card, profiles=profiles
            )["cost_usd"]
            for q in ("", "_low", "_high")
        }
        internal = ["_row", "_mid", "_low", "_high", *(f"_{c}" for c in optional)]
        return df.with_columns(**costs).drop(internal)


def estimate_accuracy(
    estimates: pl.DataFrame,
    actuals: pl.DataFrame,
    *,
    metric: str = "compute_seconds",
    on: str = "task_id",
) -> pl.DataFrame:
    """How good past estimates were, per provider × effect type.

    Args:
        estimates: ``on``, ``provider_id``, ``effect_type``, ``metric``, ``{metric}_low``,
            ``{metric}_high`` (e.g. ``estimate_frame`` output with a ``task_id``).
        actuals: ``on`` and ``metric`` (the measured value). Rows whose actual is null or
            ≤ 0 are dropped (a percentage error of zero is undefined).
        metric: ``compute_seconds`` or ``cost_usd`` (any column pair named this way).

    Returns:
        ``provider_id, effect_type, n (Int64), mape, p90_ape`` (absolute percentage errors as
        fractions: 0.1 = 10%) and ``coverage`` (share of actuals inside [low, high]; near
        0.8 for a calibrated 80% interval), sorted by provider and effect.
    """
    est = estimates.select(
        on,
        "provider_id",
        "effect_type",
        _est=pl.col(metric),
        _low=pl.col(f"{metric}_low"),
        _high=pl.col(f"{metric}_high"),
    )
    joined = (
        est.join(actuals.select(on, _act=pl.col(metric)), on=on, how="inner")
        .filter(pl.col("_act") > 0)
        .with_columns(_ape=(pl.col("_est") - pl.col("_act")).abs() / pl.col("_act"))
    )
    return (
        joined.group_by("provider_id", "effect_type")
        .agg(
            n=pl.len().cast(pl.Int64),
            mape=pl.col("_ape").mean(),
            p90_ape=pl.col("_ape").quantile(0.9, interpolation="linear"),
            coverage=((pl.col("_act") >= pl.col("_low")) & (pl.col("_act") <= pl.col("_high"))).mean(),
        )
        .sort("provider_id", "effect_type")
    )
