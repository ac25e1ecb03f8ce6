"""Stage 1 over the metric streams: run every detector on every watched series and keep what
fired in the latest intervals, as ``signals`` rows (docs/signals.md).

Each series is one metric of one stream key (scope + provider/effect/instance/user + source),
laid on a complete 5-minute grid (intervals with no runs are NaN), over ``Policy.history``:

* ``cusum`` (gradual drift): baseline = the first half of the history (at most a day),
  re-baselined after each alarm (``detectors.cusum``);
* ``robust_z`` (spikes): against the trailing 2 hours;
* ``holt_winters`` (seasonal): daily season, fitted on all but the last day; only with three
  days of history (two seasons to fit, one to judge);
* ``threshold`` (static limits with hysteresis): p95 latency over the SLO, error rate over
  5 %; cleared below 80 % of the limit (half for error rate) for 3 intervals.

The hysteresis state is recomputed from the history each cycle, so nothing is carried
between runs; a signal is reported for intervals inside the last ``Policy.report_intervals``
(a signal's id is stable, so overlapping cycles write it once). Pure: Polars, NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from economics import detectors
from economics.ids import stable_id
from economics.metric_streams import GRAIN, WATCHED

KEYS = ("scope", "provider_id", "effect_type", "instance_type", "user_id", "source")
UTC_TS = pl.Datetime("us", "UTC")
_SIGNAL_SCHEMA_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "signal_id": pl.String,
    "detected_at": UTC_TS,
    "detector": pl.String,
    "metric": pl.String,
    "scope": pl.String,
    "provider_id": pl.String,
    "effect_type": pl.String,
    "instance_type": pl.String,
    "user_id": pl.String,
    "source": pl.String,
    "value": pl.Float64,
    "baseline": pl.Float64,
    "score": pl.Float64,
    "direction": pl.Int64,
    "limit": pl.Float64,
    "computed_at": UTC_TS,
}
SIGNAL_SCHEMA = pl.Schema(_SIGNAL_SCHEMA_COLUMNS)
# Metrics where a fall, not a rise, is the problem.
LOWER_IS_WORSE = frozenset({"margin"})
DETECTORS = ("cusum", "robust_z", "holt_winters", "threshold")


@dataclass(frozen=True)
class Policy:
    """Detector settings (defaults and sources in the module docstring and docs/signals.md).

    Attributes:
        history: how far back each series is read.
        report_intervals: alarms in this many latest intervals are reported.
        latency_slo_ms: p95 latency SLO per effect type (ms); ``default_latency_slo_ms``
            for the others.
        error_rate_limit: the static error-rate limit (5 %).
        clear_after: K, intervals below the lower limit before an alert clears.
        cusum_k, cusum_h: CUSUM reference value and decision interval (σ units).
        robust_z_limit, robust_z_window: spike cut and trailing window.
        min_points: finite intervals a series needs before any detector runs.
        detectors: which of ``DETECTORS`` run (all by default; a replay runs the seasonal
            one apart, once a day: ``economics.replay``).
    """

    history: timedelta = timedelta(days=3)
    report_intervals: int = 3
    default_latency_slo_ms: float = 120_000.0
    latency_slo_ms: dict[str, float] = field(default_factory=dict)
    error_rate_limit: float = 0.05
    clear_after: int = 3
    cusum_k: float = detectors.CUSUM_K
    cusum_h: float = detectors.CUSUM_H
    robust_z_limit: float = detectors.ROBUST_Z_LIMIT
    robust_z_window: int = detectors.ROBUST_Z_WINDOW
    min_points: int = 12
    detectors: tuple[str, ...] = DETECTORS

    def __post_init__(self):
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(f"unknown detectors {sorted(unknown)}; one of {', '.join(DETECTORS)}")


def _limits(metric: str, effect_type: str | None, policy: Policy) -> tuple[float, float] | None:
    """(raise above, clear below) of the static limit on ``metric``, or None if it has none."""
    if metric == "p95_latency_ms":
        slo = policy.latency_slo_ms.get(effect_type or "", policy.default_latency_slo_ms)
        return slo, 0.8 * slo
    if metric == "error_rate":
        return policy.error_rate_limit, policy.error_rate_limit / 2
    return None


def _grid(
    series: pl.DataFrame, metrics: tuple[str, ...], start: datetime, end: datetime
) -> tuple[list[datetime], dict[str, np.ndarray]]:
    """The stream's ``metrics`` on the complete 5-minute grid [start, end] (NaN: no row)."""
    grid = pl.datetime_range(start, end, GRAIN, eager=True, time_zone="UTC").alias("bucket_start").to_frame()
    laid = grid.join(series.select("bucket_start", *metrics), on="bucket_start", how="left")
    values = {m: laid[m].cast(pl.Float64).fill_null(float("nan")).to_numpy() for m in metrics}
    return laid["bucket_start"].to_list(), values


