"""Margin, defined once: the scalar and the Polars expression agree, nothing charged means no
margin, and the target-price inverse lands on its target."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from economics.margin import margin, margin_expr, price_for_margin

CASES = [(100, 25.0, 0.75), (10, 10.0, 0.0), (4, 6.0, -0.5), (0, 3.0, None), (0, 0.0, None), (-5, 1.0, None)]


@pytest.mark.parametrize("charged, cost, expected", CASES)
def test_scalar(charged, cost, expected):
    assert margin(charged, cost) == (pytest.approx(expected) if expected is not None else None)


def test_expression_matches_the_scalar_row_by_row_and_over_sums():
    frame = pl.DataFrame({"charged": [c for c, _, _ in CASES] + [None], "cost": [c for _, c, _ in CASES] + [1.0]})
    per_row = frame.select(m=margin_expr("charged", "cost"))["m"]
    assert per_row.dtype == pl.Float64
    assert per_row.to_list()[:-1] == [pytest.approx(e) if e is not None else None for _, _, e in CASES]
    assert per_row[-1] is None  # an unknown charge has no margin either
    total = frame.drop_nulls().select(m=margin_expr(pl.col("charged").sum(), pl.col("cost").sum()))["m"][0]
    assert total == pytest.approx(margin(sum(c for c, _, _ in CASES), sum(c for _, c, _ in CASES)))


# Subnormal costs (below 2.2e-308) lose the precision the ratio needs; no real cost is one.
@given(st.floats(0, 1e6, allow_nan=False, allow_subnormal=False), st.floats(-5, 0.99))
def test_price_for_margin_earns_its_target(cost, target):
    price = price_for_margin(cost, target)
    if price > 0:
        assert margin(price, cost) == pytest.approx(target, abs=1e-9)


def test_no_price_keeps_a_margin_of_one_or_more():
    with pytest.raises(ValueError, match="a margin target must be below 1"):
        price_for_margin(1.0, 1.0)
