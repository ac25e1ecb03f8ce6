"""One id rule: ``stable_id`` in Python and ``stable_id_sql`` in DuckDB give the same ids, and
the ids already stored (events, ledger entries, A/B tasks, simulated runs) keep their values;
a task's key is the same from every writer."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from economics import ledger
from economics.ids import TASK_KEY, event_id, event_id_sql, stable_id, stable_id_sql, task_key, with_task_keys
from economics.routing import ab_assignments
from economics.simulator import Market, ProviderModel, execution_events, simulate
from resources.events import event, record_execution_events
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, conform

T0 = datetime(2026, 3, 2, tzinfo=UTC)
ROWS = pl.DataFrame(
    {
        "a": ["M6", "M5", "", "x|y", "ünïcødé ✓", None, "M6"],
        "b": ["TaskSucceeded", "TaskFailed", "k", "z", "é", "None", None],
        "n": [1, 0, -7, 2**40, 3, None, 12],
    }
)


def _sql(expr: str, frame: pl.DataFrame) -> list[str]:
    with duckdb.connect() as con:
        con.register("frame", frame.to_arrow())
        return [r[0] for r in con.sql(f"SELECT {expr} FROM frame").fetchall()]


@pytest.mark.parametrize("length", [8, 20, 32, 64])
def test_sql_and_python_give_identical_ids(length):
    python = [stable_id(r["a"], r["b"], r["n"], length=length) for r in ROWS.iter_rows(named=True)]
    assert _sql(stable_id_sql("a", "b", "n", length=length), ROWS) == python
    assert len(set(python)) == ROWS.height and all(len(i) == length for i in python)


def test_a_null_part_is_hashed_as_none_and_does_not_shift_the_others():
    # concat_ws alone would skip NULL: ('a', NULL, 'b') would hash like ('a', 'b').
    frame = pl.DataFrame({"x": ["a", "a"], "y": [None, "b"], "z": ["b", None]})
    ids = _sql(stable_id_sql("x", "y", "z"), frame)
    assert ids == [stable_id("a", None, "b"), stable_id("a", "b", None)]
    assert ids[0] != stable_id("a", "b")


def test_sql_rejects_no_column_or_a_bad_length():
    with pytest.raises(ValueError, match="at least one column and 1 <= length <= 64"):
        stable_id_sql()
    with pytest.raises(ValueError, match="at least one column and 1 <= length <= 64"):
        stable_id_sql("a", length=65)


def test_event_ids_of_the_simulator_equal_those_of_a_recorded_event():
    rows = simulate(Market((ProviderModel("p", "cartoon", "cpu-2c", 1.0, failure_rate=0.3),), T0), T0, 1, 100, seed=3)
    events = execution_events(rows)
    for e in events.head(20).iter_rows(named=True):
        recorded = event(e["event_type"], e["correlation_id"], e["stage"], {}, identity=e["task_id"])
        assert (
            e["event_id"] == recorded["event_id"] == event_id("M6", e["event_type"], e["correlation_id"], e["task_id"])
        )
    assert _sql(event_id_sql(), events.drop("event_id")) == events["event_id"].to_list()


def test_stored_id_values_are_unchanged():
    """The ids written before the rule had one home: each written out as it used to be."""
    old = lambda text, n: hashlib.sha256(text.encode()).hexdigest()[:n]  # noqa: E731
    assert event("TaskFailed", "v1", "M6", {"x": 1}, identity="t1")["event_id"] == old("M6|TaskFailed|v1|t1", 32)
    assert ledger.entry_id("refund", "t1") == old("ledger|refund|t1", 32)
    tasks = ab_assignments(["p1", "p2"], ["v1"], "cartoon", experiment="exp")
    assert [t["task_id"] for t in tasks] == [old(f"ab|exp|v1|cartoon|{p}", 20) for p in ("p1", "p2")]
    market = Market((ProviderModel("p", "cartoon", "cpu-2c", 1.0),), T0)
    assert simulate(market, T0, 1, 50, seed=4, run_id="new")["task_id"][0] == f"sim-{old('new', 8)}-t0"
    assert simulate(market, T0, 1, 50, seed=4)["task_id"][0] == f"sim-{old(f'4|{T0.isoformat()}', 8)}-t0"
    assert stable_id("notification", "v1", "no_result", "") == old("notification|v1|no_result|", 32)
    assert stable_id({"b": 1, "a": 2}, length=12) == old('{"a": 2, "b": 1}', 12)


def test_a_task_key_is_its_ids_sha256_halves_from_every_writer(tmp_path):
    ids = ["t1", "sim-3479b27d-t1000000", "ünïcødé ✓", 'a"b', "", None]
    digest = hashlib.sha256(b"t1").digest()
    assert task_key("t1") == tuple(int.from_bytes(digest[i : i + 8], "big", signed=True) for i in (0, 8))
    keyed = with_task_keys(pl.DataFrame({"task_id": ids}))
    assert keyed.select(TASK_KEY).rows() == [task_key(t) if t is not None else (None, None) for t in ids]
    assert keyed.select(TASK_KEY).drop_nulls().n_unique() == len(ids) - 1
    # every write derives the key from the id: the simulator's bulk rows, a recorded event,
    # and a row whose id was changed without its key (it gets its own)
    rows = simulate(Market((ProviderModel("p", "cartoon", "cpu-2c", 1.0),), T0), T0, 1, 50, seed=3)
    simulated = conform(execution_events(rows), EXECUTION_EVENTS).head(5)
    assert simulated.select(TASK_KEY).rows() == [task_key(t) for t in simulated["task_id"]]
    lake = Lake(uri=str(tmp_path))
    recorded = [
        event(e["event_type"], e["correlation_id"], e["stage"], {}, identity=e["task_id"], task_id=e["task_id"])
        for e in simulated.iter_rows(named=True)
    ]
    assert record_execution_events(lake, recorded) == 5
    renamed = simulated.head(1).with_columns(event_id=pl.lit("renamed"), task_id=pl.lit("another-task"))
    assert lake.append(EXECUTION_EVENTS, renamed) == 1
    stored = lake.read(EXECUTION_EVENTS)
    assert sorted(stored.select("task_id", *TASK_KEY).rows()) == sorted(
        (t, *task_key(t)) for t in [*simulated["task_id"], "another-task"]
    )
