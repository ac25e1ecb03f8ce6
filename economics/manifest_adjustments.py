"""Routing adjustments in force on top of a regular routing manifest (docs/signals.md,
"Runtime parameters"): an approved provider switch *pins* a provider first for an effect
type; a latency degradation *demotes* a provider out of an effect type's ranking while it
lasts. Both are runtime parameters (``routing`` scope), so they survive every publication of
the economics job until they are rolled back or restored.

* **pin** — the provider moves to rank 1; the others keep their order behind it; routing
  weights are recomputed with the manifest's own ε (``economics.routing.routing_weights``), so
  exploration and the second ranked slot carry on.
* **demote** — the provider's entry leaves the effect type's ranking (listed under
  ``demoted`` with the reason): M5 neither ranks, explores nor falls back to it, and the jobs
  still run on the remaining top-k. An emergency override (``forced``) would instead send
  every job to one provider and drop the comparison M5 makes between two. A provider that is
  the effect type's only entry is not demoted (there is nowhere else to send the work).

Demotions win over pins (a degraded provider is not pinned first). Pure: the manifest is
copied, never modified.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from economics.routing import regular_of, routing_weights

PIN, DEMOTE = "pin", "demote"
DEMOTE_PREFIX = "demote."  # a routing parameter's name: demote.<provider_id>


def adjustments_from_parameters(parameters: Mapping[tuple[str, str, str], Mapping]) -> list[dict]:
    """The routing adjustments in force, from runtime parameters (``(scope, subject, name)``
    → row with ``value`` and ``change_id``): ``routing.<effect>.pin`` = provider id, and
    ``routing.<effect>.demote.<provider>`` = reason. Returns ``{effect_type, kind,
    provider_id, reason, change_id}`` dicts, sorted."""
    out = []
    for (scope, effect, name), row in parameters.items():
        if scope != "routing":
            continue
        if name == PIN:
            provider, reason = str(row["value"]), "pinned first (approved recommendation)"
        elif name.startswith(DEMOTE_PREFIX):
            provider, reason = name.removeprefix(DEMOTE_PREFIX), str(row["value"])
        else:
            continue
        kind = PIN if name == PIN else DEMOTE
        out.append(
            {
                "effect_type": effect,
                "kind": kind,
                "provider_id": provider,
                "reason": reason,
                "change_id": row["change_id"],
            }
        )
    return sorted(out, key=lambda a: (a["effect_type"], a["kind"], a["provider_id"]))


def _version(doc: dict) -> str:
    # The routing module's rule: sha256 of the canonical JSON, 12 hex.
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def adjust(manifest: dict, adjustments: Iterable[Mapping], at: datetime | None = None) -> dict:
    """``manifest`` with ``adjustments`` applied (module docstring).

    Args:
        manifest: a published manifest (``economics.routing.build_manifest`` shape).
        adjustments: ``{effect_type, kind ('pin' | 'demote'), provider_id, reason,
            change_id}``; ones naming an effect type or provider the manifest does not list
            are left out (the provider may have become unhealthy meanwhile).
        at: the publication time of the adjusted manifest (default: unchanged).

    Returns:
        The manifest itself when nothing applies; else a copy with the affected effect
        types re-ranked and re-weighted, ``adjustments`` (those applied, with ``applied``
        False and a ``note`` for a demotion refused because no other provider is left),
        ``demoted`` (effect type → removed entries with their reason), ``base_version`` (the
        regular manifest adjusted), ``regular`` (that manifest itself, see ``regular_of``) and a
        new ``version``.
    """
    todo = [dict(a) for a in adjustments]
    effects = manifest["effects"]
    relevant = [a for a in todo if any(e["provider_id"] == a["provider_id"] for e in effects.get(a["effect_type"], []))]
    if not relevant:
        return manifest
    epsilon = float(manifest.get("exploration_rate", 0.05))
    out = copy.deepcopy(manifest)
    demoted: dict[str, list[dict]] = {}
    applied = []
    for effect in sorted({a["effect_type"] for a in relevant}):
        entries = sorted(out["effects"][effect], key=lambda e: e["rank"])
        mine = [a for a in relevant if a["effect_type"] == effect]
        for a in (x for x in mine if x["kind"] == DEMOTE):
            rest = [e for e in entries if e["provider_id"] != a["provider_id"]]
            if not rest:
                applied.append({**a, "applied": False, "note": "the only provider of the effect type: not demoted"})
                continue
            gone = next(e for e in entries if e["provider_id"] == a["provider_id"])
            # Kept with weight 0 (no job goes to it) for whoever reads the manifest.
            demoted.setdefault(effect, []).append({**gone, "weight": 0.0, "reason": f"demoted: {a['reason']}"})
            entries = rest
            applied.append({**a, "applied": True})
        for a in (x for x in mine if x["kind"] == PIN):
            first = [e for e in entries if e["provider_id"] == a["provider_id"]]
            if not first:  # demoted in the same manifest: the demotion wins
                applied.append({**a, "applied": False, "note": "demoted: not pinned"})
                continue
            entries = first + [e for e in entries if e is not first[0]]
            first[0]["reason"] = f"pinned: {a['reason']}"
            applied.append({**a, "applied": True})
        for rank, e in enumerate(entries, start=1):
            e["rank"], e["forced"] = rank, False
        weights = routing_weights(entries, epsilon)
        for e in entries:
            e["weight"] = weights[e["provider_id"]]
        out["effects"][effect] = entries
    out["adjustments"] = applied
    out["demoted"] = demoted
    out["base_version"] = manifest.get("base_version", manifest["version"])
    out["regular"] = regular_of(manifest)
    if at is not None:
        out["published_at"] = at.isoformat()
    out["version"] = _version(
        {"effects": out["effects"], "overrides": out.get("overrides", {}), "adjustments": applied}
    )
    return out
