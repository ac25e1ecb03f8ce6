"""The economic engine's gold assets (signals_job, every 5 minutes and after each economics
cycle; docs/signals.md): metric streams → signals and Isolation Forest alerts → bottleneck
classifications. The logic is in ``economics`` (metric_streams, signal_detection, outliers,
bottlenecks); these assets read the lake, call it, and write the result."""

from datetime import datetime

import dagster as dg
import polars as pl

from assets.gold.logs import platform_logs
from assets.lineage import reads
from economics.bottlenecks import EVIDENCE_WINDOW, classify, evidence_for
from economics.metric_streams import (
    EXECUTION_COLUMNS,
    GRAIN,
    LEAD_IN,
    lead_in_covers,
    recompute_from,
    recomputed,
    streams_in_chunks,
    with_costs,
)
from economics.outliers import alert_frame, feature_rows, unusual
from economics.signal_detection import Policy, detect, history_start
from economics.telemetry import latest_outcomes
from resources.catalog import Catalog
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import (
    BOTTLENECK_CLASSIFICATIONS,
    ECONOMIC_ALERTS,
    EXECUTION_COSTS,
    EXECUTION_EVENTS,
    LEDGER_ENTRIES,
    METRIC_STREAMS,
    PLATFORM_LOGS,
    SIGNALS,
)
from resources.settings import Settings

GOLD = {"key_prefix": ["gold"], "group_name": "signals", "kinds": {"polars", "deltalake"}}
POLICY = Policy()
# The identity columns latest_outcomes always returns (the rest are asked for).
_IDENTITY = ("task_id", "provider_id", "effect_type", "finished_at")


def _since(now):
    # The bucket boundary the detectors' history starts at: every bucket recomputed is whole.
    return history_start(now, POLICY)


class StreamsConfig(dg.Config):
    """``full_refresh``: recompute the whole history window instead of the last hour (after
    events that arrived more than ``metric_streams.LATE_MARGIN`` late, or a rate-card change)."""

    full_refresh: bool = False


def streams_to_write(
    lake: Lake, now: datetime, keep_warm_seconds: float, full_refresh: bool = False
) -> tuple[pl.DataFrame, datetime]:
    """The ``metric_streams`` rows a cycle at ``now`` (re)writes, and the first bucket of its
    execution scopes: from ``metric_streams.recompute_from`` (the last hour before the newest
    bucket written; the whole 3-day window on the first cycle or a full refresh), reading
    events from ``LEAD_IN`` earlier, or from the window's start when a task ran longer than
    that lead-in covers (``lead_in_covers``)."""
    since = _since(now)
    start = since if full_refresh else recompute_from(since, lake.column_max(METRIC_STREAMS, "bucket_start"))
    read_from = max(since, start - LEAD_IN)
    costed = costed_since(lake, read_from)
    if read_from > since and not lead_in_covers(costed, start, read_from, keep_warm_seconds):
        start = read_from = since
        costed = costed_since(lake, since)
    streams = streams_in_chunks(costed, lake.read(LEDGER_ENTRIES), start, keep_warm_seconds)
    return recomputed(streams, start, since), start


def costed_since(lake: Lake, since: datetime) -> pl.DataFrame:
    """The tasks finished at or after ``since`` (``EXECUTION_COLUMNS``) with their
    ``COST_COLUMNS`` (``metric_streams.with_costs``), joined as they are read (one frame in
    memory, not the executions, their costs and the join), the costs' other columns never
    read."""
    events = lake.scan(EXECUTION_EVENTS).filter(pl.col("occurred_at") >= since)
    executions = latest_outcomes(events, columns=tuple(c for c in EXECUTION_COLUMNS if c not in _IDENTITY))
    costs = lake.scan(EXECUTION_COSTS).filter(pl.col("finished_at") >= since)
    return with_costs(executions, costs).collect(engine="streaming")


@dg.asset(deps=reads(EXECUTION_EVENTS, EXECUTION_COSTS, LEDGER_ENTRIES), **GOLD)
def metric_streams(
    config: StreamsConfig, lake: dg.ResourceParam[Lake], catalog: dg.ResourceParam[Catalog]
) -> dg.MaterializeResult:
    """Per provider × effect type, instance type and user, at a 5-minute grain: latency,
    queue wait, error rates (throttling apart), cost per run, margin, cold-start share,
    utilisation, token burn and time to exhaustion. Each cycle recomputes the buckets of the
    last hour before the newest one written (the whole 3-day window on the first) and upserts
    them, so an event up to an hour late corrects its interval and a cycle's cost follows the
    new events, not the history (``streams_to_write``)."""
    now = utcnow()
    streams, start = streams_to_write(lake, now, catalog.rate_card().keep_warm_seconds, config.full_refresh)
    lake.upsert(METRIC_STREAMS, streams, recent=("bucket_start", _since(now) - GRAIN))
    return dg.MaterializeResult(
        metadata={
            "rows": streams.height,
            "recomputed_from": start.isoformat(),
            **{s: int((streams["scope"] == s).sum()) for s in ("provider_effect", "user")},
        }
    )


