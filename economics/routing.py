"""Routing manifest: ranked providers per effect type, routing weights, and task selection.

Score of a provider for an effect type (docs/architecture.md, "Economics", multi-objective):

    score = success_rate × (w_q·quality + w_c·cost_score + w_s·speed_score)
    cost_score  = cheapest expected cost / this provider's expected cost    (1 = cheapest)
    speed_score = fastest expected duration / this provider's duration      (1 = fastest)

Ratios to the best peer keep the three terms on one 0..1 scale without hand-set units.
Providers without executions get neutral priors (0.5) and confidence 0, so they rank below
proven good ones and are reached through exploration. Confidence = n / (n + 10): a
pseudo-count of 10 executions before the estimate is trusted half.

Routing weight of an entry = probability that one user job of the effect type goes to it
under epsilon-greedy with ε = ``exploration_rate`` (docs/architecture.md, "Economics", default 5%):

    rank 1:          1 − ε          (the whole 1 when it is the only entry: nobody to explore)
    every other one: ε / (n − 1)    (exploration is uniform among the non-best n − 1)

so the weights of an effect type sum to 1, and the share of jobs that explore is exactly ε.
``route`` / ``route_many`` draw from these weights; a forced entry (emergency override) takes
weight 1 and every other entry 0.

The economics job publishes adaptive manifests instead (``economics.bandit.adaptive_manifest``,
docs/routing.md): the same scores on discounted estimates, each entry's ``weight`` the
Thompson probability that it is the best, ranks by weight. ``manifest_weights`` reads those
weights; M5's test batch (``select_providers``) takes the top ranks plus ε exploration and logs
each task's inclusion probability (``inclusion_probabilities``).
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import itertools
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from economics.ids import stable_id

PRIORITY_WEIGHTS: dict[str, dict[str, float]] = {
    "balanced": {"quality": 0.5, "cost": 0.3, "speed": 0.2},
    "quality": {"quality": 0.7, "cost": 0.15, "speed": 0.15},
    "cost": {"quality": 0.3, "cost": 0.6, "speed": 0.1},
    "speed": {"quality": 0.3, "cost": 0.1, "speed": 0.6},
}
PRIOR = 0.5
CONFIDENCE_PSEUDO_COUNT = 10
# Epsilon-greedy exploration defaults to 5% of jobs (docs/architecture.md, "Economics"). This is
# the one place the default is written: Settings.exploration_rate takes it from here.
EXPLORATION_RATE = 0.05
AB_SELECTION = "ab"
# A provider whose circuit breaker is in this state takes no traffic (resources/providers/resilience.py).
BREAKER_OPEN = "open"


def _version(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def _check_epsilon(epsilon: float) -> float:
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"exploration rate must be within [0, 1], got {epsilon}")
    return float(epsilon)


def _ordered(entries: Iterable[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: e["rank"])


def routing_weights(entries: Sequence[dict], epsilon: float = EXPLORATION_RATE) -> dict[str, float]:
    """Probability that one user job goes to each entry (module docstring formula).

    Args:
        entries: manifest entries of one effect type (``provider_id``, ``rank``; optional
            ``forced``), any order.
        epsilon: exploration rate in [0, 1].

    Returns:
        provider_id → probability, in rank order, summing to 1 (empty for no entries).

    Raises:
        ValueError: epsilon outside [0, 1].
    """
    epsilon = _check_epsilon(epsilon)
    ordered = _ordered(entries)
    forced = [e for e in ordered if e.get("forced")]
    if forced:
        return {e["provider_id"]: float(e is forced[0]) for e in ordered}
    n = len(ordered)
    if n <= 1:
        return {e["provider_id"]: 1.0 for e in ordered}
    return {e["provider_id"]: (1.0 - epsilon if i == 0 else epsilon / (n - 1)) for i, e in enumerate(ordered)}


def build_manifest(
    stats: pl.DataFrame,
    providers_by_effect: dict[str, list[str]],
    published_at: datetime,
    priority: str = "balanced",
    exploration_rate: float = EXPLORATION_RATE,
    exclude: Iterable[str] = frozenset(),
    breakers: Mapping[str, str] | None = None,
) -> dict:
    """Rank every routable provider per effect type and give each its routing weight.

    Args:
        stats: per (provider_id, effect_type): ``executions``, ``success_rate`` (0..1),
            ``mean_cost_usd``, ``mean_quality`` (0..1, null if never scored),
            ``mean_duration_ms`` (``economics.stats.provider_stats``). May be empty
            (bootstrap: every provider on priors).
        providers_by_effect: effect type → active provider ids, in registry order (the
            tie-breaker).
        published_at: UTC publication time.
        priority: key of PRIORITY_WEIGHTS.
        exploration_rate: ε of the routing weights, in [0, 1].
        exclude: provider ids left out of routing (unhealthy, disabled by an admin…). They
            get no entry and do not set the cheapest/fastest bar of the ratio scores, since
            no job can go to them.
        breakers: provider id → its circuit breaker's state (``closed``, ``open``,
            ``half_open``; absent = closed). A provider whose breaker is open is demoted: it
            keeps its entry (``available`` False) but ranks after every available one and
            gets routing weight 0, so a job reaches it only as a last fallback, which M6
            refuses while the breaker stays open; half-open ones stay available (their probes
            decide).

    Returns:
        ``{"version", "published_at" (ISO), "priority", "exploration_rate", "excluded"
        (sorted ids that were listed but left out), "effects": {effect_type: [entry…]}}``
        with entries ``provider_id, rank (1 = best), weight, forced (False), score,
        expected_cost_usd, expected_quality, expected_duration_ms, expected_success_rate,
        confidence, executions, reason, breaker, available`` (the expectations null without
        executions).
        JSON-serialisable.

    Raises:
        KeyError: unknown priority. ValueError: exploration_rate outside [0, 1].
    """
    w = PRIORITY_WEIGHTS[priority]
    exploration_rate = _check_epsilon(exploration_rate)
    exclude = set(exclude)
    breakers = breakers or {}
    by_key = {(r["provider_id"], r["effect_type"]): r for r in stats.iter_rows(named=True)}
    effects: dict[str, list[dict]] = {}
    excluded: set[str] = set()
    for effect_type, listed in sorted(providers_by_effect.items()):
        provider_ids = [p for p in listed if p not in exclude]
        excluded.update(p for p in listed if p in exclude)
        rows = [by_key.get((p, effect_type)) for p in provider_ids]
        costs = [r["mean_cost_usd"] for r in rows if r and r["mean_cost_usd"]]
        durations = [r["mean_duration_ms"] for r in rows if r and r["mean_duration_ms"]]
        entries: list[dict[str, Any]] = []
        for order, (pid, r) in enumerate(zip(provider_ids, rows, strict=True)):
            # Effective executions: a count, or a float for discounted stats (economics.bandit).
            n = float(r["executions"]) if r else 0.0
            if r is None or n <= 0:
                quality, cost_s, speed_s, success = PRIOR, PRIOR, PRIOR, 1.0
                reason = "no executions yet: neutral priors"
            else:
                quality = r["mean_quality"] if r["mean_quality"] is not None else PRIOR
                cost_s = min(costs) / r["mean_cost_usd"] if r["mean_cost_usd"] else 1.0
                speed_s = min(durations) / r["mean_duration_ms"] if r["mean_duration_ms"] else 1.0
                success = float(r["success_rate"])
                reason = (
                    f"{n:.0f} executions: success {success:.0%}, quality {quality:.2f}, "
                    f"cost ×{1 / cost_s:.2f} of cheapest, time ×{1 / speed_s:.2f} of fastest"
                )
            score = success * (w["quality"] * quality + w["cost"] * cost_s + w["speed"] * speed_s)
            breaker = breakers.get(pid, "closed")
            if breaker == BREAKER_OPEN:
                reason += "; circuit breaker open: ranked last, no traffic until it closes"
            entries.append(
                {
                    "provider_id": pid,
                    "score": round(score, 6),
                    "expected_cost_usd": r["mean_cost_usd"] if r and n else None,
                    "expected_quality": r["mean_quality"] if r and n else None,
                    "expected_duration_ms": r["mean_duration_ms"] if r and n else None,
                    "expected_success_rate": success if n else None,
                    "confidence": round(n / (n + CONFIDENCE_PSEUDO_COUNT), 4),
                    "executions": int(n) if n.is_integer() else round(n, 2),
                    "reason": reason,
                    "forced": False,
                    "breaker": breaker,
                    "available": breaker != BREAKER_OPEN,
                    "_order": order,
                }
            )
        entries.sort(key=lambda e: (not e["available"], -e["score"], e["_order"]))
        for rank, e in enumerate(entries, start=1):
            e.pop("_order")
            e["rank"] = rank
        weights = routing_weights([e for e in entries if e["available"]], exploration_rate)
        for e in entries:
            e["weight"] = weights.get(e["provider_id"], 0.0)
        effects[effect_type] = entries
    return {
        "version": _version(effects),
        "published_at": published_at.isoformat(),
        "priority": priority,
        "exploration_rate": exploration_rate,
        "excluded": sorted(excluded),
        "effects": effects,
    }


def override_manifest(
    manifest: dict,
    effect_type: str,
    provider_id: str,
    reason: str,
    at: datetime,
) -> dict:
    """Emergency override: a new manifest version that sends every job of ``effect_type``
    to ``provider_id`` (weight 1, rank 1, ``forced``), every other provider of that effect
    type weight 0 (ranks kept in order behind it). Other effect types are unchanged.

    The override lives until the next regular publication: ``build_manifest`` starts from
    the statistics and never carries ``overrides`` over. Overrides compose (one per effect
    type; a second one on the same effect type replaces the first). Pure: ``manifest`` is
    not modified.

    Returns:
        A copy with ``version`` (new), ``published_at`` = ``at``, ``base_version`` (the
        regular manifest this overrides), ``regular`` (that manifest itself),
        ``overrides[effect_type] = {provider_id, reason,
        at}``, and the forced entry's ``reason`` = ``"override: <reason>"``.

    Raises:
        KeyError: ``effect_type`` is not in the manifest.
        ValueError: ``provider_id`` has no entry for it (excluded or unknown providers
            cannot take traffic), or ``reason`` is empty (an override must say why).
    """
    if effect_type not in manifest["effects"]:
        raise KeyError(f"effect type {effect_type!r} is not in manifest {manifest['version']}")
    entries = _ordered(copy.deepcopy(manifest["effects"][effect_type]))
    known = [e["provider_id"] for e in entries]
    if provider_id not in known:
        raise ValueError(f"{provider_id!r} has no entry for {effect_type!r} (known: {known})")
    if not reason.strip():
        raise ValueError("an override needs a reason")
    forced = next(e for e in entries if e["provider_id"] == provider_id)
    others = [e for e in entries if e is not forced]
    forced.update(forced=True, weight=1.0, reason=f"override: {reason}")
    for rank, e in enumerate([forced, *others], start=1):
        e["rank"] = rank
        if e is not forced:
            e.update(forced=False, weight=0.0)
    out = copy.deepcopy(manifest)
    # The base manifest's off-policy estimate does not describe the override.
    out.pop("off_policy", None)
    out["effects"][effect_type] = [forced, *others]
    out["overrides"] = {
        **manifest.get("overrides", {}),
        effect_type: {"provider_id": provider_id, "reason": reason, "at": at.isoformat()},
    }
    out["base_version"] = manifest.get("base_version", manifest["version"])
    # The regular manifest it stands on (economics.manifest_adjustments.regular_of).
    out["regular"] = regular_of(manifest)
    out["published_at"] = at.isoformat()
    out["version"] = _version({"effects": out["effects"], "overrides": out["overrides"]})
    return out


def regular_of(manifest: dict) -> dict:
    """The regular manifest (as the economics job built it, before any adjustment or override)
    that ``manifest`` stands on: ``manifest`` itself when it is one, else the copy it carries.

    An adjusted or overridden manifest carries its regular one because that one may never have
    been published on its own (the economics job publishes it adjusted when routing parameters
    are in force), yet undoing an adjustment must start from it.
    """
    if "regular" in manifest:
        return manifest["regular"]
    return {k: v for k, v in manifest.items() if k != "regular"}


def manifest_weights(manifest: dict) -> dict[str, dict[str, float]]:
    """effect type → provider_id → routing weight, from a manifest's entries."""
    return {
        effect: {e["provider_id"]: float(e["weight"]) for e in _ordered(entries)}
        for effect, entries in manifest["effects"].items()
    }


