"""Deterministic ids: one hashing rule, usable from Python and from DuckDB SQL.

An id is the first ``length`` hex digits of sha256 over its parts joined with ``|``, where a
dict part is its sorted JSON and any other part its ``str``. The same parts always give the
same id, which is what makes the lake's writes idempotent: a re-run produces the same keys
and the insert-if-absent append keeps the first row.

Bulk writers (the market simulator, millions of rows) cannot afford a Python call per row,
so ``stable_id_sql`` renders the same rule as a DuckDB expression over columns; the tests
check that both give identical ids for the same values.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

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
