"""Pre-run cost estimator: recovers a known size → seconds law, calibrated 80% intervals on
held-out data, fallbacks, documented factors, and the accuracy report."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from economics.cost_model import ProviderCostProfile, RateCard, execution_cost_usd
from economics.estimator import (
    MIN_REGRESSION_ROWS,
    PRIOR_SECONDS_PER_MPF,
    QUANTIZED_FACTOR,
    CostEstimator,
    TaskSpec,
    batch_factor,
    estimate_accuracy,
    megapixel_frames,
)

CARD = RateCard({"cpu-2c": 0.36 / 3600, "gpu-l4": 3.6 / 3600}, spot_multiplier=0.35)
A = 0.05  # true seconds per megapixel-frame
SIGMA = 0.25  # multiplicative noise: log-normal, σ of the log


def _synthetic(n: int, seed: int, provider="p", effect="cartoon") -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    width = rng.choice([176, 320, 480, 640, 1280], n)
    height = (width * 9 // 16).astype(int)
    duration = rng.uniform(1, 20, n)
    size = megapixel_frames(width, height, duration, 25.0)
    seconds = A * size * np.exp(rng.normal(0, SIGMA, n))
    return pl.DataFrame(
        {
            "task_id": [f"{provider}-{seed}-{i}" for i in range(n)],
            "provider_id": provider,
            "effect_type": effect,
            "status": "succeeded",
            "width": width,
            "height": height,
            "duration_s": duration,
            "fps": 25.0,
            "compute_seconds": seconds,
            "instance_type": "cpu-2c",
        }
    )


@pytest.fixture(scope="module")
def fitted() -> CostEstimator:
    return CostEstimator.fit(_synthetic(1000, seed=1))


def test_regression_recovers_the_seconds_per_megapixel_frame(fitted):
    c = fitted.coefficients().row(0, named=True)
    assert c["method"] == "regression" and c["n"] == 1000
    assert c["slope"] == pytest.approx(1.0, abs=0.05)
    assert c["log_sd"] == pytest.approx(SIGMA, rel=0.15)
    # a is the median seconds of a task of any size divided by its size.
    for width, duration in [(320, 2.0), (1280, 15.0)]:
        est = fitted.estimate(TaskSpec("cartoon", duration, width, width * 9 // 16, "p", "cpu-2c", fps=25), CARD)
        assert est.compute_seconds / est.megapixel_frames == pytest.approx(A, rel=0.06)


def test_interval_covers_about_80_percent_of_held_out_tasks(fitted):
    held_out = _synthetic(2000, seed=2)
    est = fitted.estimate_frame(held_out.drop("compute_seconds"), CARD)
    acc = estimate_accuracy(est, held_out).row(0, named=True)
    assert acc["n"] == 2000
    assert 0.76 <= acc["coverage"] <= 0.84  # ± 4.5 binomial standard errors of 2000 draws
    # Log-normal noise σ = 0.25: median |error| ≈ 17%, so MAPE ≈ 20% and p90 ≈ 40%.
    assert acc["mape"] < 0.25 and acc["p90_ape"] < 0.5
    cost_acc = estimate_accuracy(
        est, held_out.with_columns(cost_usd=pl.col("compute_seconds") * 0.0001), metric="cost_usd"
    ).row(0, named=True)
    assert cost_acc["coverage"] == pytest.approx(acc["coverage"])  # cost is linear in seconds here


def test_cost_follows_the_cost_model_at_every_quantile(fitted):
    profile = ProviderCostProfile(cold_start_seconds=60, tasks_per_burst=3, partner_usd_per_call=0.01)
    task = TaskSpec("cartoon", 10, 640, 360, "p", "gpu-l4", spot=True)
    est = fitted.estimate(task, CARD, profile)
    assert est.compute_seconds_low < est.compute_seconds < est.compute_seconds_high
    for s, usd in [
        (est.compute_seconds, est.cost_usd),
        (est.compute_seconds_low, est.cost_usd_low),
        (est.compute_seconds_high, est.cost_usd_high),
    ]:
        assert usd == pytest.approx(execution_cost_usd(s, "gpu-l4", 0.01, CARD, True, profile=profile))


def test_batch_and_quantization_are_documented_multipliers(fitted):
    base = fitted.estimate(TaskSpec("cartoon", 10, 640, 360, "p", "cpu-2c"), CARD)
    tuned = fitted.estimate(TaskSpec("cartoon", 10, 640, 360, "p", "cpu-2c", batch_size=4, quantized=True), CARD)
    assert batch_factor(1) == 1.0 and batch_factor(4) == pytest.approx(0.85)
    assert tuned.compute_seconds == pytest.approx(base.compute_seconds * 0.85 * QUANTIZED_FACTOR)
    with pytest.raises(ValueError, match="batch_size"):
        batch_factor(0)


def test_fallbacks_provider_rate_then_prior():
    few = _synthetic(MIN_REGRESSION_ROWS - 1, seed=3, provider="q", effect="warm_grade")
    est = CostEstimator.fit(pl.concat([few, _synthetic(2, seed=4, provider="r")]))
    ratios = few["compute_seconds"] / megapixel_frames(few["width"], few["height"], few["duration_s"], 25.0)
    by_pair = est.estimate(TaskSpec("warm_grade", 4, 480, 270, "q", "cpu-2c"), CARD)
    assert by_pair.method == "provider_rate" and by_pair.n_train == MIN_REGRESSION_ROWS - 1
    assert by_pair.compute_seconds / by_pair.megapixel_frames == pytest.approx(ratios.median())
    # Same provider, an effect it has no history for: the provider's pooled rate.
    assert est.estimate(TaskSpec("cool_grade", 4, 480, 270, "q", "cpu-2c"), CARD).method == "provider_rate"
    # Two rows are too few for a spread: the prior, with its ×/÷ 3.4 interval.
    prior = est.estimate(TaskSpec("cartoon", 4, 480, 270, "r", "cpu-2c"), CARD)
    assert prior.method == "prior" and prior.n_train == 0
    assert prior.compute_seconds == pytest.approx(PRIOR_SECONDS_PER_MPF * prior.megapixel_frames)
    assert prior.compute_seconds_high / prior.compute_seconds == pytest.approx(math.exp(1.2816 * 0.96), rel=1e-3)


def test_same_sized_inputs_do_not_fit_a_slope():
    same = _synthetic(50, seed=5).with_columns(width=pl.lit(480), height=pl.lit(270), duration_s=pl.lit(10.0))
    assert CostEstimator.fit(same).coefficients()["method"].to_list() == ["provider_rate"]


def test_failed_and_zero_second_rows_do_not_train():
    rows = _synthetic(20, seed=6).with_columns(
        status=pl.when(pl.int_range(pl.len()) < 15).then(pl.lit("failed")).otherwise(pl.lit("succeeded"))
    )
    assert CostEstimator.fit(rows).coefficients()["n"].to_list() == [5]


def test_accuracy_on_hand_checked_numbers():
    est = pl.DataFrame(
        {
            "task_id": ["a", "b", "c", "d"],
            "provider_id": ["p"] * 4,
            "effect_type": ["x"] * 4,
            "compute_seconds": [10.0, 10.0, 10.0, 10.0],
            "compute_seconds_low": [5.0] * 4,
            "compute_seconds_high": [15.0] * 4,
        }
    )
    act = pl.DataFrame({"task_id": ["a", "b", "c", "d", "zzz"], "compute_seconds": [10.0, 20.0, 5.0, 8.0, 1.0]})
    r = estimate_accuracy(est, act).row(0, named=True)
    # |APE| = 0, 0.5, 1.0, 0.25; inside [5, 15]: 10, 5, 8 → 3 of 4.
    assert r["n"] == 4 and r["mape"] == pytest.approx(0.4375) and r["coverage"] == 0.75
    assert r["p90_ape"] == pytest.approx(np.quantile([0, 0.5, 1.0, 0.25], 0.9))
