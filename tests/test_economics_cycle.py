"""The streamed economics cycle gives the numbers the eager one gave, on a simulated Delta lake.

The latest outcome per task, the cost model, the marginality windows and the provider
statistics were rewritten to stream a lake scan (hash pass + marking of superseded rows, lazy
cost columns, sums per window index added up per window, one pass for windows and stats).
The functions below are the eager forms they replace, kept here verbatim as the reference:
on the same lake — re-executed tasks, dispatch events, rows outside every window and after
``now``, null durations — the new ones must agree (integers exactly, floating-point sums to
the last bits their summation order changes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from deltalake import write_deltalake
from polars.testing import assert_frame_equal

from economics.cost_model import ProviderCostProfile, RateCard, cost_frame
from economics.cycle import windows_and_stats
from economics.ids import TASK_KEY, with_task_keys
from economics.margin import margin_expr
from economics.marginality import WINDOWS, burn_rates, marginality_windows
from economics.simulator import (
    Market,
    ProviderModel,
    execution_events,
    quality_rows,
    re_executions,
    simulate,
)
from economics.stats import provider_stats
from economics.telemetry import (
    COSTED,
    CREATION,
    DISPATCHED_EVENT,
    REAL,
    SUPERSEDED,
    TASK_ID_HASHES,
    TELEMETRY,
    TERMINAL_EVENTS,
    finished_executions,
    latest_outcomes,
    terminal_outcomes,
)
from resources.events import upgrade_execution_events
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, conform

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
CARD = RateCard({"cpu-2c": 0.10 / 3600, "gpu-a10g": 1.10 / 3600}, spot_multiplier=0.4)
PRICES = {"cartoon": 5, "sketch": 3}
TOKEN_USD = 0.01
FLOAT_SUMS = {"rel_tol": 1e-12, "abs_tol": 1e-12}


# --- the eager forms the streamed ones replace (reference) ---------------------------------------
def reference_finished_executions(events: pl.LazyFrame, columns: tuple[str, ...] = COSTED) -> pl.DataFrame:
    return (
        events.filter(pl.col("event_type").is_in(TERMINAL_EVENTS))
        .select(
            "task_id",
            "provider_id",
            "effect_type",
            *columns,
            video_id=pl.col("correlation_id"),
            finished_at=pl.col("occurred_at"),
        )
        .group_by("task_id")
        .agg(pl.all().sort_by("finished_at").last())
        .with_columns(pl.col("source").fill_null(REAL) if "source" in columns else [])
        .with_columns(pl.col("job_kind").fill_null(CREATION) if "job_kind" in columns else [])
        .collect()
    )


def reference_per_window(costs: pl.DataFrame, now: datetime, by, aggs) -> pl.DataFrame:
    frames = []
    for name, length in WINDOWS.items():
        start = now - length
        inside = costs.filter((pl.col("finished_at") > start) & (pl.col("finished_at") <= now))
        agg = inside.group_by(*by).agg(**aggs) if by else inside.select(**aggs)
        frames.append(agg.with_columns(window=pl.lit(name), window_start=pl.lit(start), window_end=pl.lit(now)))
    out = pl.concat(frames, how="vertical_relaxed")
    return out.select("window", "window_start", "window_end", *by, *aggs)


def reference_marginality_windows(costs: pl.DataFrame, now: datetime) -> pl.DataFrame:
    keys = ("provider_id", "effect_type") + (("source",) if "source" in costs.columns else ())
    hit = pl.col("cache_hit").fill_null(False) if "cache_hit" in costs.columns else pl.lit(False)
    saved = pl.col("saved_cost_usd") if "saved_cost_usd" in costs.columns else pl.lit(None, pl.Float64)
    out = reference_per_window(
        costs.with_columns(_hit=hit, _saved=saved),
        now,
        keys,
        {
            "executions": pl.col("_hit").not_().sum().cast(pl.Int64),
            "succeeded": (pl.col("status") == "succeeded").sum().cast(pl.Int64),
            "cache_hits": pl.col("_hit").sum().cast(pl.Int64),
            "saved_cost_usd": pl.col("_saved").sum().cast(pl.Float64),
            "tokens_charged": pl.col("tokens_charged").sum().cast(pl.Int64),
            "cost_tokens": pl.col("cost_tokens").sum(),
            "revenue_usd": pl.col("revenue_usd").sum(),
            "cost_usd": pl.col("cost_usd").sum(),
        },
    )
    return out.with_columns(margin=margin_expr("tokens_charged", "cost_tokens")).sort("window", *keys)


def reference_burn_rates(costs: pl.DataFrame, now: datetime, by=()) -> pl.DataFrame:
    columns = ("cost_usd", "revenue_usd", "tokens_charged", "cost_tokens")
    totals = reference_per_window(
        costs,
        now,
        tuple(by),
        {"executions": pl.len().cast(pl.Int64), **{c: pl.col(c).sum().cast(pl.Float64) for c in columns}},
    )
    hours = pl.col("window").replace_strict(
        {name: length.total_seconds() / 3600 for name, length in WINDOWS.items()}, return_dtype=pl.Float64
    )
    return (
        totals.with_columns(hours=hours)
        .with_columns(**{f"{c}_per_hour": pl.col(c).fill_null(0.0) / pl.col("hours") for c in columns})
        .drop(*columns)
        .sort(pl.col("hours"), *by)
    )


def reference_provider_stats(costs: pl.DataFrame, quality: pl.DataFrame, since=None) -> pl.DataFrame:
    keys = ["provider_id", "effect_type"]
    if since is not None:
        costs = costs.filter(pl.col("finished_at") >= since)
        quality = quality.join(costs.select("task_id"), on="task_id", how="semi")
    q = quality.filter(pl.col("status") == "scored").group_by(keys).agg(mean_quality=pl.col("composite").mean())
    ok = pl.col("status") == "succeeded"
    return (
        costs.group_by(keys)
        .agg(
            executions=pl.len(),
            success_rate=ok.mean(),
            mean_cost_usd=pl.col("cost_usd").filter(ok).mean(),
            mean_duration_ms=pl.col("duration_ms").filter(ok).mean(),
        )
        .join(q, on=keys, how="left")
        .sort(keys)
    )


# --- a simulated lake -----------------------------------------------------------------------------
def _market() -> Market:
    return Market(
        (
            ProviderModel("a", "cartoon", "cpu-2c", 10.0, failure_rate=0.2),
            ProviderModel("b", "cartoon", "gpu-a10g", 3.0, partner_cost_usd=0.01, failure_rate=0.05),
            ProviderModel("c", "sketch", "cpu-2c", 4.0, failure_rate=0.1),
            ProviderModel("d", "sketch", "cpu-2c", 6.0, mode="shadow"),
        ),
        NOW - timedelta(days=9),
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    """Nine days of executions ending after NOW (some outside every window, some later than
    NOW), real and simulated, a tenth of them without a duration, 3 % re-executed with the other outcome, one
    task with a second event of the same type (as a hand-written lake can hold), and the
    dispatch events of the first day — appended in four commits."""
    lake = Lake(uri=str(tmp_path_factory.mktemp("lake")))
    rows = simulate(_market(), NOW - timedelta(days=9), 9 * 24 + 2, 250, seed=7)
    n = pl.int_range(pl.len())
    rows = rows.with_columns(
        duration_ms=pl.when(n % 10 == 3).then(None).otherwise(pl.col("duration_ms")),
        # a share of real executions (and older rows without a source, read as real)
        source=pl.when(n % 7 == 0).then(pl.lit(REAL)).when(n % 7 == 1).then(None).otherwise(pl.col("source")),
    )
    again = re_executions(rows, 0.03, seed=8)
    # stored outputs (storage and bandwidth cost) for the first outcomes that succeeded
    rows = rows.with_columns(
        output_bytes=pl.when(pl.col("status") == "succeeded").then(pl.col("task_id").str.len_bytes() * 1_000_000)
    )
    same_type = rows.head(1).with_columns(
        finished_at=pl.col("finished_at") + timedelta(hours=1), compute_seconds=pl.col("compute_seconds") * 2
    )
    dispatched = execution_events(rows.head(500)).with_columns(
        event_type=pl.lit(DISPATCHED_EVENT),
        event_id=pl.col("event_id") + "-d",
        **{c: pl.lit(None, t) for c, t in TELEMETRY.items()},
    )
    half = rows.height // 2
    for part in (rows.slice(0, half), rows.slice(half), again):
        lake.append(EXECUTION_EVENTS, execution_events(part))
    lake.append(
        EXECUTION_EVENTS,
        pl.concat(
            [
                conform(execution_events(same_type).with_columns(event_id=pl.lit("same-type-again")), EXECUTION_EVENTS),
                conform(dispatched, EXECUTION_EVENTS),
            ]
        ),
    )
    assert again.height > 300
    return lake


def _by_task(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("task_id")


# --- the latest outcome per task ----------------------------------------------------------------
def test_latest_outcome_per_task_matches_the_per_group_sort(lake):
    events = lake.scan(EXECUTION_EVENTS)
    new = finished_executions(events)
    old = reference_finished_executions(events)
    assert new["task_id"].is_unique().all() and new.height == old.height
    assert_frame_equal(_by_task(new), _by_task(old).select(new.columns))
    # Hundreds of tasks had two terminal events; each kept its later one.
    terminal = events.filter(pl.col("event_type").is_in(TERMINAL_EVENTS)).collect()
    latest = terminal.group_by("task_id").agg(n=pl.len(), last=pl.col("occurred_at").max()).filter(pl.col("n") > 1)
    assert latest.height > 300
    kept = latest.join(new, on="task_id")
    assert kept.height == latest.height and (kept["finished_at"] == kept["last"]).all()


def test_terminal_outcomes_mark_every_event_but_each_tasks_latest(lake):
    events = lake.scan(EXECUTION_EVENTS)
    marked = terminal_outcomes(events).collect()
    terminal = events.filter(pl.col("event_type").is_in(TERMINAL_EVENTS)).collect()
    assert marked.height == terminal.height and marked[SUPERSEDED].dtype == pl.Boolean
    # the unmarked rows are the latest outcomes; the marked ones, one per extra event
    latest = marked.filter(~pl.col(SUPERSEDED)).drop(SUPERSEDED)
    assert_frame_equal(_by_task(latest), _by_task(finished_executions(events)))
    assert marked[SUPERSEDED].sum() == terminal.height - terminal["task_id"].n_unique() > 300
    # each marked event is no later than its task's latest
    superseded = marked.filter(pl.col(SUPERSEDED)).join(latest, on="task_id", suffix="_latest")
    assert (superseded["finished_at"] <= superseded["finished_at_latest"]).all()
    # without a re-executed task nothing is marked
    once = events.filter(~pl.col("task_id").is_in(superseded["task_id"].implode()))
    assert terminal_outcomes(once).collect()[SUPERSEDED].sum() == 0


def test_task_keys_and_task_id_hashes_mark_the_same_events(lake):
    # Every event of the lake has its task key; without the key columns, or with one event
    # missing its key, every task id is hashed instead: the same events are marked.
    events = lake.scan(EXECUTION_EVENTS)
    keyed = terminal_outcomes(events).collect()
    assert keyed[SUPERSEDED].sum() > 300
    first_unkeyed = pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col(TASK_KEY[0]))
    for unkeyed in (events.drop(*TASK_KEY), events.with_columns(first_unkeyed.alias(TASK_KEY[0]))):
        assert_frame_equal(terminal_outcomes(unkeyed).collect(), keyed)


def test_with_task_keys_events_are_told_apart_by_their_keys():
    # Two tasks given one key (as two ids sharing 128 bits would be) are one task to the
    # keyed pass: only the later outcome of the two is kept. Their own keys keep both.
    t0 = NOW - timedelta(hours=1)
    rows = [("e1", "TaskSucceeded", "v", t0, "t1", "succeeded"), ("e2", "TaskFailed", "v", t0, "t2", "failed")]
    events = with_task_keys(_terminal_events(rows))
    assert finished_executions(events.lazy()).height == 2
    shared = events.with_columns(pl.col(c).first() for c in TASK_KEY)
    assert finished_executions(shared.lazy())["task_id"].to_list() == ["t2"]


def test_latest_outcomes_is_a_plan_that_keeps_the_asked_columns(lake):
    plan = latest_outcomes(lake.scan(EXECUTION_EVENTS), columns=("status", "error_class", "source"))
    assert isinstance(plan, pl.LazyFrame)
    got = plan.collect()
    assert got.columns == [
        "task_id",
        "provider_id",
        "effect_type",
        "status",
        "error_class",
        "source",
        "video_id",
        "finished_at",
    ]
    assert got["source"].null_count() == 0


def _terminal_events(rows: list[tuple]) -> pl.DataFrame:
    """Terminal events from (event_id, event_type, correlation_id, occurred_at, task_id,
    status) rows, without provider or effect type."""
    return pl.DataFrame(
        rows,
        schema=["event_id", "event_type", "correlation_id", "occurred_at", "task_id", "status"],
        orient="row",
    ).with_columns(pl.lit(None, pl.String).alias(c) for c in ("provider_id", "effect_type"))


@pytest.mark.parametrize("keyed", [True, False], ids=["task keys", "task id hashes"])
def test_repeats_are_settled_on_the_task_id_and_ties_by_row_order(keyed):
    t0 = NOW - timedelta(hours=1)
    rows = [
        ("e1", "TaskFailed", "v", t0, "t1", "failed"),
        ("e2", "TaskSucceeded", "v", t0 + timedelta(minutes=5), "t1", "succeeded"),
        ("e3", "TaskSucceeded", "v", t0 + timedelta(minutes=1), "t2", "succeeded"),
        ("e4", "TaskFailed", "v", t0 + timedelta(minutes=1), "t3", "failed"),
        ("e5", "TaskFailed", "v", t0 + timedelta(minutes=1), "t3", "failed"),  # same instant: the later row wins
    ]
    events = _terminal_events(rows)
    events = with_task_keys(events) if keyed else events
    got = finished_executions(events.lazy(), columns=("status",)).sort("task_id")
    assert got.select("task_id", "status").rows() == [("t1", "succeeded"), ("t2", "succeeded"), ("t3", "failed")]


def test_tasks_whose_hashes_collide_keep_their_own_outcomes():
    # Two task ids whose first hashes agree in the 32 bits the repeats are sorted on (found
    # among 200,000), one event each, beside a re-executed task: both become candidates, the
    # whole fingerprint tells them apart, each task keeps its own outcome.
    ids = pl.DataFrame({"task_id": [f"task-{i}" for i in range(200_000)]}).with_columns(**TASK_ID_HASHES)
    ids = ids.with_columns(low=pl.col("h") % (1 << 32))
    pairs = ids.filter(pl.col("low").is_duplicated())
    assert pairs.height >= 2
    # The seeds' hashes are independent: no pair agreeing on 32 bits of one agrees on the other.
    assert pairs.group_by("low").agg(pl.col("g").n_unique())["g"].min() > 1
    a, b = pairs.sort("low", "task_id")["task_id"].head(2).to_list()
    t0 = NOW - timedelta(hours=1)
    rows = [
        ("e1", "TaskSucceeded", "v", t0, a, "succeeded"),
        ("e2", "TaskFailed", "v", t0 + timedelta(minutes=2), b, "failed"),
        ("e3", "TaskFailed", "v", t0, "t3", "failed"),
        ("e4", "TaskSucceeded", "v", t0 + timedelta(minutes=1), "t3", "succeeded"),
    ]
    events = _terminal_events(rows)
    got = finished_executions(events.lazy(), columns=("status",))
    assert sorted(got.select("task_id", "status").rows()) == sorted(
        [(a, "succeeded"), (b, "failed"), ("t3", "succeeded")]
    )


# --- the cost model on a plan -------------------------------------------------------------------
PROFILES = {
    "a": ProviderCostProfile(cold_start_seconds=30.0, tasks_per_burst=4.0, utilisation=0.5),
    "b": ProviderCostProfile(partner_usd_per_million_tokens=2.0, spot=True),
}


@pytest.mark.parametrize("profiles", [None, PROFILES])
def test_cost_frame_of_a_plan_equals_the_eager_cost_frame(lake, profiles):
    executions = finished_executions(lake.scan(EXECUTION_EVENTS))
    eager = cost_frame(executions, CARD, PRICES, TOKEN_USD, profiles=profiles, breakdown=True)
    lazy = cost_frame(executions.lazy(), CARD, PRICES, TOKEN_USD, profiles=profiles, breakdown=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(_by_task(lazy.collect()), _by_task(eager))


def test_an_unpriced_instance_type_fails_the_plan_when_collected(lake):
    executions = finished_executions(lake.scan(EXECUTION_EVENTS))
    card = RateCard({"cpu-2c": 0.10 / 3600})
    with pytest.raises(KeyError, match="gpu-a10g"):
        cost_frame(executions, card, PRICES, TOKEN_USD)
    plan = cost_frame(executions.lazy(), card, PRICES, TOKEN_USD)
    with pytest.raises(pl.exceptions.InvalidOperationError, match="gpu-a10g"):
        plan.collect()


# --- windows and statistics ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def costs(lake) -> pl.DataFrame:
    return cost_frame(finished_executions(lake.scan(EXECUTION_EVENTS)), CARD, PRICES, TOKEN_USD)


def test_marginality_windows_of_a_plan_equal_the_per_window_filters(costs):
    old = reference_marginality_windows(costs, NOW)
    assert set(old["window"]) == set(WINDOWS) and set(old["source"]) == {"real", "simulated"}
    assert costs.filter(pl.col("finished_at") > NOW).height > 0  # rows after now: in no window
    assert costs.filter(pl.col("finished_at") <= NOW - timedelta(days=7)).height > 0
    for given in (costs, costs.lazy()):
        assert_frame_equal(marginality_windows(given, NOW), old, **FLOAT_SUMS)


def test_burn_rates_equal_the_per_window_filters(costs):
    for by in ((), ("provider_id",)):
        for given in (costs, costs.lazy()):
            assert_frame_equal(burn_rates(given, NOW, by), reference_burn_rates(costs, NOW, by), **FLOAT_SUMS)


def test_provider_stats_of_a_plan_equal_the_grouped_means(costs):
    quality = quality_rows(
        costs.select(
            "task_id", "video_id", "provider_id", "effect_type", "status", composite=pl.col("compute_seconds") / 100
        )
    )
    since = NOW - timedelta(hours=24)
    for args in ((), (since,)):
        old = reference_provider_stats(costs, quality, *args)
        for given in (costs, costs.lazy()):
            assert_frame_equal(provider_stats(given, quality, *args), old, **FLOAT_SUMS)


@pytest.mark.parametrize("outcomes", [latest_outcomes, terminal_outcomes])
def test_windows_and_stats_in_one_pass_equal_the_two_functions(costs, lake, outcomes):
    quality = quality_rows(costs.with_columns(composite=pl.col("compute_seconds") / 100))
    # the plan from the lake, as the cycle streams it: the latest outcomes, or every terminal
    # event with the superseded ones marked (grouped apart and dropped)
    plan = cost_frame(outcomes(lake.scan(EXECUTION_EVENTS)), CARD, PRICES, TOKEN_USD)
    windows, stats = windows_and_stats(plan, NOW, quality)
    assert_frame_equal(windows, reference_marginality_windows(costs, NOW), **FLOAT_SUMS)
    assert_frame_equal(stats, reference_provider_stats(costs, quality), **FLOAT_SUMS)


# --- lakes written before typed telemetry ---------------------------------------------------------
def test_an_old_lakes_task_events_are_upgraded_once(tmp_path):
    rows = simulate(_market(), NOW - timedelta(hours=3), 2, 100, seed=11)
    events = execution_events(rows)
    # Before typed telemetry: the telemetry as the payload's JSON (sorted keys, as
    # resources.events.event wrote it), the typed columns null.
    payloads = [json.dumps(t, sort_keys=True, default=str) for t in events.select(*TELEMETRY).to_dicts()]
    old = events.with_columns(payload=pl.Series(payloads), **{c: pl.lit(None, t) for c, t in TELEMETRY.items()})
    half = rows.height // 2
    lake = Lake(uri=str(tmp_path))
    lake.append(EXECUTION_EVENTS, pl.concat([old.head(half), events.slice(half)]))
    expected = finished_executions(events.lazy())
    assert finished_executions(lake.scan(EXECUTION_EVENTS))["status"].null_count() == half

    assert upgrade_execution_events(lake) == half
    assert upgrade_execution_events(lake) == 0
    upgraded = lake.read(EXECUTION_EVENTS)
    assert upgraded.height == events.height and set(upgraded["payload"]) == {"{}"}
    assert_frame_equal(_by_task(finished_executions(upgraded.lazy())), _by_task(expected))


def test_a_table_from_before_task_keys_gets_the_columns_and_the_keys(tmp_path):
    events = conform(execution_events(simulate(_market(), NOW - timedelta(hours=3), 2, 50, seed=12)), EXECUTION_EVENTS)
    lake = Lake(uri=str(tmp_path))
    write_deltalake(lake.table_uri(EXECUTION_EVENTS), events.drop(*TASK_KEY).to_arrow())  # the old schema
    assert not set(TASK_KEY) & set(lake.scan(EXECUTION_EVENTS).collect_schema().names())
    assert upgrade_execution_events(lake) == events.height
    assert upgrade_execution_events(lake) == 0
    stored = lake.read(EXECUTION_EVENTS).select("event_id", *TASK_KEY).sort("event_id")
    assert_frame_equal(stored, events.select("event_id", *TASK_KEY).sort("event_id"))


# --- the incremental upsert ---------------------------------------------------------------------
def test_the_upsert_reads_only_files_from_the_oldest_replaced_row_on(tmp_path):
    from deltalake import write_deltalake

    from assets.gold.economics import upsert_costs
    from resources.schemas import EXECUTION_COSTS

    lake = Lake(uri=str(tmp_path))
    lake.ensure(EXECUTION_COSTS)
    day = [NOW - timedelta(days=d) for d in range(6, -1, -1)]  # one file a day, oldest first
    for d, at in enumerate(day):
        rows = pl.DataFrame(
            {"task_id": [f"t{d}-{i}" for i in range(3)], "cost_usd": [1.0] * 3, "finished_at": [at] * 3}
        )
        write_deltalake(lake.table_uri(EXECUTION_COSTS), conform(rows, EXECUTION_COSTS).to_arrow(), mode="append")
    watermark = lake.column_max(EXECUTION_COSTS, "finished_at")

    def upsert(task_ids: list[str]) -> dict:
        costs = pl.DataFrame(
            {"task_id": task_ids, "cost_usd": [2.0] * len(task_ids), "finished_at": [NOW] * len(task_ids)}
        )
        return upsert_costs(lake, conform(costs, EXECUTION_COSTS), watermark)

    # A task of three days ago costed again (its ledger moved) and a new one: the files from
    # three days ago on are read, the three older ones skipped.
    m = upsert(["t3-1", "new-1"])
    assert (m["num_target_rows_updated"], m["num_target_rows_inserted"]) == (1, 1)
    assert (m["num_target_files_scanned"], m["num_target_files_skipped_during_scan"]) == (4, 3)
    # New tasks only: nothing to replace; only the files that end at the watermark are read.
    m = upsert(["new-2", "new-3"])
    assert (m["num_target_rows_updated"], m["num_target_rows_inserted"]) == (0, 2)
    assert (m["num_target_files_scanned"], m["num_target_files_skipped_during_scan"]) == (2, 5)
    table = lake.read(EXECUTION_COSTS)
    assert table["task_id"].is_unique().all() and table.height == 7 * 3 + 3
    assert table.filter(pl.col("cost_usd") == 2.0)["task_id"].sort().to_list() == ["new-1", "new-2", "new-3", "t3-1"]