@dg.asset(deps=[metric_streams], **GOLD)
def signals(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    """Stage 1: CUSUM, robust z, Holt-Winters and threshold-with-hysteresis signals on every
    watched stream, for the latest intervals (appended; a signal's id is stable)."""
    now = utcnow()
    found = detect(lake.read(METRIC_STREAMS, pl.col("bucket_start") >= _since(now)), now, POLICY)
    lake.append(SIGNALS, found)
    return dg.MaterializeResult(
        metadata={
            "signals": found.height,
            **{d: int((found["detector"] == d).sum()) for d in found["detector"].unique()},
        }
    )


@dg.asset(deps=[metric_streams, platform_logs], **GOLD)
def economic_alerts(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    """Isolation Forest over the provider streams and the warning/error log counts: unusual
    combinations as EconomicAlert rows naming the features that made them unusual."""
    now = utcnow()
    since = _since(now)
    rows = feature_rows(
        lake.read(METRIC_STREAMS, pl.col("bucket_start") > since),
        lake.read(PLATFORM_LOGS, pl.col("logged_at") > since),
    )
    alerts = alert_frame(unusual(rows, now - POLICY.report_intervals * GRAIN, now))
    lake.append(ECONOMIC_ALERTS, alerts)
    return dg.MaterializeResult(metadata={"alerts": alerts.height, "rows_scored": rows.height})


def affected_jobs(costs: pl.DataFrame, ledger: pl.DataFrame) -> dict[tuple, list[str]]:
    """(provider_id, effect_type) → videos it ran for, and ("user", user_id) → videos the user
    was charged for, over the given rows."""
    out: dict[tuple, list[str]] = {}
    for r in costs.group_by("provider_id", "effect_type").agg(pl.col("video_id").unique()).iter_rows(named=True):
        out[(r["provider_id"], r["effect_type"])] = [v for v in r["video_id"] if v]
    for r in ledger.group_by("user_id").agg(pl.col("correlation_id").unique()).iter_rows(named=True):
        out[("user", r["user_id"])] = [v for v in r["correlation_id"] if v]
    return out


# Also reads its own table (the open classifications) and bronze/bottleneck_actions (what the
# action sensor did), a feedback read declared in assets.lineage.FEEDBACK_READS.
@dg.asset(deps=[signals, metric_streams, *reads(EXECUTION_COSTS, LEDGER_ENTRIES)], **GOLD)
def bottleneck_classifications(
    lake: dg.ResourceParam[Lake], platform: dg.ResourceParam[Settings]
) -> dg.MaterializeResult:
    """Stage 2: the decision tree (economics.bottlenecks) over this cycle's signals — category,
    evidence, recommended action, runbook, cost impact (USD/h), affected jobs, automatic
    action and what was done; open ones not seen for 30 minutes are resolved."""
    from assets.gold.actions import taken_actions

    now = utcnow()
    hour_ago = now - 12 * GRAIN
    found = lake.read(SIGNALS, pl.col("detected_at") > now - POLICY.report_intervals * GRAIN)
    streams = lake.read(METRIC_STREAMS, pl.col("bucket_start") > now - EVIDENCE_WINDOW)
    jobs = affected_jobs(
        lake.read(EXECUTION_COSTS, pl.col("finished_at") > hour_ago),
        lake.read(LEDGER_ENTRIES, pl.col("occurred_at") > hour_ago),
    )
    previous = lake.read(BOTTLENECK_CLASSIFICATIONS)
    rows = classify(evidence_for(found, streams, now, previous), jobs, previous, now, platform.token_usd_rate)
    done = taken_actions(lake)
    if not rows.is_empty() and not done.is_empty():
        rows = (
            rows.join(done, on="classification_id", how="left", suffix="_done")
            .with_columns(action_taken=pl.coalesce("action_taken", "action_taken_done"))
            .drop("action_taken_done")
        )
    lake.upsert(BOTTLENECK_CLASSIFICATIONS, rows)
    return dg.MaterializeResult(
        metadata={
            "open": int((rows["status"] == "open").sum()),
            "critical": int(((rows["status"] == "open") & (rows["severity"] == "critical")).sum()),
            "resolved": int((rows["status"] == "resolved").sum()),
        }
    )