def _cumulative(entries: Sequence[dict], epsilon: float) -> tuple[list[str], list[float]]:
    # Entries with an open breaker take no traffic while another one can (build_manifest).
    weights = routing_weights([e for e in entries if e.get("available", True)] or entries, epsilon)
    if not weights:
        raise ValueError("no provider to route to: the effect type has no manifest entry")
    return list(weights), list(itertools.accumulate(weights.values()))


def route(entries: Sequence[dict], rng: random.Random | np.random.Generator, epsilon: float = EXPLORATION_RATE) -> str:
    """The provider of one user job: rank 1 with probability 1 − ε, otherwise one of the
    others uniformly (a forced entry always). One uniform draw per call.

    Args:
        entries: manifest entries of the effect type (any order).
        rng: ``random.Random`` or ``numpy.random.Generator`` (both have ``random()``).

    Raises:
        ValueError: no entries, or epsilon outside [0, 1].
    """
    ids, cum = _cumulative(entries, epsilon)
    # min(): float sums can end a hair below 1.0.
    return ids[min(bisect.bisect_right(cum, rng.random()), len(ids) - 1)]


def route_many(
    entries: Sequence[dict], rng: np.random.Generator, n: int, epsilon: float = EXPLORATION_RATE
) -> np.ndarray:
    """``route`` for ``n`` jobs at once: array of ``n`` provider ids (numpy str)."""
    ids, cum = _cumulative(entries, epsilon)
    idx = np.minimum(np.searchsorted(np.asarray(cum), rng.random(n), side="right"), len(ids) - 1)
    return np.asarray(ids)[idx]


