"""Frame helpers for the economics functions that take their rows eagerly or as a plan.

The cost model, the marginality windows and the provider statistics accept a
``pl.DataFrame`` (tests, a video's few tasks) or a ``pl.LazyFrame`` (a lake scan of millions
of executions, streamed so the rows are never all held): the same expressions serve both.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def names(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """Column names of either kind of frame (a LazyFrame's from its plan, no data read)."""
    return frame.collect_schema().names()


def like(frame: Frame, table: pl.DataFrame) -> Frame:
    """``table`` in the kind of ``frame``, so the two can be joined."""
    return table.lazy() if isinstance(frame, pl.LazyFrame) else table  # type: ignore[return-value]


def collected(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """``frame`` itself, or the LazyFrame collected on the streaming engine (for aggregates
    of a large scan: the rows flow through, only the groups are held)."""
    return frame.collect(engine="streaming") if isinstance(frame, pl.LazyFrame) else frame
