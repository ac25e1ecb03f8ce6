"""Recommendations from real executions (docs/architecture.md, "Economics"): what to change to earn more per video.

Four kinds, each from its own rule (thresholds in ``Policy``, each with its reason):

* ``PROVIDER_SWITCH`` — per effect type, against the provider the current manifest ranks
  first: a provider at least ``min_saving_share`` cheaper per successful output whose quality
  is within ``quality_tolerance``, else one at least ``quality_gain`` better whose cost is
  within ``cost_tolerance_share``. Cheaper wins over better: profitability comes first.
* ``PRICE_ADJUSTMENT`` — per effect type: margin below ``margin_floor``, or price more than
  ``market_premium`` above a given market price → the integer token price that reaches
  ``target_margin`` (never below the market price when cutting).
* ``FLEET_OPTIMIZATION`` — per provider: move to spot when its tasks are short enough to
  finish inside a spot interruption notice; move to a cheaper instance of the same family
  when measured utilisation leaves room (needs ``idle_cost_usd`` from
  ``cost_model.cost_breakdown``).
* ``WORKFLOW_TUNING`` — per provider × effect type: high failure rate, high cost variance,
  or artifact-heavy outputs.

Numbers. ``cost per success`` = all the pair's cost (failures included: they are paid for by
the successes) / successful executions. Volumes are per day over the observed window
(``finished_at`` span, at least ``min_window_days``), so a projected impact is "per day at the
current volume" without price elasticity. Margins are ratios of sums (as in
``economics.marginality``). ``confidence`` = n / (n + 10), the routing manifest's pseudo-count
(``economics.routing.CONFIDENCE_PSEUDO_COUNT``), with n the smaller sample a rule rests on.

Only real rows are used: rows whose ``source`` is set and not ``real`` (simulated) are dropped,
so a simulation never moves a real price (docs/architecture.md, "Economics").
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeGuard

import polars as pl

from economics.cost_model import RateCard
from economics.margin import margin as margin_of
from economics.margin import price_for_margin
from economics.revenue import provider_executions
from economics.routing import CONFIDENCE_PSEUDO_COUNT

TYPES = ("PROVIDER_SWITCH", "PRICE_ADJUSTMENT", "FLEET_OPTIMIZATION", "WORKFLOW_TUNING")

# Annotated because mypy types a dict that mixes dtype classes (pl.String) and instances
# (pl.Datetime(...)) as dict[str, object], which pl.Schema does not take.
_RECOMMENDATION_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "recommendation_id": pl.String,  # sha256 of (type, effect, provider, action), 16 hex
    "type": pl.String,  # one of TYPES
    "effect_type": pl.String,  # null for provider-wide FLEET_OPTIMIZATION
    "provider_id": pl.String,  # null for PRICE_ADJUSTMENT
    "title": pl.String,
    "rationale": pl.String,  # the numbers the rule fired on, in words
    "action": pl.String,  # JSON: what to change (machine-applicable)
    "projected_margin_impact_usd": pl.Float64,  # USD per day at current volume (+ = more margin)
    "projected_quality_impact": pl.Float64,  # Δ mean composite (0..1 scale); null = not projected
    "confidence": pl.Float64,  # 0..1
    "based_on_executions": pl.Int64,
    "auto_applicable": pl.Boolean,  # low risk and reversible: may be applied unattended
    "requires_admin_approval": pl.Boolean,
    "created_at": pl.Datetime("us", "UTC"),
}
RECOMMENDATION_SCHEMA = pl.Schema(_RECOMMENDATION_COLUMNS)


@dataclass(frozen=True)
class Policy:
    """Thresholds of the rules, and why each is where it is.

    Attributes:
        min_executions: fewest executions a rule may rest on; at 10 the confidence is 0.5,
            below it an estimate is more prior than data.
        quality_tolerance: composite a cheaper provider may lose. With the balanced routing
            weights (quality 0.5, cost 0.3) a ≥ 10% saving adds ≥ 0.03 to the score and
            0.02 of quality removes 0.01: the switch wins on the routing's own scale.
        min_saving_share: smallest relative saving worth a switch (below, noise in mean costs).
        quality_gain: composite a dearer-or-equal provider must add (0.05 → +0.025 score).
        cost_tolerance_share: most extra cost for that gain (5% → −0.015 score, < 0.025).
        margin_floor: business floor of an effect's margin; below it the price is revised.
        target_margin: margin a revised price aims at (SaaS-typical gross margin, 70%).
        market_premium: a price more than this share above the market price is "far above".
        spot_safe_seconds: AWS gives a two-minute notice before reclaiming spot capacity; a
            task whose p95 wall time fits in it finishes before the node goes.
        max_spot_failure_rate: spot adds interruptions; only providers that fail rarely now.
        max_target_utilisation: utilisation a downsized instance may reach; at 0.8 an M/M/1
            queue already waits 4 service times.
        max_failure_rate: failures are pure cost (refunded to the user); 10% also costs 10%
            of the routing score.
        max_cost_cv: coefficient of variation of cost per success; 1 is an exponential
            tail — heavier means runaway tasks (retries, timeouts), not just input sizes.
        max_artifacts: mean artifact score (0..1, assets/quality/artifacts.py noisy-OR) above
            which outputs show defects (≈ one component at a third of full scale).
        auto_min_confidence: auto-apply only on ≥ 40 executions per side (confidence 0.8).
        min_window_days: shortest window volumes are spread over, so minutes of traffic are
            not extrapolated to a day as if sustained.
    """

    min_executions: int = 10
    quality_tolerance: float = 0.02
    min_saving_share: float = 0.10
    quality_gain: float = 0.05
    cost_tolerance_share: float = 0.05
    margin_floor: float = 0.50
    target_margin: float = 0.70
    market_premium: float = 0.50
    spot_safe_seconds: float = 120.0
    max_spot_failure_rate: float = 0.05
    max_target_utilisation: float = 0.80
    max_failure_rate: float = 0.10
    max_cost_cv: float = 1.0
    max_artifacts: float = 0.25
    auto_min_confidence: float = 0.8
    min_window_days: float = 1.0


def confidence(n: int) -> float:
    """n / (n + CONFIDENCE_PSEUDO_COUNT), rounded to 4 places."""
    return round(n / (n + CONFIDENCE_PSEUDO_COUNT), 4)


def recommendation_id(type_: str, effect_type: str | None, provider_id: str | None, action: dict) -> str:
    """Stable id of a recommended action: the same change recommended again keeps its id
    (so a cycle can skip what an admin already decided), whatever numbers came with it."""
    key = json.dumps([type_, effect_type, provider_id, action], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _rec(
    type_: str,
    effect_type: str | None,
    provider_id: str | None,
    *,
    title: str,
    rationale: str,
    action: dict,
    impact: float,
    quality: float | None,
    n_conf: int,
    based_on: int,
    auto: bool,
    approval: bool,
) -> dict:
    """One RECOMMENDATION_SCHEMA row (without ``created_at``); ``n_conf`` sets the confidence."""
    return {
        "recommendation_id": recommendation_id(type_, effect_type, provider_id, action),
        "type": type_,
        "effect_type": effect_type,
        "provider_id": provider_id,
        "title": title,
        "rationale": rationale,
        "action": json.dumps(action, sort_keys=True),
        "projected_margin_impact_usd": round(float(impact), 8),
        "projected_quality_impact": None if quality is None else round(float(quality), 4),
        "confidence": confidence(n_conf),
        "based_on_executions": int(based_on),
        "auto_applicable": bool(auto),
        "requires_admin_approval": bool(approval),
    }


# --- inputs ---------------------------------------------------------------------------------------
def _real(costs: pl.DataFrame) -> pl.DataFrame:
    """Real provider executions: simulated rows and cache hits (no provider ran; the
    recommendations judge providers and their cost per run) left out."""
    costs = provider_executions(costs)
    if "source" not in costs.columns:
        return costs
    return costs.filter(pl.col("source").fill_null("real") == "real")


def _window_days(costs: pl.DataFrame, policy: Policy) -> float:
    if "finished_at" not in costs.columns or costs["finished_at"].drop_nulls().is_empty():
        return policy.min_window_days
    first, last = costs["finished_at"].min(), costs["finished_at"].max()
    # Series.min/max are typed as any scalar; a temporal column gives dates or datetimes.
    if not isinstance(first, date) or not isinstance(last, date):
        raise TypeError(f"finished_at must be a Datetime column, got {costs['finished_at'].dtype}")
    span = last - first
    return max(span.total_seconds() / 86_400, policy.min_window_days)


def _quality(quality: pl.DataFrame) -> pl.DataFrame:
    """Per (provider_id, effect_type): ``mean_quality``, ``mean_artifacts``, ``scored``, from
    ``quality_scores`` rows (``composite``, optional ``artifacts``, ``status``) or from an
    already aggregated frame (``mean_quality``, optional ``mean_artifacts``, ``scored``)."""
    keys = ["provider_id", "effect_type"]
    if "composite" in quality.columns:
        rows = quality.filter(pl.col("status") == "scored") if "status" in quality.columns else quality
        return rows.group_by(keys).agg(
            mean_quality=pl.col("composite").mean(),
            mean_artifacts=_opt(quality, "artifacts", None).cast(pl.Float64).mean(),
            scored=pl.len().cast(pl.Int64),
        )
    if "mean_quality" in quality.columns:
        return quality.select(
            *keys,
            pl.col("mean_quality").cast(pl.Float64),
            _opt(quality, "mean_artifacts", None).cast(pl.Float64).alias("mean_artifacts"),
            _opt(quality, "scored", None).cast(pl.Int64).alias("scored"),
        )
    raise ValueError("quality needs 'composite' (quality_scores rows) or 'mean_quality' (aggregated)")


def _opt(df: pl.DataFrame, name: str, default=0.0) -> pl.Expr:
    """An optional column, nulls filled with ``default`` (absent = ``default`` everywhere)."""
    if name not in df.columns:
        return pl.repeat(default, pl.len(), dtype=pl.Float64 if default is None else None)
    return pl.col(name) if default is None else pl.col(name).fill_null(default)


def _pair_stats(costs: pl.DataFrame, quality: pl.DataFrame, days: float) -> pl.DataFrame:
    """Per (provider_id, effect_type) figures every rule reads (see module docstring)."""
    ok = pl.col("status") == "succeeded"
    visible = ok & (_opt(costs, "selection", "ranked") != "shadow")
    stats = costs.group_by("provider_id", "effect_type").agg(
        n=pl.len().cast(pl.Int64),
        succeeded=ok.sum().cast(pl.Int64),
        visible=visible.sum().cast(pl.Int64),
        cost_usd=pl.col("cost_usd").sum(),
        failed_cost_usd=pl.col("cost_usd").filter(~ok).sum(),
        mean_success_cost=pl.col("cost_usd").filter(ok).mean(),
        median_success_cost=pl.col("cost_usd").filter(ok).median(),
        std_success_cost=pl.col("cost_usd").filter(ok).std(),
    )
    stats = stats.with_columns(
        cost_per_success=pl.when(pl.col("succeeded") > 0).then(pl.col("cost_usd") / pl.col("succeeded")),
        failure_rate=1 - pl.col("succeeded") / pl.col("n"),
        cost_cv=pl.col("std_success_cost") / pl.col("mean_success_cost"),
        visible_per_day=pl.col("visible") / days,
        succeeded_per_day=pl.col("succeeded") / days,
    )
    return stats.join(_quality(quality), on=["provider_id", "effect_type"], how="left").sort(
        "provider_id", "effect_type"
    )


def _provider_stats(costs: pl.DataFrame, days: float) -> pl.DataFrame:
    """Per provider (its fleet): instance type, spot share, p95 wall seconds, instance USD per
    day (compute + startup + idle) and measured utilisation (null without ``idle_cost_usd``)."""
    ok = pl.col("status") == "succeeded"
    compute, idle = _opt(costs, "compute_cost_usd"), _opt(costs, "idle_cost_usd")
    # Utilisation from the cost terms: busy / (busy + idle) = u, by the idle formula's definition.
    util = compute.sum() / (compute + idle).sum() if "idle_cost_usd" in costs.columns else pl.lit(None)
    return (
        costs.group_by("provider_id")
        .agg(
            n=pl.len().cast(pl.Int64),
            failure_rate=1 - ok.mean(),
            instance_type=pl.col("instance_type").drop_nulls().mode().sort().first(),
            spot_share=_opt(costs, "spot", False).cast(pl.Float64).mean(),
            p95_seconds=(_opt(costs, "duration_ms", None).filter(ok) / 1000).quantile(0.95),
            instance_usd_per_day=(compute + _opt(costs, "startup_cost_usd") + idle).sum() / days,
            utilisation=util.cast(pl.Float64),
        )
        .sort("provider_id")
    )


# --- the rules ------------------------------------------------------------------------------------
def _provider_switch(pairs: pl.DataFrame, manifest: dict, policy: Policy) -> list[dict]:
    by_key = {(r["provider_id"], r["effect_type"]): r for r in pairs.iter_rows(named=True)}

    def usable(r: dict | None) -> TypeGuard[dict]:  # enough executions, a quality and a cost to compare
        return (
            r is not None
            and r["n"] >= policy.min_executions
            and r["mean_quality"] is not None
            and r["cost_per_success"] is not None
        )

    out = []
    for effect_type, entries in sorted(manifest.get("effects", {}).items()):
        ranked = sorted(entries, key=lambda e: e["rank"])
        if not ranked or not usable(top := by_key.get((ranked[0]["provider_id"], effect_type))):
            continue
        alts = [a for e in ranked[1:] if usable(a := by_key.get((e["provider_id"], effect_type)))]
        top_cost, top_q = top["cost_per_success"], top["mean_quality"]
        cheaper = [
            a
            for a in alts
            if a["cost_per_success"] <= (1 - policy.min_saving_share) * top_cost
            and a["mean_quality"] >= top_q - policy.quality_tolerance
        ]
        better = [
            a
            for a in alts
            if a["mean_quality"] >= top_q + policy.quality_gain
            and a["cost_per_success"] <= (1 + policy.cost_tolerance_share) * top_cost
        ]
        # Deterministic choice: cheapest (then best, then id) / best (then cheapest, then id).
        if cheaper:
            why = "cheaper"
            alt = min(cheaper, key=lambda a: (a["cost_per_success"], -a["mean_quality"], a["provider_id"]))
        elif better:
            why = "better"
            alt = min(better, key=lambda a: (-a["mean_quality"], a["cost_per_success"], a["provider_id"]))
        else:
            continue
        saving = top_cost - alt["cost_per_success"]
        dq = alt["mean_quality"] - top_q
        n_conf = min(top["n"], alt["n"])
        auto = dq >= 0 and confidence(n_conf) >= policy.auto_min_confidence
        out.append(
            _rec(
                "PROVIDER_SWITCH",
                effect_type,
                alt["provider_id"],
                title=f"Rank {alt['provider_id']} first for {effect_type} ({why} than {top['provider_id']})",
                rationale=f"{alt['provider_id']} costs ${alt['cost_per_success']:.6f} per successful output vs "
                f"${top_cost:.6f} for {top['provider_id']} ({-saving / top_cost:+.0%}), "
                f"quality {alt['mean_quality']:.3f} vs {top_q:.3f} ({dq:+.3f}); "
                f"{top['visible_per_day']:.1f} delivered outputs/day on {top['provider_id']}.",
                action={
                    "effect_type": effect_type,
                    "from_provider": top["provider_id"],
                    "to_provider": alt["provider_id"],
                },
                impact=saving * top["visible_per_day"],
                quality=dq,
                n_conf=n_conf,
                based_on=top["n"] + alt["n"],
                auto=auto,
                approval=not auto,
            )
        )
    return out


def _price_adjustment(
    costs: pl.DataFrame,
    price_tokens: Mapping[str, int],
    token_usd_rate: float,
    days: float,
    policy: Policy,
    market_price_tokens: Mapping[str, int] | None,
) -> list[dict]:
    effects = (
        costs.group_by("effect_type")
        .agg(
            n=pl.len().cast(pl.Int64),
            charged=(pl.col("tokens_charged") > 0).sum().cast(pl.Int64),
            tokens=pl.col("tokens_charged").sum(),
            cost_tokens=pl.col("cost_tokens").sum(),
        )
        .sort("effect_type")
    )
    out = []
    for e in effects.iter_rows(named=True):
        price = price_tokens.get(e["effect_type"])
        if price is None or e["charged"] < policy.min_executions:
            continue
        margin = margin_of(e["tokens"], e["cost_tokens"])
        if margin is None:  # only free executions: no price to revise
            continue
        cost_per_charged = e["cost_tokens"] / e["charged"]  # failures and shadow copies included
        target_price = max(1, math.ceil(price_for_margin(cost_per_charged, policy.target_margin)))
        market = (market_price_tokens or {}).get(e["effect_type"])
        if margin < policy.margin_floor and target_price > price:
            new, why = target_price, f"margin {margin:.1%} is below the {policy.margin_floor:.0%} floor"
        elif market is not None and price > market * (1 + policy.market_premium) and margin > policy.target_margin:
            new = max(target_price, int(market))
            why = f"price {price} tokens is {price / market - 1:+.0%} above the market's {market}"
        else:
            continue
        if new == price:
            continue
        out.append(
            _rec(
                "PRICE_ADJUSTMENT",
                e["effect_type"],
                None,
                title=f"{'Raise' if new > price else 'Lower'} {e['effect_type']} from {price} to {new} tokens",
                rationale=f"{why}: {e['charged']} charged executions, cost {cost_per_charged:.3f} tokens "
                f"per charged execution; {new} tokens gives a margin of {margin_of(new, cost_per_charged):.1%} "
                f"(target {policy.target_margin:.0%}). Impact assumes today's volume (no price elasticity).",
                action={"effect_type": e["effect_type"], "price_tokens": new, "previous_price_tokens": price},
                impact=(new - price) * token_usd_rate * e["charged"] / days,
                quality=0.0,
                n_conf=e["charged"],
                based_on=e["n"],
                auto=False,
                approval=True,  # users pay it: a human decides
            )
        )
    return out


def _fleet(providers: pl.DataFrame, rate_card: RateCard, policy: Policy) -> list[dict]:
    out = []
    for p in providers.iter_rows(named=True):
        itype, n = p["instance_type"], p["n"]
        if n < policy.min_executions or itype not in rate_card.usd_per_second:
            continue
        pid, spend = p["provider_id"], p["instance_usd_per_day"]
        short = p["p95_seconds"] is not None and p["p95_seconds"] <= policy.spot_safe_seconds
        if (
            p["spot_share"] < 0.5
            and rate_card.spot_multiplier < 1
            and short
            and p["failure_rate"] <= policy.max_spot_failure_rate
        ):
            # Short, reliable tasks survive an interruption by finishing or re-running cheaply,
            # and the change is reversible: auto-applicable once the sample is large enough.
            auto = confidence(n) >= policy.auto_min_confidence
            out.append(
                _rec(
                    "FLEET_OPTIMIZATION",
                    None,
                    pid,
                    title=f"Run {pid} on spot {itype}",
                    rationale=f"p95 task time {p['p95_seconds']:.1f} s fits the "
                    f"{policy.spot_safe_seconds:.0f} s spot interruption notice and "
                    f"{p['failure_rate']:.1%} of tasks fail; spot costs ×{rate_card.spot_multiplier} "
                    f"of ${spend:.6f}/day instance spend.",
                    action={"provider_id": pid, "instance_type": itype, "spot": True},
                    impact=spend * (1 - rate_card.spot_multiplier),
                    quality=0.0,
                    n_conf=n,
                    based_on=n,
                    auto=auto,
                    approval=not auto,
                )
            )
        u = p["utilisation"]
        if u is None or u >= policy.max_target_utilisation:
            continue
        rate = rate_card.usd_per_second[itype]
        family = itype.split("-")[0]
        # Assumption: throughput scales with price within a family (cpu-8c = 4 × cpu-2c in vCPUs
        # and price), so the same work keeps a node u × rate / rate' busy on the smaller one.
        fits = [
            (r, t)
            for t, r in rate_card.usd_per_second.items()
            if t.split("-")[0] == family and r < rate and u * rate / r <= policy.max_target_utilisation
        ]
        if not fits:
            continue
        new_rate, new_type = min(fits)
        out.append(
            _rec(
                "FLEET_OPTIMIZATION",
                None,
                pid,
                title=f"Move {pid} from {itype} to {new_type}",
                rationale=f"{itype} is {u:.0%} utilised; {new_type} at {new_rate / rate:.0%} of the price "
                f"would run at ~{u * rate / new_rate:.0%} (limit {policy.max_target_utilisation:.0%}), "
                "with longer tasks.",
                action={"provider_id": pid, "instance_type": new_type, "from_instance_type": itype},
                impact=spend * (1 - new_rate / rate),
                quality=0.0,
                n_conf=n,
                based_on=n,
                auto=False,
                approval=True,  # slower tasks: a capacity decision
            )
        )
    return out


def _tuning(
    pid: str,
    effect: str,
    n: int,
    issue: str,
    *,
    title: str,
    why: str,
    impact: float,
    quality: float | None,
    n_conf: int,
) -> dict:
    """One WORKFLOW_TUNING row for ``pid`` × ``effect`` (``n`` executions) about ``issue``."""
    # Advisory: an engineer changes the workflow; nothing to approve or apply until then.
    return _rec(
        "WORKFLOW_TUNING",
        effect,
        pid,
        title=title,
        rationale=why,
        action={"provider_id": pid, "effect_type": effect, "issue": issue},
        impact=impact,
        quality=quality,
        n_conf=n_conf,
        based_on=n,
        auto=False,
        approval=False,
    )


def _workflow_tuning(pairs: pl.DataFrame, days: float, policy: Policy) -> list[dict]:
    out = []
    for r in pairs.iter_rows(named=True):
        if r["n"] < policy.min_executions:
            continue
        pid, effect, n = r["provider_id"], r["effect_type"], r["n"]
        if r["failure_rate"] > policy.max_failure_rate:
            out.append(
                _tuning(
                    pid,
                    effect,
                    n,
                    "failure_rate",
                    title=f"{pid} fails {r['failure_rate']:.0%} of {effect} tasks",
                    why=(
                        f"{n - r['succeeded']} of {n} executions failed (limit {policy.max_failure_rate:.0%}); "
                        f"failures cost ${r['failed_cost_usd']:.6f} with nothing to charge."
                    ),
                    impact=r["failed_cost_usd"] / days,
                    quality=0.0,
                    n_conf=n,
                )
            )
        if r["succeeded"] >= policy.min_executions and (r["cost_cv"] or 0) > policy.max_cost_cv:
            out.append(
                _tuning(
                    pid,
                    effect,
                    n,
                    "cost_variance",
                    title=f"{pid} {effect} cost varies ×{r['cost_cv']:.1f} of its mean",
                    why=(
                        f"cost per success: mean ${r['mean_success_cost']:.6f}, median "
                        f"${r['median_success_cost']:.6f}, CV {r['cost_cv']:.2f} (limit {policy.max_cost_cv}); "
                        "cutting the tail to the median saves the difference (part may be input-size mix)."
                    ),
                    impact=(r["mean_success_cost"] - r["median_success_cost"]) * r["succeeded_per_day"],
                    quality=0.0,
                    n_conf=r["succeeded"],
                )
            )
        if (r["scored"] or 0) >= policy.min_executions and (r["mean_artifacts"] or 0) > policy.max_artifacts:
            out.append(
                _tuning(
                    pid,
                    effect,
                    n,
                    "artifacts",
                    title=f"{pid} {effect} outputs are artifact-heavy",
                    why=(
                        f"mean artifact score {r['mean_artifacts']:.2f} over {r['scored']} scored outputs "
                        f"(limit {policy.max_artifacts}); quality gain depends on the fix, not projected."
                    ),
                    impact=0.0,
                    quality=None,
                    n_conf=r["scored"],
                )
            )
    return out


def recommend(
    costs: pl.DataFrame,
    quality: pl.DataFrame,
    manifest: dict,
    price_tokens: Mapping[str, int],
    token_usd_rate: float,
    *,
    now: datetime,
    rate_card: RateCard | None = None,
    market_price_tokens: Mapping[str, int] | None = None,
    policy: Policy = Policy(),
) -> pl.DataFrame:
    """All recommendations for the current data.

    Args:
        costs: ``execution_costs`` rows: ``provider_id, effect_type, instance_type, status,
            cost_usd, cost_tokens, tokens_charged``; optional ``selection, source,
            finished_at, duration_ms, spot`` and the ``cost_breakdown`` columns
            (``compute_cost_usd, startup_cost_usd, idle_cost_usd``).
        quality: ``quality_scores`` rows or per-pair aggregates (see ``_quality``).
        manifest: the current routing manifest (``economics.routing.build_manifest``).
        price_tokens: effect type → tokens per successful execution.
        token_usd_rate: USD per token.
        now: ``created_at`` of every row (UTC; passed in so the function stays pure).
        rate_card: needed for FLEET_OPTIMIZATION (skipped without it).
        market_price_tokens: competitors' price per effect type, for "far above market".
        policy: thresholds.

    Returns:
        RECOMMENDATION_SCHEMA rows, largest projected margin impact first (ties by id).
    """
    real = _real(costs)
    days = _window_days(real, policy)
    recs: list[dict] = []
    if real.height:
        pairs = _pair_stats(real, quality, days)
        recs += _provider_switch(pairs, manifest, policy)
        recs += _price_adjustment(real, price_tokens, token_usd_rate, days, policy, market_price_tokens)
        if rate_card is not None:
            recs += _fleet(_provider_stats(real, days), rate_card, policy)
        recs += _workflow_tuning(pairs, days, policy)
    return pl.DataFrame([{**r, "created_at": now} for r in recs], schema=RECOMMENDATION_SCHEMA).sort(
        ["projected_margin_impact_usd", "recommendation_id"], descending=[True, False]
    )