@dataclass(frozen=True)
class Selection:
    """One provider chosen for a task: ``selection`` is ``ranked``, ``exploration`` or
    ``shadow``; ``rank`` is the provider's manifest rank (0 for shadow copies);
    ``propensity`` is the probability that the draw included this provider
    (``inclusion_probabilities``), logged for off-policy evaluation."""

    provider_id: str
    rank: int
    selection: str
    propensity: float = 1.0


def inclusion_probabilities(
    ranked: list[dict],
    top_k: int = 2,
    epsilon: float = EXPLORATION_RATE,
    shadow: list[str] | None = None,
) -> dict[str, float]:
    """Probability that ``select_providers`` includes each provider in a test batch.

    The ``top_k`` best ranks: 1 (deterministic given the manifest). Each of the other r
    routable providers: ε / r (one of them is drawn uniformly, with probability ε). A forced
    entry: 1, every other routable provider 0. Shadow providers: 1 (a copy always runs;
    never a routing decision). These do not sum to 1: a batch holds several providers; their
    sum over the routable providers is the expected number of routed tasks, min(top_k, n) + ε
    when some provider is left to explore (1 under an override).

    Args:
        ranked, top_k, epsilon, shadow: as ``select_providers``.

    Returns:
        provider_id → probability in [0, 1], for every entry of ``ranked`` and every shadow.

    Raises:
        ValueError: epsilon outside [0, 1].
    """
    epsilon = _check_epsilon(epsilon)
    shadow = list(shadow or [])
    ordered = [e for e in _ordered(ranked) if e["provider_id"] not in shadow]
    out: dict[str, float]
    if any(e.get("forced") for e in ordered):
        first = next(e for e in ordered if e.get("forced"))
        out = {e["provider_id"]: float(e is first) for e in ordered}
    else:
        rest = ordered[top_k:]
        out = {e["provider_id"]: 1.0 for e in ordered[:top_k]}
        out.update({e["provider_id"]: epsilon / len(rest) for e in rest})
    out.update(dict.fromkeys(shadow, 1.0))
    return out


