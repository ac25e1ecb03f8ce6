"""Counts and sums over a class of rows, taken from partial rows grouped by class
(``economics.tallies``), equal the same tallies written per row; ``frames.one_of`` equals
``is_in``."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from economics.frames import one_of
from economics.marginality import MARGIN_TALLIES
from economics.stats import STAT_TALLIES
from economics.tallies import CLASS_COLUMNS, Tally, partial_aggs, shares

TALLIES = {**MARGIN_TALLIES, **STAT_TALLIES}


def _per_row(tally: Tally) -> pl.Expr:
    """The tally written per row, as the aggregations it replaces were."""
    if tally.value is None:
        counted = pl.lit(True) if tally.where is None else tally.where
        return counted.sum().cast(pl.Int64)
    value = pl.col(tally.value) if tally.where is None else pl.when(tally.where).then(pl.col(tally.value))
    out = value.count().cast(pl.Int64) if tally.count else value.sum()
    return out if tally.dtype is None else out.cast(tally.dtype)


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    """2,000 cost rows over three groups: every status (and none), cache hits, null costs,
    durations and savings."""
    rng = np.random.default_rng(3)
    n = 2_000
    status = rng.choice(np.array(["succeeded", "failed", "cached", None], dtype=object), n, p=[0.6, 0.2, 0.1, 0.1])
    return pl.DataFrame(
        {
            "group": rng.choice(["a", "b", "c"], n),
            "status": status,
            "cache_hit": np.where(status == "cached", True, rng.random(n) < 0.02),
            "cost_usd": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            "duration_ms": rng.integers(1, 10_000, n),
            "tokens_charged": rng.integers(0, 6, n),
            "saved_cost_usd": np.where(status == "cached", rng.random(n), np.nan),
        }
    ).with_columns(
        pl.col("cost_usd").fill_nan(None),
        pl.col("saved_cost_usd").fill_nan(None),
        pl.when(pl.int_range(pl.len()) % 9 == 0).then(None).otherwise(pl.col("duration_ms")).alias("duration_ms"),
        cost_tokens=pl.col("cost_usd") * 100,
        revenue_usd=pl.col("tokens_charged") * 0.01,
    )


def test_tallies_from_partials_by_class_equal_the_tallies_per_row(rows):
    per_row = rows.group_by("group").agg(**{name: _per_row(t) for name, t in TALLIES.items()}).sort("group")
    partials = rows.lazy().group_by("group", *CLASS_COLUMNS).agg(**partial_aggs(TALLIES.values())).collect()
    assert partials.height > 9  # several classes per group
    from_partials = (
        partials.with_columns(**shares(TALLIES))
        .group_by("group")
        .agg(pl.col(name).sum() for name in TALLIES)
        .sort("group")
        .select(per_row.columns)
    )
    assert_frame_equal(from_partials, per_row, check_dtypes=False, rel_tol=1e-12, abs_tol=1e-12)
    # The counts are exact, and a class whose rows are all null still counts its rows.
    assert per_row["_s_executions"].sum() == rows.filter(pl.col("status").is_in(["succeeded", "failed"])).height
    assert from_partials["succeeded"].dtype == pl.Int64


def test_each_summed_or_counted_column_is_aggregated_once():
    aggs = partial_aggs(TALLIES.values())
    assert len(aggs) == len(set(aggs)) == 9  # rows, six sums, two non-null counts
    assert set(aggs) >= {"_rows", "_sum_cost_usd", "_count_cost_usd", "_sum_duration_ms", "_count_duration_ms"}


def test_one_of_is_is_in():
    s = pl.Series("s", ["shadow", "ranked", None, "ab", "abc"])
    assert_frame_equal(
        pl.select(one_of(pl.lit(s), ("shadow", "ab")).alias("x")),
        pl.select(pl.lit(s).is_in(["shadow", "ab"]).alias("x")),
    )
    with pytest.raises(ValueError, match="at least one"):
        one_of(pl.col("s"), ())
