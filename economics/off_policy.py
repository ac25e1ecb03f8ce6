"""Off-policy evaluation of a routing manifest: the margin per routed job it would earn,
estimated from the decisions other manifests made (docs/routing.md).

Logged decisions. A decision is one job of one effect type (``decision_id``); it ran one or
more providers, each logged with its ``propensity`` p_i — the probability that the logging
policy included that provider (the manifest weight for one-provider routing; the inclusion
probability of M5's test batch, ``economics.routing.inclusion_probabilities``) — and its
``reward`` r_i, the margin in tokens the provider earned on it standing alone: the effect's
price if it succeeded, minus its cost. The target policy π gives each provider of an effect
type a probability π(a | e) (a manifest's weights). Its value is

    V(π) = E_decisions[ Σ_a π(a | e) · μ(e, a) ]      μ(e, a) = expected reward of a on e.

Estimators (w_i = π(a_i | e_i) / p_i, J decisions, every sum over the logged rows):

* **IPS** — Horvitz & Thompson, "A generalization of sampling without replacement from a
  finite universe", JASA 1952:  V̂ = (1/J) Σ_i w_i·r_i. Unbiased whenever p_i > 0 for every
  provider π can choose, also when a decision logged several providers (each row is then an
  inclusion with its own probability).
* **SNIPS** — self-normalised IPS (Hájek's ratio estimator; Swaminathan & Joachims, "The
  self-normalized estimator for counterfactual learning", NeurIPS 2015):
  V̂ = Σ_i w_i·r_i / Σ_i w_i, the IPS numerator over an estimate of its expected
  denominator (E[Σ_{i ∈ decision} w_i] = Σ_a π(a | e) = 1). Slightly biased, much lower
  variance when a few large weights dominate.
* **DR** — doubly robust, Dudík, Langford & Li, "Doubly robust policy evaluation and
  learning", ICML 2011:  V̂ = (1/J) Σ_j [ Σ_a π(a | e_j)·q̂(e_j, a) + Σ_{i ∈ j} w_i·(r_i −
  q̂(e_j, a_i)) ], with q̂ the mean reward per (effect type, provider) fitted on the *other*
  fold of decisions (two-fold cross-fitting, so q̂ and the correction are independent).
  Unbiased if either the propensities or q̂ are right.

Confidence intervals: the per-decision terms are independent, so V̂ ± z·sd/√J (normal
approximation; for SNIPS the delta method on the ratio). ``ess`` is Kish's effective sample
size (Σw)² / Σw² of the importance weights: a small one says the log barely covers π.

Open Bandit Pipeline (Saito et al. 2021) implements the same estimators, but its last release
(obp 0.4.1) requires torch, pandas, matplotlib and seaborn — gigabytes for a few lines of
arithmetic — so they are written here.

Pure: polars / numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import polars as pl

from economics.routing import manifest_weights

# Two-sided 95 % normal quantile.
Z_95 = 1.959963984540054
ESTIMATORS = ("ips", "snips", "dr")

LOGGED_SCHEMA = pl.Schema(
    {
        "decision_id": pl.String,
        "effect_type": pl.String,
        "provider_id": pl.String,
        "propensity": pl.Float64,
        "reward": pl.Float64,
    }
)


@dataclass(frozen=True)
class Estimate:
    """One estimate of a policy's value.

    Attributes:
        estimator: ``ips`` | ``snips`` | ``dr``.
        value: margin per routed job, tokens (NaN without decisions).
        ci_low, ci_high: the 95 % interval (normal approximation).
        decisions: J, the logged decisions used.
        ess: Kish's effective sample size of the importance weights.
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    decisions: int
    ess: float

    def as_dict(self) -> dict:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)


def _target_frame(target: Mapping[str, Mapping[str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"effect_type": e, "provider_id": p, "_pi": float(w)} for e, ws in target.items() for p, w in ws.items()],
        schema={"effect_type": pl.String, "provider_id": pl.String, "_pi": pl.Float64},
    )


def _check(logged: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in LOGGED_SCHEMA if c not in logged.columns]
    if missing:
        raise ValueError(f"logged decisions lack columns {missing}")
    rows = logged.select(LOGGED_SCHEMA.names()).cast(LOGGED_SCHEMA).drop_nulls(["propensity", "reward"])
    bad = rows.filter((pl.col("propensity") <= 0) | (pl.col("propensity") > 1))
    if not bad.is_empty():
        raise ValueError(f"propensities must be within (0, 1]; {bad.height} rows are not")
    return rows


def _normal(name: str, terms: np.ndarray, weights: np.ndarray, z: float) -> Estimate:
    j = len(terms)
    value = float(terms.mean())
    half = z * float(terms.std(ddof=1)) / math.sqrt(j) if j > 1 else math.inf
    return Estimate(name, value, value - half, value + half, j, _ess(weights))