def select_providers(
    ranked: list[dict],
    rng: random.Random,
    top_k: int = 2,
    epsilon: float = EXPLORATION_RATE,
    shadow: list[str] | None = None,
) -> list[Selection]:
    """Epsilon-greedy choice of a test batch for one effect type (docs/architecture.md, "Economics").

    Takes the ``top_k`` best-ranked available providers (an open breaker's entry is not,
    unless none is); with probability ``epsilon`` adds one more, drawn uniformly from the
    rest, as exploration. Shadow providers always get a copy that is
    evaluated and costed but never shown to users nor charged — and never a ranked or
    exploration slot, even if a manifest lists them by mistake. Under an emergency override
    (a ``forced`` entry) the batch is the forced provider alone, plus the shadow copies.

    Args:
        ranked: manifest entries for the effect type (any order; sorted by ``rank`` here).
        rng: seeded per video so a re-run makes the same choice.

    Returns:
        The selections, each with its ``propensity`` (``inclusion_probabilities``).
    """
    shadow = list(shadow or [])
    ordered = [e for e in _ordered(ranked) if e["provider_id"] not in shadow]
    forced = [e for e in ordered if e.get("forced")]
    if forced:
        p = inclusion_probabilities(ranked, top_k, epsilon, shadow)
        chosen = [Selection(forced[0]["provider_id"], forced[0]["rank"], "ranked", p[forced[0]["provider_id"]])]
    else:
        # A provider whose breaker is open (``available`` False) is neither ranked in nor
        # explored while any other can take the job; the propensities are those of that draw.
        pool = [e for e in ordered if e.get("available", True)] or ordered
        p = inclusion_probabilities(pool, top_k, epsilon, shadow)
        chosen = [Selection(e["provider_id"], e["rank"], "ranked", p[e["provider_id"]]) for e in pool[:top_k]]
        rest = pool[top_k:]
        if rest and rng.random() < epsilon:
            e = rng.choice(rest)
            chosen.append(Selection(e["provider_id"], e["rank"], "exploration", p[e["provider_id"]]))
    chosen += [Selection(s, 0, "shadow", 1.0) for s in shadow]
    return chosen


