"""Minimal ``bronze/pipeline_events`` batches for commit-race tests and benchmarks
(``tests/test_s3_lake.py``, ``bench/delta_commits.py``): the key and the columns every event
row has, the rest left to ``Lake.append``'s conforming."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl


def event_batch(prefix: str, n: int) -> pl.DataFrame:
    """``n`` TaskSucceeded rows correlated by ``prefix``, ids ``{prefix}-0`` … ``{prefix}-{n-1}``
    (distinct across prefixes), all at the current UTC time."""
    now = datetime.now(UTC)
    return pl.DataFrame(
        {
            "event_id": [f"{prefix}-{i}" for i in range(n)],
            "event_type": ["TaskSucceeded"] * n,
            "correlation_id": [prefix] * n,
            "occurred_at": [now] * n,
        }
    )