def _ess(w: np.ndarray) -> float:
    s2 = float((w**2).sum())
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def _fold(decision: pl.Expr) -> pl.Expr:
    # Deterministic two-fold split by decision, stable across runs (hash of the id).
    return (decision.hash(seed=7) % 2).cast(pl.Int8)


def reward_model(logged: pl.DataFrame) -> pl.DataFrame:
    """q̂(e, a): mean reward per (effect_type, provider_id) of the logged rows (the direct
    method's model), with ``_q_effect`` the effect type's mean for providers never logged."""
    per_arm = logged.group_by("effect_type", "provider_id").agg(_q=pl.col("reward").mean())
    per_effect = logged.group_by("effect_type").agg(_q_effect=pl.col("reward").mean())
    return per_arm.join(per_effect, on="effect_type")


def policy_value(
    logged: pl.DataFrame,
    target: Mapping[str, Mapping[str, float]],
    z: float = Z_95,
) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of ``target``'s margin per routed job (module docstring).

    Args:
        logged: ``LOGGED_SCHEMA`` rows; rows with a null propensity or reward (fallback
            tasks, shadow copies) are left out.
        target: effect type → provider_id → probability (a manifest's weights). Decisions of
            effect types the target does not route are left out; a logged provider the
            target does not list has π = 0.
        z: normal quantile of the interval (1.96: 95 %).

    Returns:
        ``{"ips": Estimate, "snips": …, "dr": …}``; values NaN with 0 decisions.

    Raises:
        ValueError: a missing column, or a propensity outside (0, 1].
    """
    rows = _check(logged)
    pi = _target_frame(target)
    rows = rows.filter(pl.col("effect_type").is_in(pi["effect_type"].unique().to_list()))
    if rows.is_empty():
        nan = math.nan
        return {name: Estimate(name, nan, nan, nan, 0, 0.0) for name in ESTIMATORS}
    rows = (
        rows.join(pi, on=["effect_type", "provider_id"], how="left")
        .with_columns(_w=pl.col("_pi").fill_null(0.0) / pl.col("propensity"), _fold=_fold(pl.col("decision_id")))
        .with_columns(_wr=pl.col("_w") * pl.col("reward"))
    )
    # Cross-fitted reward model: the rows of fold f are predicted by the means of the other
    # fold (tagged _fold = f here), falling back to its effect type's mean, then 0.
    arm_models, effect_models = [], []
    for f in (0, 1):
        m = reward_model(rows.filter(pl.col("_fold") != f)).with_columns(_fold=pl.lit(f, pl.Int8))
        arm_models.append(m.drop("_q_effect"))
        effect_models.append(m.select("effect_type", "_q_effect", "_fold").unique())
    arm_model, effect_model = pl.concat(arm_models), pl.concat(effect_models)

    def with_qhat(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.join(arm_model, on=["effect_type", "provider_id", "_fold"], how="left")
            .join(effect_model, on=["effect_type", "_fold"], how="left")
            .with_columns(_qhat=pl.coalesce("_q", "_q_effect", pl.lit(0.0)))
        )

    predicted = with_qhat(rows)
    # Direct part per decision: Σ_a π(a | e)·q̂(e, a) over every provider the target lists.
    direct = (
        with_qhat(predicted.select("decision_id", "effect_type", "_fold").unique().join(pi, on="effect_type"))
        .group_by("decision_id")
        .agg(_dm=(pl.col("_pi") * pl.col("_qhat")).sum())
    )
    per_decision = (
        predicted.group_by("decision_id")
        .agg(
            _wr=pl.col("_wr").sum(),
            _w=pl.col("_w").sum(),
            _corr=(pl.col("_w") * (pl.col("reward") - pl.col("_qhat"))).sum(),
        )
        .join(direct, on="decision_id", how="left")
        .sort("decision_id")
    )
    wr, w = per_decision["_wr"].to_numpy(), per_decision["_w"].to_numpy()
    weights = rows["_w"].to_numpy()
    ips = _normal("ips", wr, weights, z)
    dr = _normal("dr", per_decision["_dm"].fill_null(0.0).to_numpy() + per_decision["_corr"].to_numpy(), weights, z)
    return {"ips": ips, "snips": _snips(wr, w, weights, z), "dr": dr}


def _snips(wr: np.ndarray, w: np.ndarray, weights: np.ndarray, z: float) -> Estimate:
    """Σ w·r / Σ w over decisions, with the delta-method interval of a ratio of means."""
    j = len(wr)
    total = float(w.sum())
    if total <= 0:
        return Estimate("snips", math.nan, math.nan, math.nan, j, _ess(weights))
    value = float(wr.sum()) / total
    influence = (wr - value * w) / (total / j)
    half = z * float(influence.std(ddof=1)) / math.sqrt(j) if j > 1 else math.inf
    return Estimate("snips", value, value - half, value + half, j, _ess(weights))


# Selections that a routing draw made (shadow copies always run; A/B runs and fallbacks are
# not drawn from a manifest and carry no propensity).
ROUTED_SELECTIONS = ("ranked", "exploration")
ESTIMATE_COLUMNS = ("value", "ci_low", "ci_high", "decisions", "ess")


def logged_decisions(costs: pl.DataFrame, price_tokens: Mapping[str, int], token_usd_rate: float) -> pl.DataFrame:
    """``LOGGED_SCHEMA`` rows from ``execution_costs``-shaped rows.

    The reward of a task is what its provider earns on the job standing alone: the effect's
    list price in tokens if it succeeded, minus its cost in tokens. (The ledger charges a job
    once, on the task it delivers, so ``tokens_charged`` of a test batch's other tasks is 0
    whatever they did; the manifest's weights route one provider per job, which is what the
    estimate values.)

    Args:
        costs: video_id, effect_type, provider_id, status, selection, propensity, cost_usd.
        price_tokens: effect type → list price in tokens.
        token_usd_rate: USD per token.

    Returns:
        One row per routed task (selection ranked or exploration, propensity not null);
        decision_id = ``<video_id>/<effect_type>``.
    """
    prices = pl.DataFrame(
        {"effect_type": list(price_tokens), "_price": [float(p) for p in price_tokens.values()]},
        schema={"effect_type": pl.String, "_price": pl.Float64},
    )
    return (
        costs.filter(pl.col("selection").is_in(ROUTED_SELECTIONS) & pl.col("propensity").is_not_null())
        .join(prices, on="effect_type", how="left")
        .select(
            decision_id=pl.concat_str("video_id", pl.lit("/"), "effect_type"),
            effect_type="effect_type",
            provider_id="provider_id",
            propensity="propensity",
            reward=pl.when(pl.col("status") == "succeeded").then(pl.col("_price").fill_null(0.0)).otherwise(0.0)
            - pl.col("cost_usd") / token_usd_rate,
        )
        .cast(LOGGED_SCHEMA)
    )


def change_estimates(
    logged: pl.DataFrame,
    candidate: dict,
    current: dict | None,
    at: datetime,
) -> dict:
    """Off-policy estimates of a manifest change: every estimator for the candidate manifest
    and, when there is one, for the manifest it replaces, on the same logged decisions —
    what the Routing page shows before and after the change. The economics job stores it in
    the published manifest (``off_policy``) and in ``routing_estimates`` (``estimate_rows``).

    Args:
        logged: ``logged_decisions`` rows.
        candidate, current: manifests (``economics.routing`` dicts; weights per entry).
        at: when the estimate was made (UTC).

    Returns:
        JSON-serialisable ``{"estimated_at" (ISO), "previous_version" (or None),
        "estimates": [{policy ('candidate' | 'current'), policy_version, estimator, value,
        ci_low, ci_high (tokens per routed job; None when undefined), decisions, ess}…]}``.
    """
    estimates = []
    for policy, manifest in (("candidate", candidate), ("current", current)):
        if manifest is None:
            continue
        for name, est in policy_value(logged, manifest_weights(manifest)).items():
            estimates.append(
                {
                    "policy": policy,
                    "policy_version": manifest["version"],
                    "estimator": name,
                    **{c: _finite(getattr(est, c)) for c in ESTIMATE_COLUMNS},
                }
            )
    return {
        "estimated_at": at.isoformat(),
        "previous_version": current["version"] if current else None,
        "estimates": estimates,
    }


def _finite(x: float | int) -> float | int | None:
    return None if isinstance(x, float) and not math.isfinite(x) else x


# (Annotated: mypy types a dict mixing dtype classes with a Datetime instance as object.)
_ESTIMATE_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "version": pl.String,
    "previous_version": pl.String,
    "policy": pl.String,
    "policy_version": pl.String,
    "estimator": pl.String,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "decisions": pl.Int64,
    "ess": pl.Float64,
    "estimated_at": pl.Datetime("us", "UTC"),
}
ESTIMATES_SCHEMA = pl.Schema(_ESTIMATE_COLUMNS)


def estimate_rows(manifest: dict) -> pl.DataFrame:
    """``ESTIMATES_SCHEMA`` rows (``routing_estimates``) of a published manifest's
    ``off_policy`` field; empty when it has none (an emergency override, a manifest from
    before off-policy estimates)."""
    block = manifest.get("off_policy")
    if not block:
        return pl.DataFrame(schema=ESTIMATES_SCHEMA)
    at = datetime.fromisoformat(block["estimated_at"])
    return pl.DataFrame(
        [
            {
                "version": manifest["version"],
                "previous_version": block["previous_version"],
                **e,
                "estimated_at": at,
            }
            for e in block["estimates"]
        ],
        schema=ESTIMATES_SCHEMA,
    )