EXPLOIT, EXPLORE, FORCED = "exploit", "explore", "forced"


@dataclass(frozen=True)
class RunRoute:
    """The provider one user run goes to, and what happens when it fails.

    Attributes:
        provider_id: the provider drawn by ``route``.
        rank: its manifest rank.
        decision: ``exploit`` (the rank-1 provider), ``explore`` (another one, drawn with
            probability ε) or ``forced`` (an emergency override).
        propensity: the probability that ``route`` draws this provider for this run (its
            routing weight): what an off-policy estimate of another policy reweights by.
        fallbacks: the other routable providers, best rank first: tried in order when the
            chosen one fails, within the run's deadline.
        shadow: shadow providers that get a copy: costed, never delivered nor charged.
    """

    provider_id: str
    rank: int
    decision: str
    propensity: float
    fallbacks: tuple[str, ...]
    shadow: tuple[str, ...]

    @property
    def selection(self) -> str:
        """The chosen task's ``selection`` as the test batch names it: ``exploration`` when
        explored, else ``ranked``."""
        return "exploration" if self.decision == EXPLORE else "ranked"

    @property
    def candidates(self) -> tuple[str, ...]:
        """The providers that may deliver, in the order they are tried: the chosen one, then
        the fallbacks. Never a shadow provider."""
        return (self.provider_id, *self.fallbacks)


def route_run(
    ranked: Sequence[dict],
    rng: random.Random | np.random.Generator,
    epsilon: float = EXPLORATION_RATE,
    shadow: Sequence[str] = (),
) -> RunRoute:
    """Route one user run of an effect type: ONE provider by ``route`` (rank 1 with
    probability 1 − ε, another uniformly with ε; a forced entry always), the others as its
    fallbacks in rank order, and the shadow copies. Shadow providers never take the run nor a
    fallback, even if a manifest lists them by mistake (as ``select_providers``).

    Args:
        ranked: manifest entries of the effect type (any order).
        rng: seeded per run so a re-executed run routes the same way.
        shadow: the effect type's shadow provider ids.

    Raises:
        ValueError: no routable entry, or epsilon outside [0, 1].
    """
    shadow = tuple(shadow)
    entries = [e for e in _ordered(ranked) if e["provider_id"] not in shadow]
    provider_id = route(entries, rng, epsilon)
    weights = routing_weights(entries, epsilon)
    chosen = next(e for e in entries if e["provider_id"] == provider_id)
    decision = FORCED if chosen.get("forced") else EXPLOIT if chosen is entries[0] else EXPLORE
    return RunRoute(
        provider_id=provider_id,
        rank=int(chosen["rank"]),
        decision=decision,
        propensity=weights[provider_id],
        fallbacks=tuple(e["provider_id"] for e in entries if e is not chosen),
        shadow=shadow,
    )


