"""A bronze table created before its declared schema grew: appending rows with the new
columns keeps their values (the table gains the columns) instead of dropping them."""

from __future__ import annotations

import polars as pl

from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, TableSpec


def test_append_adds_newly_declared_columns_to_an_older_table(tmp_path):
    lake = Lake(uri=str(tmp_path))
    envelope = pl.Schema(
        {c: t for c, t in EXECUTION_EVENTS.schema.items() if c in ("event_id", "event_type", "task_id", "payload")}
    )
    older = TableSpec("bronze", EXECUTION_EVENTS.name, envelope, EXECUTION_EVENTS.key)
    lake.append(older, pl.DataFrame({"event_id": ["old"], "event_type": ["TaskSucceeded"]}))
    added = lake.append(
        EXECUTION_EVENTS,
        pl.DataFrame(
            {
                "event_id": ["new", "old"],
                "event_type": ["TaskFailed", "TaskFailed"],
                "status": ["failed", "failed"],
                "compute_seconds": [1.5, 9.0],
            }
        ),
    )
    rows = lake.read(EXECUTION_EVENTS).sort("event_id")
    assert added == 1
    assert rows.select("event_id", "event_type", "status", "compute_seconds").rows() == [
        ("new", "TaskFailed", "failed", 1.5),
        ("old", "TaskSucceeded", None, None),
    ]
    assert {c: rows.schema[c] for c in EXECUTION_EVENTS.schema} == dict(EXECUTION_EVENTS.schema)
