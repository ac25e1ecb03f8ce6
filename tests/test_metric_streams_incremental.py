"""metric_streams recomputes the last hour, not the 3-day window: on a lake of simulated
executions (every local provider, several instance types, real and shadow rows), the
incremental cycle's rows are the full recompute's, a task longer than the lead-in falls back
to the whole window, and repeated cycles leave no duplicate rows (user rows included)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from assets.gold.signals import costed_since, streams_to_write
from economics.cost_model import cold_starts, cost_frame
from economics.metric_streams import (
    COST_COLUMNS,
    GRAIN,
    LATE_MARGIN,
    STREAM_KEYS,
    metric_streams,
    streams_in_chunks,
    with_costs,
)
from economics.signal_detection import Policy, history_start
from economics.simulator import execution_events, reference_market, simulate
from resources.clients import Clients
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, LEDGER_ENTRIES, METRIC_STREAMS, conform
from resources.settings import get_settings

KEEP_WARM_S = 300.0
HOURS = 5


@pytest.fixture
def lake(tmp_path):
    """A lake with HOURS of simulated executions ending now, their costs, and one user's
    ledger: consumption four days ago (before the detectors' history) and in the last hour."""
    settings = get_settings()
    catalog = Clients.from_settings(settings).catalog
    lake = Lake(uri=str(tmp_path / "lake"))
    now = utcnow()
    start = now - timedelta(hours=HOURS)
    rows = simulate(reference_market(start), start, HOURS, 400, seed=3)
    lake.append(EXECUTION_EVENTS, conform(execution_events(rows), EXECUTION_EVENTS))
    costs = cost_frame(rows, catalog.rate_card(), catalog.prices(), settings.token_usd_rate, breakdown=True)
    lake.append(EXECUTION_COSTS, conform(costs.drop("composite"), EXECUTION_COSTS))
    credit = {"entry_id": "c", "user_id": "u1", "kind": "credit", "tokens": 500, "occurred_at": now - timedelta(days=5)}
    spent = [timedelta(days=4), timedelta(days=4, minutes=-7), timedelta(minutes=40), timedelta(minutes=3)]
    ledger = [credit] + [
        {"entry_id": f"k{j}", "user_id": "u1", "kind": "consume", "tokens": 10, "occurred_at": now - ago}
        for j, ago in enumerate(spent)
    ]
    lake.append(LEDGER_ENTRIES, pl.DataFrame(ledger))
    return lake, now


def _sorted(streams: pl.DataFrame) -> pl.DataFrame:
    return streams.sort(*STREAM_KEYS, "bucket_start", nulls_last=True)


def test_the_incremental_cycle_writes_the_full_recomputes_rows(lake):
    lake, now = lake
    since = history_start(now, Policy())
    full, start = streams_to_write(lake, now, KEEP_WARM_S)
    assert start == since and full.filter(pl.col("scope") == "instance_type").height > 0
    lake.upsert(METRIC_STREAMS, full, recent=("bucket_start", since - GRAIN))
    written = lake.read(METRIC_STREAMS).height

    part, start = streams_to_write(lake, now, KEEP_WARM_S)
    newest = full["bucket_start"].max()
    assert start == newest - LATE_MARGIN > since
    # Only the last hour's execution buckets, each equal to the full recompute's; the user
    # scope is recomputed whole, but only from the history's start (not the ledger's).
    assert part.filter(pl.col("scope") != "user")["bucket_start"].min() == start
    expected = full.filter((pl.col("bucket_start") >= start) | (pl.col("scope") == "user"))
    assert part.height < full.height / 2
    assert _sorted(part).equals(_sorted(expected))
    assert part.filter(pl.col("scope") == "user")["bucket_start"].min() >= since

    lake.upsert(METRIC_STREAMS, part, recent=("bucket_start", since - GRAIN))
    assert lake.read(METRIC_STREAMS).height == written  # replaced, nothing added
    assert _sorted(lake.read(METRIC_STREAMS)).equals(_sorted(conform(full, METRIC_STREAMS)))


def test_a_task_longer_than_the_lead_in_recomputes_the_whole_window(lake):
    lake, now = lake
    since = history_start(now, Policy())
    full, _ = streams_to_write(lake, now, KEEP_WARM_S)
    lake.upsert(METRIC_STREAMS, full, recent=("bucket_start", since - GRAIN))
    # A task that ran for three hours and finished a minute ago: whether it was a cold start
    # depends on tasks that ended before the lead-in.
    long = lake.read(EXECUTION_EVENTS).sort("occurred_at").tail(1)
    long = long.with_columns(
        event_id=pl.lit("long-task"),
        task_id=pl.lit("long-task"),
        occurred_at=pl.lit(now - timedelta(minutes=1)).cast(long.schema["occurred_at"]),
        duration_ms=pl.lit(3 * 3600 * 1000).cast(long.schema["duration_ms"]),
    )
    lake.append(EXECUTION_EVENTS, long)
    part, start = streams_to_write(lake, now, KEEP_WARM_S)
    assert start == since
    assert part.filter(pl.col("scope") != "user")["bucket_start"].min() < now - 2 * LATE_MARGIN


@pytest.mark.parametrize("from_hours", [0, 2])
def test_streams_computed_in_chunks_are_the_whole_computations(lake, from_hours):
    """``streams_in_chunks`` (half-hour chunks here, six hours in the asset) gives the rows of
    one ``metric_streams`` over everything, with tasks that outlast a chunk: one that ran three
    hours and one per fleet that started in a chunk and ended two chunks later, both of which
    keep their fleet warm across the chunks' edges."""
    lake, now = lake
    since = history_start(now, Policy())
    start = since + timedelta(hours=from_hours)
    costed = costed_since(lake, since)
    executions, costs = costed.drop(*COST_COLUMNS), costed.select("task_id", *COST_COLUMNS)
    longest = executions.sort("finished_at").tail(1)["task_id"].item()
    stretched = executions.with_columns(
        duration_ms=pl.when(pl.col("task_id") == longest)
        .then(pl.lit(3 * 3600 * 1000))
        .when(pl.col("task_id").is_in(executions.group_by("provider_id").agg(pl.col("task_id").first())["task_id"]))
        .then(pl.col("duration_ms") + 60 * 60 * 1000)
        .otherwise(pl.col("duration_ms"))
        .cast(executions.schema["duration_ms"])
    )
    ledger = lake.read(LEDGER_ENTRIES)
    whole = metric_streams(stretched, costs, ledger, KEEP_WARM_S).filter(
        (pl.col("bucket_start") >= start) | (pl.col("scope") == "user")
    )
    chunked = streams_in_chunks(with_costs(stretched, costs), ledger, start, KEEP_WARM_S, chunk=timedelta(minutes=30))
    assert whole.filter(pl.col("scope") == "instance_type").height > 0
    assert _sorted(chunked).equals(_sorted(whole))


def test_a_task_running_past_its_chunks_end_keeps_its_fleet_warm_in_it(lake):
    """A fleet of two tasks: A starts 25 minutes before a chunk and ends 20 minutes after it, B
    runs inside the chunk. B is warm only because A is running; A finished in a later chunk,
    so B's chunk must take it for its start (the rule for tasks that started in or before a
    chunk and finished after it), or B reads as a cold start."""
    lake, now = lake
    since = history_start(now, Policy())
    chunk = timedelta(minutes=30)
    costed = costed_since(lake, since)
    edge = since + ((now - timedelta(hours=3)) - since) // chunk * chunk  # a chunk's start
    template = costed.sort("task_id").head(1)
    sparse = pl.concat(
        [
            template.with_columns(
                task_id=pl.lit(task),
                provider_id=pl.lit("sparse-provider"),
                instance_type=pl.lit("sparse-instance"),
                finished_at=pl.lit(edge + end).cast(costed.schema["finished_at"]),
                duration_ms=pl.lit(int(run.total_seconds() * 1000)).cast(costed.schema["duration_ms"]),
            )
            for task, end, run in (
                ("sparse-a", timedelta(minutes=50), timedelta(minutes=75)),
                ("sparse-b", timedelta(minutes=10), timedelta(minutes=5)),
            )
        ]
    )
    executions = pl.concat([costed, sparse])
    warm = cold_starts(executions.filter(pl.col("provider_id") == "sparse-provider"), KEEP_WARM_S)
    assert warm.filter(pl.col("task_id") == "sparse-b")["cold_start"].to_list() == [False]
    ledger = lake.read(LEDGER_ENTRIES)
    whole = metric_streams(
        executions.drop(*COST_COLUMNS), executions.select("task_id", *COST_COLUMNS), ledger, KEEP_WARM_S
    )
    whole = whole.filter((pl.col("bucket_start") >= since) | (pl.col("scope") == "user"))
    chunked = streams_in_chunks(executions, ledger, since, KEEP_WARM_S, chunk=chunk)
    assert _sorted(chunked).equals(_sorted(whole))


def test_a_chunk_must_be_whole_buckets(lake):
    lake, now = lake
    costed = costed_since(lake, history_start(now, Policy()))
    with pytest.raises(ValueError, match="multiple"):
        streams_in_chunks(costed, lake.read(LEDGER_ENTRIES), now, KEEP_WARM_S, chunk=timedelta(minutes=7))
