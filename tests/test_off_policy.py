"""Off-policy estimators (economics/off_policy.py) on synthetic logged decisions whose true
value is known: one-provider routing and M5's multi-provider test batches, coverage of the
intervals, the doubly robust estimator's variance, and the estimates stored with a manifest."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from economics.off_policy import (
    ESTIMATES_SCHEMA,
    LOGGED_SCHEMA,
    change_estimates,
    estimate_rows,
    logged_decisions,
    policy_value,
)
from economics.routing import select_providers

MU = {"cartoon": {"a": 3.0, "b": 2.0, "c": 1.0}, "slow_motion": {"x": 4.0, "y": 4.5}}
LOGGING = {"cartoon": {"a": 0.1, "b": 0.8, "c": 0.1}, "slow_motion": {"x": 0.9, "y": 0.1}}
TARGET = {"cartoon": {"a": 0.7, "b": 0.2, "c": 0.1}, "slow_motion": {"x": 0.2, "y": 0.8}}
MIX = {"cartoon": 0.6, "slow_motion": 0.4}
AT = datetime(2026, 5, 1, tzinfo=UTC)


def _true_value(target) -> float:
    return sum(MIX[e] * sum(p * MU[e][a] for a, p in target[e].items()) for e in MIX)


def _one_provider_log(n: int, rng: np.random.Generator, noise: float = 1.0) -> pl.DataFrame:
    effects = rng.choice(list(MIX), size=n, p=list(MIX.values()))
    rows = []
    for i, e in enumerate(effects):
        arms, probs = list(LOGGING[e]), list(LOGGING[e].values())
        a = arms[rng.choice(len(arms), p=probs)]
        rows.append(
            {
                "decision_id": f"d{i}",
                "effect_type": e,
                "provider_id": a,
                "propensity": LOGGING[e][a],
                "reward": MU[e][a] + noise * rng.standard_normal(),
            }
        )
    return pl.DataFrame(rows, schema=LOGGED_SCHEMA)


@pytest.mark.slow
def test_estimators_are_unbiased_within_their_intervals_on_one_provider_routing():
    rng = np.random.default_rng(2024)
    truth = _true_value(TARGET)
    replications = 150
    covered = dict.fromkeys(("ips", "snips", "dr"), 0)
    values: dict[str, list[float]] = {k: [] for k in covered}
    for _ in range(replications):
        est = policy_value(_one_provider_log(1500, rng), TARGET)
        for name, e in est.items():
            covered[name] += e.ci_low <= truth <= e.ci_high
            values[name].append(e.value)
    for name in covered:
        # 95 % intervals: coverage over 150 replications well above 85 %.
        assert covered[name] / replications >= 0.88, (name, covered[name])
        # Unbiased: the mean of the estimates is within 3 standard errors of the truth.
        v = np.asarray(values[name])
        assert abs(v.mean() - truth) < 3 * v.std(ddof=1) / np.sqrt(replications), name
    # The reward model removes most of the variance the importance weights add.
    assert np.std(values["dr"]) < np.std(values["ips"])


def test_the_logging_policy_itself_is_estimated_by_its_mean_reward():
    log = _one_provider_log(3000, np.random.default_rng(5))
    est = policy_value(log, LOGGING)
    assert est["ips"].value == pytest.approx(log["reward"].mean())
    assert est["ips"].ess == pytest.approx(log.height)  # every weight is 1


def test_horvitz_thompson_on_test_batches_with_several_providers_per_job():
    """M5 runs its top 2 and, with probability ε, one more: each task logs its inclusion
    probability, and the estimate of a one-provider target is still unbiased."""
    rng = np.random.default_rng(7)
    pyrng = random.Random(7)
    entries = [{"provider_id": p, "rank": i + 1} for i, p in enumerate(["b", "c", "a", "d"])]
    mu = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}
    target = {"cartoon": {"a": 0.6, "b": 0.1, "c": 0.1, "d": 0.2}}
    truth = sum(p * mu[a] for a, p in target["cartoon"].items())
    estimates = []
    for _ in range(60):
        rows = [
            {
                "decision_id": f"j{j}",
                "effect_type": "cartoon",
                "provider_id": sel.provider_id,
                "propensity": sel.propensity,
                "reward": mu[sel.provider_id] + rng.standard_normal(),
            }
            for j in range(2000)
            for sel in select_providers(entries, pyrng, top_k=2, epsilon=0.2)
        ]
        estimates.append(policy_value(pl.DataFrame(rows, schema=LOGGED_SCHEMA), target))
    for name in ("ips", "snips", "dr"):
        v = np.array([e[name].value for e in estimates])
        assert abs(v.mean() - truth) < 3 * v.std(ddof=1) / np.sqrt(len(v)) + 1e-9, name
        inside = np.mean([e[name].ci_low <= truth <= e[name].ci_high for e in estimates])
        assert inside >= 0.85, name


def test_bad_input_is_refused_and_nothing_logged_gives_nan():
    log = _one_provider_log(10, np.random.default_rng(1))
    with pytest.raises(ValueError, match="propensities"):
        policy_value(log.with_columns(propensity=pl.lit(0.0)), TARGET)
    with pytest.raises(ValueError, match="lack columns"):
        policy_value(log.drop("reward"), TARGET)
    est = policy_value(log, {"warm_grade": {"p": 1.0}})
    assert all(e.decisions == 0 and np.isnan(e.value) for e in est.values())
    # Rows without a propensity (fallbacks) are left out, not divided by.
    some = policy_value(
        log.with_columns(propensity=pl.when(pl.col("decision_id") == "d0").then(None).otherwise("propensity")), TARGET
    )
    assert some["ips"].decisions == 9


def test_logged_decisions_reward_is_the_standalone_margin():
    costs = pl.DataFrame(
        {
            "video_id": ["v1", "v1", "v1", "v2"],
            "effect_type": ["cartoon", "cartoon", "cartoon", "cartoon"],
            "provider_id": ["a", "b", "s", "a"],
            "status": ["succeeded", "failed", "succeeded", "succeeded"],
            "selection": ["ranked", "exploration", "shadow", "ranked"],
            "propensity": [1.0, 0.05, 1.0, None],
            "cost_usd": [0.01, 0.02, 0.5, 0.01],
        }
    )
    logged = logged_decisions(costs, {"cartoon": 4}, 0.01)
    assert logged.schema == LOGGED_SCHEMA
    assert logged.to_dicts() == [
        {"decision_id": "v1/cartoon", "effect_type": "cartoon", "provider_id": "a", "propensity": 1.0, "reward": 3.0},
        {"decision_id": "v1/cartoon", "effect_type": "cartoon", "provider_id": "b", "propensity": 0.05, "reward": -2.0},
    ]


def test_change_estimates_are_stored_with_the_manifest_and_flatten_to_rows():
    def manifest(version: str, weights: dict) -> dict:
        return {
            "version": version,
            "effects": {
                e: [{"provider_id": p, "rank": i + 1, "weight": w} for i, (p, w) in enumerate(ws.items())]
                for e, ws in weights.items()
            },
        }

    log = _one_provider_log(500, np.random.default_rng(3))
    old, new = manifest("old", LOGGING), manifest("new", TARGET)
    new["off_policy"] = change_estimates(log, new, old, AT)
    rows = estimate_rows(new)
    assert rows.schema == ESTIMATES_SCHEMA and rows.height == 6
    assert set(zip(rows["policy"], rows["policy_version"], strict=True)) == {("candidate", "new"), ("current", "old")}
    assert (rows["previous_version"] == "old").all() and (rows["version"] == "new").all()
    direct = policy_value(log, TARGET)["dr"]
    assert rows.filter((pl.col("policy") == "candidate") & (pl.col("estimator") == "dr"))["value"][0] == pytest.approx(
        direct.value
    )
    first = manifest("first", TARGET)
    first["off_policy"] = change_estimates(log.head(0), first, None, AT)
    assert {e["value"] for e in first["off_policy"]["estimates"]} == {None}  # JSON-safe, no NaN
    assert estimate_rows({"version": "x", "effects": {}}).is_empty()


def test_an_override_carries_no_estimate_of_the_manifest_it_overrides():
    from economics.routing import override_manifest

    base = {
        "version": "v1",
        "published_at": AT.isoformat(),
        "effects": {
            "cartoon": [{"provider_id": "a", "rank": 1, "weight": 0.9}, {"provider_id": "b", "rank": 2, "weight": 0.1}]
        },
    }
    base["off_policy"] = change_estimates(_one_provider_log(50, np.random.default_rng(4)), base, None, AT)
    forced = override_manifest(base, "cartoon", "b", "incident", AT)
    assert "off_policy" not in forced and estimate_rows(forced).is_empty()
    assert "off_policy" in base  # the base manifest is not modified
