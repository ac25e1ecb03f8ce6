"""Deterministic ids: one hashing rule, usable from Python and from DuckDB SQL.

An id is the first ``length`` hex digits of sha256 over its parts joined with ``|``, where a
dict part is its sorted JSON and any other part its ``str``. The same parts always give the
same id, which is what makes the lake's writes idempotent: a re-run produces the same keys
and the insert-if-absent append keeps the first row.

Bulk writers (the market simulator, millions of rows) cannot afford a Python call per row,
so ``stable_id_sql`` renders the same rule as a DuckDB expression over columns; the tests
check that both give identical ids for the same values.

A task id also has a numeric key (``task_key``, ``with_task_keys``): 128 bits of its sha256
as two 64-bit integers, which execution events carry beside the id so that the economics
can tell one task's events apart from every other's by reading two fixed-width columns
instead of decoding the id strings (``economics.telemetry.terminal_outcomes``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import polars as pl

SEPARATOR = "|"
# Event ids: 32 hex digits (128 bits) — collisions are out of reach at any realistic volume.
EVENT_ID_LENGTH = 32


def _text(part: Any) -> str:
    return json.dumps(part, sort_keys=True) if isinstance(part, dict) else str(part)


def stable_id(*parts: Any, length: int = 32) -> str:
    """Hex sha256 of the parts joined with ``|`` (dicts as sorted JSON, the rest as
    ``str``), cut to ``length`` characters.

    Example: ``stable_id("ledger", "refund", "t1")`` is
    ``sha256(b"ledger|refund|t1").hexdigest()[:32]``.
    """
    text = SEPARATOR.join(map(_text, parts))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def stable_id_sql(*columns: str, length: int = 32) -> str:
    """A DuckDB SQL expression computing ``stable_id`` of the named columns, row by row.

    Args:
        columns: column names, in the order of the parts; they must hold text (or integers,
            whose SQL text equals Python's ``str``). A NULL part is hashed as ``'None'``,
            like Python's ``str(None)`` — SQL's ``concat_ws`` would otherwise skip it and
            shift every later part.
        length: hex digits kept (1–64).

    Raises:
        ValueError: no column, or ``length`` outside 1..64.
    """
    if not columns or not 1 <= length <= 64:
        raise ValueError("stable_id_sql needs at least one column and 1 <= length <= 64")
    quoted = ('"' + c.replace('"', '""') + '"' for c in columns)
    parts = ", ".join(f"coalesce(CAST({c} AS VARCHAR), 'None')" for c in quoted)
    return f"substr(sha256(concat_ws('{SEPARATOR}', {parts})), 1, {int(length)})"


def event_id(stage: str, event_type: str, correlation_id: str, identity: Any = "") -> str:
    """Id of an event row: ``stable_id`` of (stage, event type, correlation id, identity),
    where ``identity`` tells apart occurrences of one type in one stage of one video (e.g.
    a task id). Payload values are not part of it: timings differ between re-runs."""
    return stable_id(stage, event_type, correlation_id, identity, length=EVENT_ID_LENGTH)


def event_id_sql(
    stage: str = "stage",
    event_type: str = "event_type",
    correlation_id: str = "correlation_id",
    identity: str = "task_id",
) -> str:
    """``event_id`` as a DuckDB expression over the named columns (see ``stable_id_sql``)."""
    return stable_id_sql(stage, event_type, correlation_id, identity, length=EVENT_ID_LENGTH)


# The columns of a task's key in ``execution_events``: the first and second 64 bits of the
# sha256 of its task id, each read as a big-endian signed integer (Delta has no unsigned type).
TASK_KEY = ("task_key_hi", "task_key_lo")


def task_key(task_id: str) -> tuple[int, int]:
    """The key of one task id: ``(hi, lo)``, its sha256's bytes 0-7 and 8-15 as big-endian
    signed 64-bit integers. Two different task ids share a key with probability 2^-128."""
    digest = hashlib.sha256(task_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True), int.from_bytes(digest[8:16], "big", signed=True)


def with_task_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with TASK_KEY (Int64) computed from its ``task_id`` column (``task_key`` per
    row, null where the id is null), replacing any already there.

    One rule for every writer: DuckDB hashes the whole column (a bulk writer's millions of
    rows cost no Python call per row; tests/test_ids.py checks it against ``task_key``).
    """
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.Int64).alias(c) for c in TASK_KEY)
    halves = ", ".join(
        f"('0x' || substr(sha256(task_id), {1 + 16 * i}, 16))::UBIGINT AS {name}" for i, name in enumerate(TASK_KEY)
    )
    ids = frame.select(pl.col("task_id").cast(pl.String)).to_arrow()
    with duckdb.connect() as con:  # private in-memory database: no shared default connection
        con.register("ids", ids)
        keys = con.sql(f"SELECT {halves} FROM ids").pl()
    # UBIGINT's bits read as signed: the big-endian signed integers of ``task_key``.
    return frame.with_columns(keys[c].reinterpret(signed=True).alias(c) for c in TASK_KEY)


def has_task_keys(frame: pl.DataFrame | pl.LazyFrame) -> bool:
    """Whether ``frame`` (an ``execution_events`` scan or plan) has the TASK_KEY columns: a
    table written before them lacks them until the lake's next write merges its schema."""
    return set(TASK_KEY) <= set(frame.collect_schema().names())
