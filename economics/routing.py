"""Routing manifest: ranked providers per effect type, and task selection with exploration.

Score of a provider for an effect type (DESIGN.md §6, multi-objective):

    score = success_rate × (w_q·quality + w_c·cost_score + w_s·speed_score)
    cost_score  = cheapest expected cost / this provider's expected cost    (1 = cheapest)
    speed_score = fastest expected duration / this provider's duration      (1 = fastest)

Ratios to the best peer keep the three terms on one 0..1 scale without hand-set units.
Providers without executions get neutral priors (0.5) and confidence 0, so they rank below
proven good ones and are reached through exploration. Confidence = n / (n + 10): a
pseudo-count of 10 executions before the estimate is trusted half.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime

import polars as pl

PRIORITY_WEIGHTS: dict[str, dict[str, float]] = {
    "balanced": {"quality": 0.5, "cost": 0.3, "speed": 0.2},
    "quality": {"quality": 0.7, "cost": 0.15, "speed": 0.15},
    "cost": {"quality": 0.3, "cost": 0.6, "speed": 0.1},
    "speed": {"quality": 0.3, "cost": 0.1, "speed": 0.6},
}
PRIOR = 0.5
CONFIDENCE_PSEUDO_COUNT = 10


def _version(effects: dict) -> str:
    return hashlib.sha256(json.dumps(effects, sort_keys=True).encode()).hexdigest()[:12]


def build_manifest(
    stats: pl.DataFrame,
    providers_by_effect: dict[str, list[str]],
    published_at: datetime,
    priority: str = "balanced",
) -> dict:
    """Rank every active provider per effect type.

    Args:
        stats: per (provider_id, effect_type): ``executions``, ``success_rate`` (0..1),
            ``mean_cost_usd``, ``mean_quality`` (0..1, null if never scored),
            ``mean_duration_ms``. May be empty (bootstrap: every provider on priors).
        providers_by_effect: effect type → active provider ids, in registry order (the
            tie-breaker).
        published_at: UTC publication time.
        priority: key of PRIORITY_WEIGHTS.

    Returns:
        ``{"version", "published_at" (ISO), "priority", "effects": {effect_type: [entry…]}}``
        with entries ``provider_id, rank (1 = best), score, expected_cost_usd,
        expected_quality, expected_duration_ms, confidence, executions, reason``.
    """
    w = PRIORITY_WEIGHTS[priority]
    by_key = {(r["provider_id"], r["effect_type"]): r for r in stats.iter_rows(named=True)}
    effects: dict[str, list[dict]] = {}
    for effect_type, provider_ids in sorted(providers_by_effect.items()):
        rows = [by_key.get((p, effect_type)) for p in provider_ids]
        costs = [r["mean_cost_usd"] for r in rows if r and r["mean_cost_usd"]]
        durations = [r["mean_duration_ms"] for r in rows if r and r["mean_duration_ms"]]
        entries = []
        for order, (pid, r) in enumerate(zip(provider_ids, rows)):
            n = int(r["executions"]) if r else 0
            if n == 0:
                quality, cost_s, speed_s, success = PRIOR, PRIOR, PRIOR, 1.0
                reason = "no executions yet: neutral priors"
            else:
                quality = r["mean_quality"] if r["mean_quality"] is not None else PRIOR
                cost_s = min(costs) / r["mean_cost_usd"] if r["mean_cost_usd"] else 1.0
                speed_s = min(durations) / r["mean_duration_ms"] if r["mean_duration_ms"] else 1.0
                success = float(r["success_rate"])
                reason = (f"{n} executions: success {success:.0%}, quality {quality:.2f}, "
                          f"cost ×{1 / cost_s:.2f} of cheapest, time ×{1 / speed_s:.2f} of fastest")
            score = success * (w["quality"] * quality + w["cost"] * cost_s + w["speed"] * speed_s)
            entries.append({
                "provider_id": pid,
                "score": round(score, 6),
                "expected_cost_usd": r["mean_cost_usd"] if n else None,
                "expected_quality": r["mean_quality"] if n else None,
                "expected_duration_ms": r["mean_duration_ms"] if n else None,
                "confidence": round(n / (n + CONFIDENCE_PSEUDO_COUNT), 4),
                "executions": n,
                "reason": reason,
                "_order": order,
            })
        entries.sort(key=lambda e: (-e["score"], e["_order"]))
        for rank, e in enumerate(entries, start=1):
            e.pop("_order")
            e["rank"] = rank
        effects[effect_type] = entries
    return {
        "version": _version(effects),
        "published_at": published_at.isoformat(),
        "priority": priority,
        "effects": effects,
    }


@dataclass(frozen=True)
class Selection:
    """One provider chosen for a task: ``selection`` is ``ranked``, ``exploration`` or
    ``shadow``; ``rank`` is the provider's manifest rank (0 for shadow copies)."""

    provider_id: str
    rank: int
    selection: str


def select_providers(
    ranked: list[dict], rng: random.Random, top_k: int = 2, epsilon: float = 0.05,
    shadow: list[str] | None = None,
) -> list[Selection]:
    """Epsilon-greedy choice for one effect type (DESIGN.md §6).

    Takes the ``top_k`` best-ranked providers; with probability ``epsilon`` adds one more,
    drawn uniformly from the rest, as exploration. Shadow providers always get a copy that is
    evaluated and costed but never shown to users nor charged.

    Args:
        ranked: manifest entries for the effect type (any order; sorted by ``rank`` here).
        rng: seeded per video so a re-run makes the same choice.
    """
    ordered = sorted(ranked, key=lambda e: e["rank"])
    chosen = [Selection(e["provider_id"], e["rank"], "ranked") for e in ordered[:top_k]]
    rest = ordered[top_k:]
    if rest and rng.random() < epsilon:
        e = rng.choice(rest)
        chosen.append(Selection(e["provider_id"], e["rank"], "exploration"))
    chosen += [Selection(p, 0, "shadow") for p in (shadow or [])]
    return chosen


def manifest_rows(manifest: dict) -> pl.DataFrame:
    """Flatten a manifest into ``routing_manifests`` rows (one per effect × provider)."""
    published = datetime.fromisoformat(manifest["published_at"])
    rows = [
        {"version": manifest["version"], "effect_type": effect, "published_at": published,
         **{k: e[k] for k in ("rank", "provider_id", "score", "expected_cost_usd",
                              "expected_quality", "expected_duration_ms", "confidence",
                              "executions", "reason")}}
        for effect, entries in manifest["effects"].items() for e in entries
    ]
    return pl.DataFrame(rows, infer_schema_length=None)
