"""Counts and sums over a class of executions, taken from partial rows grouped by class.

The marginality windows and the provider statistics aggregate counts and sums restricted to
a class of rows: the executions that succeeded, the rows that are not cache hits, the cost of
the successful ones. Written per row, as ``pl.when(pl.col("status") == "succeeded")
.then(pl.col("cost_usd")).sum()``, every restriction compares a string on every row and every
tally is an aggregation of its own (14 over the 10 M rows of a full recompute). But a row's
class is read from two columns of a handful of values (CLASS_COLUMNS: ``status`` and
``cache_hit``). Grouped by them as well, the rows reduce to a few plain aggregations —
the row count, and the sum or non-null count of each column a tally reads (``partial_aggs``:
9 for both functions' 14 tallies) — and each tally is the sum, over those partial rows, of
the share its class selects (``shares``: a comparison on a few hundred rows, not 10 M).

Both forms give the same counts exactly and the same sums up to the order of floating-point
additions. Pure: Polars expressions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType

# What a tally's class may read: the partial rows are grouped by these.
CLASS_COLUMNS = ("status", "cache_hit")
# The partial aggregate counting the rows of a group.
ROWS = "_rows"


@dataclass(frozen=True)
class Tally:
    """A count of rows, or the sum or the non-null count of one column, over the rows of a class.

    Attributes:
        where: the class, a predicate reading CLASS_COLUMNS only (None: every row); a null
            verdict leaves the row out, as ``pl.when`` does.
        value: the column summed or counted; None counts the rows themselves.
        count: count ``value``'s non-null values instead of summing them.
        dtype: the tally's type; None keeps the sum's (a count is Int64).
    """

    where: pl.Expr | None = None
    value: str | None = None
    count: bool = False
    dtype: PolarsDataType | None = None

    @property
    def partial(self) -> str:
        """The ``partial_aggs`` column this tally is taken from."""
        if self.value is None:
            return ROWS
        return f"_{'count' if self.count else 'sum'}_{self.value}"

    def aggregation(self) -> pl.Expr:
        """The ``partial_aggs`` aggregation of this tally's partial column."""
        if self.value is None:
            return pl.len()
        column = pl.col(self.value)
        return column.count() if self.count else column.sum()


def partial_aggs(tallies: Iterable[Tally]) -> dict[str, pl.Expr]:
    """The aggregations, per group of (any keys, *CLASS_COLUMNS), that ``tallies`` are taken
    from: the rows, each summed column's sum, each counted column's non-null count; named
    by ``Tally.partial``, each once however many tallies read it."""
    aggs = {ROWS: pl.len()}
    aggs.update({t.partial: t.aggregation() for t in tallies})
    return aggs


def shares(tallies: Mapping[str, Tally]) -> dict[str, pl.Expr]:
    """Elementwise, on ``partial_aggs`` rows (which hold CLASS_COLUMNS): each tally's share
    of the row, named as in ``tallies`` — its partial column where the row's class is the
    tally's, else 0. Summed over any grouping of the partial rows, a share is the tally over
    those groups' rows."""
    out = {}
    for name, tally in tallies.items():
        part = pl.col(tally.partial)
        share = part if tally.where is None else pl.when(tally.where).then(part).otherwise(0)
        dtype = tally.dtype or (pl.Int64 if tally.count or tally.value is None else None)
        out[name] = share if dtype is None else share.cast(dtype)
    return out
