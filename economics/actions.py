"""What to do about bottleneck classifications (docs/signals.md, "Actions"): the pure planner
of the automatic actions. ``plan`` turns the classifications, what was already done about them
and the platform's state into ``Step`` s; ``assets/gold/remediation.py`` carries them out and
records each in ``bronze/bottleneck_actions``.

One action per category (``economics.bottlenecks.AUTOMATIC_ACTIONS``), taken once per
classification (an episode: a classification keeps its id while its condition lasts), within
these guardrails:

* ``reduce_concurrency`` (PROVIDER_API_THROTTLING) — the provider's dispatch concurrency is
  multiplied by ``decrease_factor`` (½, rounded down, at least ``min_concurrency``): the
  multiplicative decrease of AIMD congestion control (RFC 5681 §3.1 halves the window on loss;
  a 429 is the provider saying the same). One reduction per provider at a time: a second
  throttled effect type of the same provider finds it already reduced. Restored — the change
  rolled back, the value before exactly — once the classification is resolved and no other
  throttling classification of the provider is open.
* ``routing_demote`` (PROVIDER_LATENCY_DEGRADATION, critical only: it takes all of an effect
  type's traffic off a provider) — a ``routing.<effect>.demote.<provider>`` parameter, applied
  to every manifest published until it is restored when the classification resolves. Skipped
  when the provider is the effect type's only one.
* ``notify_user`` (TOKEN_DEPLETION_RISK) — the user is told "at the current rate your balance
  runs out in 4.2 h" (the projected hours of the classification's evidence); once per episode.
* ``scale_up`` (GPU_SATURATION) — ``ceil(scale_step_share × slots)`` more slots (at least 1)
  at the instance type's hourly rate each. Applied automatically only when the extra capacity
  already in force (slots above the registry's, priced at their rate) plus this step stays
  within ``autoscale_budget_usd_per_hour``; otherwise a recommendation an admin approves. Not
  undone when the saturation clears — the added capacity is why it cleared; an admin rolls it
  back. Skipped while the provider's concurrency is reduced for throttling (more slots would be
  refused).
* ``warm_pool`` (COLD_START_PENALTY) — a recommendation of a minimum-capacity schedule: the
  UTC hours whose volume reaches ``warm_peak_share`` of the peak hour, each with
  ``ceil(λ·W)`` warm instances (Little's law, L = λW: arrivals per second × seconds per run
  = instances busy on average), at least 1; its cost per day and the start-up cost it avoids.
* ``review_workflow`` (WORKFLOW_INEFFICIENCY) — flagged for an admin with the parameter change
  the evidence suggests: errors other than timeouts → no retries (``retry.attempts`` 1: the
  same error repeats at full cost); a cost-per-run rise or a margin fall → the effect's price
  that restores ``target_margin`` at today's cost per run (applicable when approved).

Classifications of simulated streams are planned as ``simulated`` (what would be done, not
done) unless ``act_on_simulated``: simulated history never changes the real platform.

Pure: Polars and the standard library; times are passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from economics.bottlenecks import (
    PROVIDER_API_THROTTLING,
)
from economics.margin import price_for_margin

REDUCE, DEMOTE, NOTIFY, SCALE_UP, WARM_POOL, REVIEW = (
    "reduce_concurrency",
    "routing_demote",
    "notify_user",
    "scale_up",
    "warm_pool",
    "review_workflow",
)
APPLY, RESTORE = "apply", "restore"
# Actions undone when their classification resolves.
RESTORED_ON_CLEAR = frozenset({REDUCE, DEMOTE})
# What a step asks the executor to do.
CHANGE, ROLLBACK, NOTIFY_KIND, RECOMMEND, FLAG, NOTHING = "change", "rollback", "notify", "recommend", "flag", "nothing"
# The outcomes recorded in bronze/bottleneck_actions.
DONE, RECOMMENDED, FLAGGED, SKIPPED, FAILED, SIMULATED = (
    "done",
    "recommended",
    "flagged",
    "skipped",
    "failed",
    "simulated",
)


@dataclass(frozen=True)
class ActionPolicy:
    """The guardrails (module docstring).

    Attributes:
        decrease_factor: concurrency multiplier on throttling (AIMD's ½).
        min_concurrency: never fewer dispatch slots than this.
        scale_step_share: a scale-up adds this share of the slots (at least one).
        autoscale_budget_usd_per_hour: extra capacity automation may keep in force, USD/h
            (``Settings.autoscale_budget_usd_per_hour``).
        act_on_simulated: act on classifications of simulated streams
            (``Settings.act_on_simulated``).
        warm_peak_share: an hour is in the warm-pool schedule when its volume is at least
            this share of the peak hour's.
        target_margin: the margin a suggested price restores (the recommendations' 70 %).
    """

    decrease_factor: float = 0.5
    min_concurrency: int = 1
    scale_step_share: float = 0.25
    autoscale_budget_usd_per_hour: float = 1.0
    act_on_simulated: bool = False
    warm_peak_share: float = 0.5
    target_margin: float = 0.70


@dataclass(frozen=True)
class State:
    """The platform as the planner sees it.

    Attributes:
        registry_concurrency: provider → ``concurrency`` in ``providers.yaml``.
        concurrency_overrides: provider → the ``provider.<id>.concurrency`` parameter in force.
        usd_per_instance_hour: provider → its instance type's rate card price, USD/h.
        retry_attempts: provider → ``retry.attempts`` in the registry.
        routing: effect type → providers of the published manifest, rank order.
        prices: effect type → list price in force, tokens.
        token_usd_rate: USD per token.
        hourly: (provider, source) → rows ``{hour (UTC 0–23), runs_per_hour,
            seconds_per_run}`` (``hourly_profile``).
    """

    registry_concurrency: Mapping[str, int] = field(default_factory=dict)
    concurrency_overrides: Mapping[str, int] = field(default_factory=dict)
    usd_per_instance_hour: Mapping[str, float] = field(default_factory=dict)
    retry_attempts: Mapping[str, int] = field(default_factory=dict)
    routing: Mapping[str, list[str]] = field(default_factory=dict)
    prices: Mapping[str, int] = field(default_factory=dict)
    token_usd_rate: float = 0.01
    hourly: Mapping[tuple[str, str], list[dict]] = field(default_factory=dict)

    def concurrency(self, provider_id: str) -> int | None:
        """The dispatch slots in force (override, else registry), None for an unknown provider."""
        if provider_id in self.concurrency_overrides:
            return int(self.concurrency_overrides[provider_id])
        c = self.registry_concurrency.get(provider_id)
        return None if c is None else int(c)

    def extra_capacity_usd_per_hour(self) -> float:
        """What the slots above the registry's cost now: Σ (slots − registry)⁺ × rate."""
        return sum(
            max(0, int(v) - int(self.registry_concurrency.get(p, v))) * self.usd_per_instance_hour.get(p, 0.0)
            for p, v in self.concurrency_overrides.items()
        )


@dataclass(frozen=True)
class Change:
    """A planned change of one runtime parameter (``resources.store.parameters``): ``before``
    is the parameter's value now (None: not set), the compare-and-set expectation."""

    scope: str
    subject: str
    name: str
    before: Any
    after: Any
    cost_usd_per_hour: float | None = None

    def as_dict(self) -> dict:
        """JSON-able form (recorded with the action)."""
        return {
            "scope": self.scope,
            "subject": self.subject,
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "cost_usd_per_hour": self.cost_usd_per_hour,
        }


@dataclass(frozen=True)
class Step:
    """One thing to do for one classification.

    Attributes:
        kind: ``change`` (apply ``change`` now), ``rollback`` (undo ``restores``), ``notify``
            (tell ``user_id``: ``title``/``body``), ``recommend`` (an admin decides on
            ``proposal``), ``flag`` (an admin reviews ``proposal``), ``nothing`` (recorded as
            ``outcome``: skipped or simulated).
        detail: what is done, in words (recorded).
        proposal: JSON-able: the change proposed and its numbers (recommend / flag).
        guard_budget: a change that must fit ``autoscale_budget_usd_per_hour`` when applied
            (re-checked in the store's transaction).
        impact_usd_per_hour: the classification's cost impact (what failing to act costs).
    """

    classification_id: str
    category: str
    action: str
    phase: str
    kind: str
    detail: str
    change: Change | None = None
    restores: str | None = None
    user_id: str | None = None
    title: str | None = None
    body: str | None = None
    proposal: dict | None = None
    outcome: str | None = None
    guard_budget: bool = False
    impact_usd_per_hour: float = 0.0


def _evidence(row: Mapping) -> dict:
    return json.loads(row.get("evidence") or "{}")


def _numbers(row: Mapping) -> dict:
    return _evidence(row).get("numbers", {})


def hours_text(hours: float) -> str:
    """``4.2 h`` (one decimal; minutes under an hour: ``45 min``)."""
    return f"{hours:.1f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"


def _recorded(recorded: pl.DataFrame) -> dict[tuple[str, str, str], dict]:
    """(classification, action, phase) → its latest recorded row (a row without a phase is
    an apply: the table had no phase column before restores existed)."""
    out: dict[tuple[str, str, str], dict] = {}
    if recorded.is_empty():
        return out
    for r in recorded.sort("taken_at").iter_rows(named=True):
        out[(r["classification_id"], r["action"], r.get("phase") or APPLY)] = r
    return out


def plan(
    classifications: pl.DataFrame,
    recorded: pl.DataFrame,
    state: State,
    policy: ActionPolicy | None = None,
) -> list[Step]:
    """The steps due now (module docstring).

    Args:
        classifications: ``bottleneck_classifications`` rows: the open ones and the resolved
            ones whose actions may need restoring.
        recorded: ``bottleneck_actions`` rows (what was done before).
        state: the platform now.

    Returns:
        Apply steps for open classifications whose action is not recorded yet (oldest first),
        then restore steps for resolved ones whose change is in the record and not undone.
    """
    policy = policy or ActionPolicy()
    done = _recorded(recorded)
    rows = list(classifications.sort("first_seen_at", "classification_id").iter_rows(named=True))
    open_rows = [r for r in rows if r["status"] == "open"]
    # Providers whose concurrency a throttling classification reduced and has not restored.
    reduced = {
        r["provider_id"]
        for r in rows
        if (x := done.get((r["classification_id"], REDUCE, APPLY)))
        and x["outcome"] == DONE
        and (r["classification_id"], REDUCE, RESTORE) not in done
    }
    steps: list[Step] = []
    planned_providers: set[tuple[str, str]] = set()  # (action, provider) planned in this call
    for r in open_rows:
        action = r.get("automatic_action")
        if not action or (r["classification_id"], action, APPLY) in done:
            continue
        step = _apply(r, action, state, policy, reduced, planned_providers)
        if (
            r.get("source") == "simulated"
            and not policy.act_on_simulated
            and step.kind in (CHANGE, NOTIFY_KIND, RECOMMEND, FLAG)
        ):
            step = Step(
                r["classification_id"],
                r["category"],
                action,
                APPLY,
                NOTHING,
                f"simulated stream, not acted on (EFFECTLAKE_ACT_ON_SIMULATED=0); would have: {step.detail}",
                proposal=step.change.as_dict() if step.change else step.proposal,
                outcome=SIMULATED,
            )
        steps.append(replace(step, impact_usd_per_hour=float(r.get("cost_impact_usd_per_hour") or 0.0)))
    still_throttled = {r["provider_id"] for r in open_rows if r["category"] == PROVIDER_API_THROTTLING}
    for r in rows:
        if r["status"] != "resolved":
            continue
        for action in sorted(RESTORED_ON_CLEAR):
            applied = done.get((r["classification_id"], action, APPLY))
            if applied is None or applied["outcome"] != DONE or not applied.get("change_id"):
                continue
            if (r["classification_id"], action, RESTORE) in done:
                continue
            if action == REDUCE and r["provider_id"] in still_throttled:
                continue  # another effect type of the provider is still throttled: keep it reduced
            steps.append(
                Step(
                    r["classification_id"],
                    r["category"],
                    action,
                    RESTORE,
                    ROLLBACK,
                    f"{r['category']} cleared: change {applied['change_id']} rolled back",
                    restores=applied["change_id"],
                )
            )
    return steps


def _apply(
    r: Mapping,
    action: str,
    state: State,
    policy: ActionPolicy,
    reduced: set[str],
    planned: set[tuple[str, str]],
) -> Step:
    cid, category = r["classification_id"], r["category"]
    pid: str = r.get("provider_id") or ""

    def step(kind: str, detail: str, **kw: Any) -> Step:
        return Step(cid, category, action, APPLY, kind, detail, **kw)

    def skip(detail: str) -> Step:
        return step(NOTHING, detail, outcome=SKIPPED)

    if action == NOTIFY:
        hours = _numbers(r).get("hours_to_exhaustion")
        burn = _numbers(r).get("token_burn_per_hour")
        if hours is None or not r.get("user_id"):
            return skip("no projected exhaustion in the evidence")
        pace = f" ({burn:,.0f} tokens/h)" if burn else ""
        body = (
            f"At the current rate{pace} your balance runs out in {hours_text(hours)}. "
            "Top up to keep your effects running."
        )
        return step(
            NOTIFY_KIND,
            f"user {r['user_id']} told: balance runs out in {hours_text(hours)}",
            user_id=r["user_id"],
            title="Your tokens are running out",
            body=body,
        )
    if action == REDUCE:
        now = state.concurrency(pid) if pid else None
        if now is None:
            return skip(f"{pid} is not in the registry")
        if pid in reduced or (REDUCE, pid) in planned:
            return skip(f"{pid}'s concurrency is already reduced for throttling")
        new = max(policy.min_concurrency, math.floor(now * policy.decrease_factor))
        if new >= now:
            return skip(f"{pid} already runs at the minimum of {now} slot(s)")
        planned.add((REDUCE, pid))
        before = state.concurrency_overrides.get(pid)
        return step(
            CHANGE,
            f"{pid}: concurrency {now} → {new} (throttle rate {_numbers(r).get('throttle_rate', 0):.1%})",
            change=Change("provider", pid, "concurrency", before, new),
        )
    if action == DEMOTE:
        effect: str = r.get("effect_type") or ""
        ranked = list(state.routing.get(effect, []))
        if not ranked:
            return skip(f"no routing manifest lists {effect}")
        if pid not in ranked:
            return skip(f"{pid} is not in {effect}'s routing")
        if len(ranked) < 2:
            return skip(f"{pid} has no alternative for {effect}")
        reason = f"{category} (classification {cid})"
        return step(
            CHANGE,
            f"{effect}: {pid} demoted out of the ranking ({', '.join(p for p in ranked if p != pid)} take its traffic)",
            change=Change("routing", effect, f"demote.{pid}", None, reason),
        )
    if action == SCALE_UP:
        now = state.concurrency(pid) if pid else None
        rate = state.usd_per_instance_hour.get(pid)
        if now is None or rate is None:
            return skip(f"{pid} is not in the registry or its instance type has no rate")
        if pid in reduced:
            return skip(f"{pid} is throttled (concurrency reduced): more slots would be refused")
        if (SCALE_UP, pid) in planned:
            return skip(f"{pid} is already scaled up in this cycle")
        planned.add((SCALE_UP, pid))
        add = max(1, math.ceil(now * policy.scale_step_share))
        cost = round(add * rate, 6)
        change = Change("provider", pid, "concurrency", state.concurrency_overrides.get(pid), now + add, cost)
        spent = state.extra_capacity_usd_per_hour()
        impact = float(r.get("cost_impact_usd_per_hour") or 0.0)
        words = (
            f"{pid}: {now} → {now + add} slots, +${cost:.2f}/h (queueing costs ${impact:.2f}/h; "
            f"extra capacity in force ${spent:.2f}/h of a ${policy.autoscale_budget_usd_per_hour:.2f}/h budget)"
        )
        proposal = {
            **change.as_dict(),
            "title": f"Scale {pid} up to {now + add} slots",
            "queueing_cost_usd_per_hour": impact,
            "budget_usd_per_hour": policy.autoscale_budget_usd_per_hour,
            "extra_capacity_usd_per_hour": spent,
        }
        if spent + cost <= policy.autoscale_budget_usd_per_hour + 1e-9:
            return step(
                CHANGE, words + ": applied within the budget", change=change, proposal=proposal, guard_budget=True
            )
        return step(RECOMMEND, words + ": over the budget, an admin decides", change=change, proposal=proposal)
    if action == WARM_POOL:
        return _warm_pool(r, state, policy, step, skip)
    if action == REVIEW:
        return _review(r, state, policy, step)
    return skip(f"no action {action!r} is known")


def _warm_pool(r: Mapping, state: State, policy: ActionPolicy, step, skip) -> Step:
    pid = r.get("provider_id")
    profile = [h for h in state.hourly.get((pid or "", r.get("source") or "real"), []) if h["runs_per_hour"] > 0]
    rate = state.usd_per_instance_hour.get(pid or "")
    if not profile or rate is None:
        return skip(f"no hourly volume of {pid} to schedule a warm pool from")
    peak = max(h["runs_per_hour"] for h in profile)
    busy = sorted((h for h in profile if h["runs_per_hour"] >= policy.warm_peak_share * peak), key=lambda h: h["hour"])
    schedule = [
        {
            "hour_utc": int(h["hour"]),
            "min_instances": max(1, math.ceil(h["runs_per_hour"] / 3600 * float(h["seconds_per_run"] or 0))),
        }
        for h in busy
    ]
    cost_per_day = round(sum(s["min_instances"] for s in schedule) * rate, 4)
    avoided = round(float(r.get("cost_impact_usd_per_hour") or 0.0) * len(schedule), 4)
    hours = ", ".join(f"{s['hour_utc']:02d}h×{s['min_instances']}" for s in schedule)
    proposal = {
        "title": f"Keep {pid} warm at its busy hours",
        "provider_id": pid,
        "schedule": schedule,
        "cost_usd_per_day": cost_per_day,
        "avoided_startup_usd_per_day": avoided,
        "usd_per_instance_hour": rate,
    }
    return step(
        RECOMMEND,
        f"{pid}: keep warm instances at {hours} UTC — ${cost_per_day:.2f}/day of instances "
        f"against ≈${avoided:.2f}/day of cold starts at today's rate",
        proposal=proposal,
    )


def _review(r: Mapping, state: State, policy: ActionPolicy, step) -> Step:
    pid: str = r.get("provider_id") or ""
    effect: str = r.get("effect_type") or ""
    ev = _evidence(r)
    signals, numbers = ev.get("signals", {}), ev.get("numbers", {})
    suggestions: list[dict] = []
    other = float(numbers.get("error_rate") or 0) - float(numbers.get("throttle_rate") or 0)
    other -= float(numbers.get("timeout_rate") or 0)
    attempts = state.retry_attempts.get(pid or "")
    if "error_rate" in signals and other > 0 and attempts and attempts > 1:
        suggestions.append(
            {
                "parameter": f"providers.yaml {pid} retry.attempts",
                "from": attempts,
                "to": 1,
                "why": f"{other:.1%} of runs fail with errors that are not timeouts nor throttling; "
                "retrying them repeats the same error at full cost",
            }
        )
    per_run = numbers.get("cost_per_run_usd")
    price = state.prices.get(effect or "")
    change = None
    if ("cost_per_run_usd" in signals or "margin" in signals) and per_run and price and state.token_usd_rate > 0:
        target = max(1, math.ceil(price_for_margin(per_run / state.token_usd_rate, policy.target_margin)))
        if target > price:
            change = Change("effect", effect, "price_tokens", price, target)
            suggestions.append(
                {
                    "parameter": f"effect.{effect}.price_tokens",
                    "from": price,
                    "to": target,
                    "why": f"cost per run ${per_run:.4f} leaves {effect} below the "
                    f"{policy.target_margin:.0%} target margin at {price} tokens",
                }
            )
    if not suggestions:
        suggestions.append(
            {
                "parameter": f"providers.yaml {pid} workflow",
                "why": "the evidence names no single parameter: compare the workflow's recent changes "
                "(parameters, resolution, steps) with its baseline",
            }
        )
    words = "; ".join(f"{s['parameter']} {s.get('from', '')}→{s.get('to', '?')}" for s in suggestions)
    proposal = {"title": f"Review {pid}'s {effect} workflow", "suggestions": suggestions}
    if change is not None:
        proposal.update(change.as_dict())
    return step(FLAG, f"{pid} × {effect} flagged for review: {words}", change=change, proposal=proposal)


def hourly_profile(streams: pl.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """(provider, source) → its mean volume per UTC hour of day, from ``metric_streams``
    provider rows (``bucket_start``, ``provider_id``, ``source``, ``runs``, ``p50_latency_ms``)
    over whole days:
    ``{hour, runs_per_hour, seconds_per_run}`` (runs averaged over the days seen;
    ``seconds_per_run``: the runs-weighted p50 latency)."""
    rows = streams.filter((pl.col("scope") == "provider_effect") & (pl.col("runs") > 0))
    if rows.is_empty():
        return {}
    days = rows.group_by("provider_id", "source").agg(
        days=((pl.col("bucket_start").max() - pl.col("bucket_start").min()).dt.total_seconds() / 86_400)
        .ceil()
        .clip(lower_bound=1)
    )
    hourly = (
        rows.with_columns(hour=pl.col("bucket_start").dt.hour())
        .group_by("provider_id", "source", "hour")
        .agg(
            runs=pl.col("runs").sum(),
            weighted=(pl.col("p50_latency_ms").fill_null(0) * pl.col("runs")).sum(),
        )
        .join(days, on=["provider_id", "source"])
        .with_columns(
            runs_per_hour=pl.col("runs") / pl.col("days"),
            seconds_per_run=pl.col("weighted") / pl.col("runs") / 1000,
        )
        .sort("provider_id", "source", "hour")
    )
    out: dict[tuple[str, str], list[dict]] = {}
    for h in hourly.iter_rows(named=True):
        out.setdefault((h["provider_id"], h["source"]), []).append(
            {
                "hour": h["hour"],
                "runs_per_hour": float(h["runs_per_hour"]),
                "seconds_per_run": float(h["seconds_per_run"]),
            }
        )
    return out