def ab_assignments(
    providers: Sequence[str],
    inputs: int | Sequence[str],
    effect_type: str,
    experiment: str = "ab",
) -> list[dict]:
    """A/B mode: an admin runs every input on every listed provider.

    Args:
        providers: provider ids to compare (duplicates dropped, order kept); at least two.
        inputs: video ids, or a count n for n numbered input slots ``<experiment>-<i>`` that
            the caller binds to videos.
        effect_type: the effect every task produces.
        experiment: names the experiment; part of every task id, so two experiments on the
            same video never share a task (nor with the routed task of that video).

    Returns:
        One dict per (input, provider), input-major: ``task_id`` (``stable_id`` of
        ``ab, experiment, video, effect, provider``, 20 hex), ``video_id``, ``effect_type``,
        ``provider_id``, ``rank`` 0 (not a manifest rank), ``selection`` ``'ab'``.

    Raises:
        ValueError: fewer than two distinct providers, or no inputs.
    """
    arms = list(dict.fromkeys(providers))
    if len(arms) < 2:
        raise ValueError(f"an A/B run compares at least two providers, got {arms}")
    videos = [f"{experiment}-{i}" for i in range(inputs)] if isinstance(inputs, int) else list(inputs)
    if not videos:
        raise ValueError("an A/B run needs at least one input")
    return [
        {
            "task_id": stable_id("ab", experiment, v, effect_type, p, length=20),
            "video_id": v,
            "effect_type": effect_type,
            "provider_id": p,
            "rank": 0,
            "selection": AB_SELECTION,
        }
        for v in videos
        for p in arms
    ]


def manifest_rows(manifest: dict) -> pl.DataFrame:
    """Flatten a manifest into ``routing_manifests`` rows (one per effect × provider).

    ``weight`` and ``forced`` are not columns of that table (resources/schemas.py); the
    published JSON manifest carries them. ``executions`` is rounded to a whole number.
    """
    published = datetime.fromisoformat(manifest["published_at"])
    rows = [
        {
            "version": manifest["version"],
            "effect_type": effect,
            "published_at": published,
            **{
                k: e[k]
                for k in (
                    "rank",
                    "provider_id",
                    "score",
                    "expected_cost_usd",
                    "expected_quality",
                    "expected_duration_ms",
                    "confidence",
                    "reason",
                )
            },
            # The table keeps whole executions; discounted counts are fractional.
            "executions": round(e["executions"]),
            "breaker": e.get("breaker", "closed"),
            "available": e.get("available", True),
        }
        for effect, entries in manifest["effects"].items()
        for e in entries
    ]
    return pl.DataFrame(rows, infer_schema_length=None)


def current_rankings(manifest: dict | None, active: dict[str, list[str]], now: datetime) -> tuple[dict, str, str]:
    """Manifest entries per effect type restricted to the providers active now.

    Falls back to a bootstrap ranking (registry order, neutral priors) for any effect type
    the published manifest does not cover (or when none was published yet).

    Returns:
        (effect type → entries, manifest version, source: 'manifest' | 'bootstrap').
    """
    bootstrap = build_manifest(pl.DataFrame(), active, now)
    if manifest is None:
        return bootstrap["effects"], bootstrap["version"], "bootstrap"
    effects = {}
    for effect_type, providers in active.items():
        published = [e for e in manifest["effects"].get(effect_type, []) if e["provider_id"] in providers]
        effects[effect_type] = published or bootstrap["effects"][effect_type]
    return effects, manifest["version"], "manifest"