def _series_signals(x: np.ndarray, metric: str, effect_type: str | None, policy: Policy) -> list[dict]:
    """Alarms of every detector on one series: dicts with index, detector, value, baseline,
    score, direction, limit."""
    out: list[dict] = []
    n = x.size
    worse = -1 if metric in LOWER_IS_WORSE else 1
    baseline = min(n // 2, int(timedelta(days=1) / GRAIN))
    use = set(policy.detectors)
    if "cusum" in use:
        c = detectors.cusum(x, baseline=baseline, k=policy.cusum_k, h=policy.cusum_h)
        for i, d in zip(c.alarms, c.directions, strict=True):
            if d == worse:
                score = c.upper[i] if d > 0 else c.lower[i]
                out.append({"i": i, "detector": "cusum", "baseline": c.target, "score": score, "direction": d})
    if "robust_z" in use:
        r = detectors.robust_z(x, window=policy.robust_z_window, limit=policy.robust_z_limit)
        for i, d in zip(r.alarms, r.directions, strict=True):
            if d == worse:
                past = x[max(0, i - policy.robust_z_window) : i]
                out.append(
                    {
                        "i": i,
                        "detector": "robust_z",
                        "baseline": float(np.nanmedian(past)),
                        "score": r.z[i],
                        "direction": d,
                    }
                )
    season = int(timedelta(days=1) / GRAIN)
    seasonal = "holt_winters" in use and n >= 3 * season
    hw = detectors.holt_winters(x, season=season, train=n - season) if seasonal else None
    if hw is not None:
        for i, d in zip(hw.alarms, hw.directions, strict=True):
            if d == worse:
                z = (x[i] - hw.predicted[i]) / hw.sigma if hw.sigma > 0 else math.inf
                out.append(
                    {"i": i, "detector": "holt_winters", "baseline": hw.predicted[i], "score": z, "direction": d}
                )
    limits = _limits(metric, effect_type, policy) if "threshold" in use else None
    if limits is not None:
        hy = detectors.hysteresis(x, limits[0], limits[1], policy.clear_after)
        for at in np.flatnonzero(hy.active):
            i = int(at)
            out.append(
                {"i": i, "detector": "threshold", "baseline": limits[1], "score": x[i] / limits[0], "direction": 1}
            )
            out[-1]["limit"] = limits[0]
    return out


def history_start(now: datetime, policy: Policy) -> datetime:
    """The first bucket ``detect`` reads at ``now``: ``policy.history`` before the current
    bucket, so a 3-day history is 3 days of complete buckets plus the current one — what the
    seasonal detector needs to fit two days and judge the third."""
    return pl.Series([now]).dt.truncate("5m").item() - policy.history


def detect(streams: pl.DataFrame, now: datetime, policy: Policy | None = None) -> pl.DataFrame:
    """Signals of the watched metrics (``metric_streams.WATCHED``) in the latest intervals.

    Args:
        streams: ``metric_streams`` rows (``STREAM_SCHEMA``) from ``history_start(now)`` on.
        now: evaluation time (UTC); the grid ends at the bucket containing it.
        policy: detector settings.

    Returns:
        ``SIGNAL_SCHEMA`` rows, one per (detector, metric, stream key, interval) that fired in
        the last ``report_intervals`` intervals; a threshold signal is one per interval its
        alert is raised in (so an open alert is visible every cycle).
    """
    policy = policy or Policy()
    end = pl.Series([now]).dt.truncate("5m").item()
    start = history_start(now, policy)
    recent = streams.filter(pl.col("bucket_start") >= start)
    rows: list[dict] = []
    report_from = end - (policy.report_intervals - 1) * GRAIN
    for key, series in recent.group_by(*KEYS):
        ident = dict(zip(KEYS, key, strict=True))
        watched = WATCHED.get(ident["scope"], ())
        first: datetime = series["bucket_start"].min()  # type: ignore[assignment]
        times, values = _grid(series, watched, first, end)
        for metric, x in values.items():
            if np.isfinite(x).sum() < policy.min_points:
                continue
            for hit in _series_signals(x, metric, ident["effect_type"], policy):
                at = times[hit["i"]]
                if at < report_from:
                    continue
                parts = [hit["detector"], metric, *[str(v) for v in key], at.isoformat()]
                rows.append(
                    {
                        "signal_id": stable_id("signal", *parts),
                        "detected_at": at,
                        "detector": hit["detector"],
                        "metric": metric,
                        **ident,
                        "value": float(x[hit["i"]]),
                        "baseline": float(hit["baseline"]),
                        "score": float(hit["score"]),
                        "direction": int(hit["direction"]),
                        "limit": hit.get("limit"),
                        "computed_at": now,
                    }
                )
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA).sort("detected_at", "signal_id")
