"""Unusual combinations the single-series detectors miss: an Isolation Forest (scikit-learn;
Liu, Ting & Zhou 2008) over the provider streams joined with the platform's log counts, whose
findings become ``EconomicAlert`` events naming the features that made them unusual.

A row can be unremarkable on every metric alone (latency a little up, queue a little up,
warnings a little up) and still be one the history has never seen together; the forest
isolates such rows in few splits. It is fitted on the whole history window and scores the
latest intervals; ``IsolationForest``'s ``contamination="auto"`` threshold (score offset
−0.5, the paper's cut) decides. Why a row is unusual: its features' robust z-scores
against the history (median, 1.4826·MAD), the largest |z| first — the forest itself gives
no per-feature attribution. Pure: scikit-learn, Polars, NumPy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from economics.detectors import robust_location_scale
from economics.ids import stable_id

FEATURES = (
    "p95_latency_ms",
    "p95_queue_wait_ms",
    "error_rate",
    "throttle_rate",
    "cost_per_run_usd",
    "cold_start_share",
    "log_warnings",
    "log_errors",
)
# The forest needs a history to know what is usual: below this many rows it stays silent.
MIN_HISTORY = 50
# Features reported per finding, and the |z| a feature needs to be named.
TOP_FEATURES = 3
NAMED_Z = 2.0
STREAM_KEY = ("provider_id", "effect_type", "source")
SEED = 0  # a fixed forest: the same history gives the same findings
UTC_TS = pl.Datetime("us", "UTC")
_ALERT_SCHEMA_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "alert_id": pl.String,
    "raised_at": UTC_TS,
    "kind": pl.String,
    "severity": pl.String,
    "provider_id": pl.String,
    "effect_type": pl.String,
    "source": pl.String,
    "anomaly_score": pl.Float64,
    "features": pl.String,
    "summary": pl.String,
    "computed_at": UTC_TS,
}
ALERT_SCHEMA = pl.Schema(_ALERT_SCHEMA_COLUMNS)


@dataclass(frozen=True)
class EconomicAlert:
    """An unusual combination found by the forest.

    Attributes:
        alert_id: stable id (kind, provider, effect, source, interval).
        raised_at: the interval's start (UTC).
        kind: ``isolation_forest``.
        severity: ``warning`` (score below the cut) or ``critical`` (below −0.6: isolated
            in far fewer splits than usual).
        provider_id, effect_type, source: the stream.
        anomaly_score: ``IsolationForest.score_samples`` (−1 … 0; lower = more unusual).
        features: JSON list of {feature, value, median, z}, the most unusual first.
        summary: one readable line.
        computed_at: when the cycle ran.
    """

    alert_id: str
    raised_at: datetime
    kind: str
    severity: str
    provider_id: str
    effect_type: str
    source: str
    anomaly_score: float
    features: str
    summary: str
    computed_at: datetime


def feature_rows(streams: pl.DataFrame, logs: pl.DataFrame) -> pl.DataFrame:
    """The forest's rows: ``provider_effect`` streams with the count of warning and error log
    lines per interval (platform-wide, or of the provider when the line names one).

    Args:
        streams: ``metric_streams`` rows.
        logs: ``platform_logs`` rows (``logged_at``, ``level``, ``provider_id``).
    """
    rows = streams.filter(pl.col("scope") == "provider_effect")
    if logs.is_empty():
        return rows.with_columns(log_warnings=pl.lit(0.0), log_errors=pl.lit(0.0))
    counts = (
        logs.with_columns(bucket_start=pl.col("logged_at").dt.truncate("5m"))
        .group_by("bucket_start", "provider_id")
        .agg(
            log_warnings=(pl.col("level") == "warning").sum().cast(pl.Float64),
            log_errors=pl.col("level").is_in(["error", "critical", "exception"]).sum().cast(pl.Float64),
        )
    )
    named = counts.filter(pl.col("provider_id").is_not_null())
    platform = counts.filter(pl.col("provider_id").is_null()).drop("provider_id")
    return (
        rows.join(named, on=["bucket_start", "provider_id"], how="left")
        .join(platform, on="bucket_start", how="left", suffix="_all")
        .with_columns(
            log_warnings=pl.col("log_warnings").fill_null(0) + pl.col("log_warnings_all").fill_null(0),
            log_errors=pl.col("log_errors").fill_null(0) + pl.col("log_errors_all").fill_null(0),
        )
        .drop("log_warnings_all", "log_errors_all")
    )


def unusual(rows: pl.DataFrame, since: datetime, now: datetime) -> list[EconomicAlert]:
    """Isolation Forest findings among the rows at or after ``since``.

    Args:
        rows: ``feature_rows`` over the history window (missing features count as the
            history's median).
        since: first interval start to report.
        now: the cycle's time (``computed_at``).

    Returns:
        One ``EconomicAlert`` per unusual recent row, oldest first; none below MIN_HISTORY
        rows.
    """
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]  # heavy import, only here

    if rows.height < MIN_HISTORY:
        return []
    matrix = rows.select([pl.col(f).cast(pl.Float64) for f in FEATURES]).to_numpy()
    centres, scales = [], []
    for j in range(matrix.shape[1]):
        med, s = robust_location_scale(matrix[:, j])
        med = 0.0 if not np.isfinite(med) else med
        matrix[~np.isfinite(matrix[:, j]), j] = med
        centres.append(med)
        scales.append(s if np.isfinite(s) and s > 0 else 0.0)
    forest = IsolationForest(n_estimators=200, contamination="auto", random_state=SEED).fit(matrix)
    recent = (rows["bucket_start"] >= since).to_numpy()
    scores = forest.score_samples(matrix)
    flagged = recent & (forest.predict(matrix) < 0)
    alerts = []
    for i in np.flatnonzero(flagged):
        named: list[dict[str, Any]] = []
        for j, f in enumerate(FEATURES):
            z = (matrix[i, j] - centres[j]) / scales[j] if scales[j] else (0.0 if matrix[i, j] == centres[j] else 99.0)
            named.append({"feature": f, "value": float(matrix[i, j]), "median": centres[j], "z": round(float(z), 2)})
        named.sort(key=lambda d: -abs(d["z"]))
        top = [d for d in named[:TOP_FEATURES] if abs(d["z"]) >= NAMED_Z] or named[:1]
        row = rows.row(int(i), named=True)
        text = ", ".join(f"{d['feature']} {d['value']:.4g} (median {d['median']:.4g}, z {d['z']:+.1f})" for d in top)
        alerts.append(
            EconomicAlert(
                alert_id=stable_id(
                    "alert",
                    "isolation_forest",
                    row["provider_id"],
                    row["effect_type"],
                    row["source"],
                    row["bucket_start"],
                ),
                raised_at=row["bucket_start"],
                kind="isolation_forest",
                severity="critical" if scores[i] < -0.6 else "warning",
                provider_id=row["provider_id"],
                effect_type=row["effect_type"],
                source=row["source"],
                anomaly_score=float(scores[i]),
                features=json.dumps(top),
                summary=f"{row['provider_id']} / {row['effect_type']}: unusual combination — {text}",
                computed_at=now,
            )
        )
    return sorted(alerts, key=lambda a: (a.raised_at, a.alert_id))


def alert_frame(alerts: list[EconomicAlert]) -> pl.DataFrame:
    """``alerts`` as ``ALERT_SCHEMA`` rows."""
    return pl.DataFrame([asdict(a) for a in alerts], schema=ALERT_SCHEMA)
