"""Event rows (docs/architecture.md, "The lake"): every row carries ``event_id``, ``event_type``,
``correlation_id`` (the video id), ``stage``, ``occurred_at`` (UTC) and a JSON ``payload``.

``event_id`` is deterministic — ``economics.ids.event_id`` of (stage, event type, correlation
id, identity) — so a re-run of a stage with the same inputs produces the same id and the
idempotent append keeps the first occurrence only. ``stable_id`` (the one id rule) is
re-exported here for the stages that name their rows with it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl

from economics.ids import TASK_KEY, event_id, has_task_keys, stable_id
from economics.telemetry import UNTYPED, telemetry_from_payload
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, PIPELINE_EVENTS

__all__ = [
    "event",
    "record_execution_events",
    "record_pipeline_events",
    "stable_id",
    "upgrade_execution_events",
    "utcnow",
]


def utcnow() -> datetime:
    """Current time, tz-aware UTC, microsecond precision (the lake's timestamp unit)."""
    return datetime.now(UTC)


def event(
    event_type: str,
    correlation_id: str,
    stage: str,
    payload: dict[str, Any],
    identity: Any = "",
    occurred_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One event row.

    Args:
        identity: what makes this occurrence distinct within (stage, type, correlation),
            e.g. a task id; the payload is not part of the id (timings vary between runs).
        extra: additional envelope columns (``task_id``… for ``execution_events``).
    """
    return {
        "event_id": event_id(stage, event_type, correlation_id, identity),
        "event_type": event_type,
        "correlation_id": correlation_id,
        "stage": stage,
        "occurred_at": occurred_at or utcnow(),
        "payload": json.dumps(payload, sort_keys=True, default=str),
        **extra,
    }


def record_pipeline_events(lake: Lake, rows: list[dict]) -> int:
    """Append pipeline events (idempotent); returns how many were new."""
    return lake.append(PIPELINE_EVENTS, pl.DataFrame(rows, infer_schema_length=None)) if rows else 0


def record_execution_events(lake: Lake, rows: list[dict]) -> int:
    """Append execution (task) events (idempotent); returns how many were new."""
    return lake.append(EXECUTION_EVENTS, pl.DataFrame(rows, infer_schema_length=None)) if rows else 0


def upgrade_execution_events(lake: Lake) -> int:
    """Bring task events written by older versions up to the current columns, in place (a
    merge on ``event_id``); how many rows were rewritten. Events whose telemetry is only in
    their JSON payload (before typed telemetry) get it moved into the columns
    (``economics.telemetry.telemetry_from_payload``); events without a task key (before
    ``economics.ids.TASK_KEY``) get theirs (the lake's write derives them). The economics
    reads only the columns, and reads the keys only when every terminal event has one, so a
    lake from before runs this once (``effectlake init``); a second run finds nothing."""
    events = lake.scan(EXECUTION_EVENTS)
    missing = pl.col(TASK_KEY[0]).is_null() if has_task_keys(events) else pl.lit(True)
    unkeyed = pl.col("task_id").is_not_null() & missing
    stale = events.filter(UNTYPED | unkeyed).collect(engine="streaming")
    if stale.is_empty():
        return 0
    lake.upsert(EXECUTION_EVENTS, telemetry_from_payload(stale))
    return stale.height
