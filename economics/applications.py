"""Applying a recommendation (docs/signals.md, "Recommendations that apply"): which runtime
parameter an approved recommendation changes, and the guardrails under which an
``auto_applicable`` one is applied unattended. Pure.

What each recommendation changes:

* ``PROVIDER_SWITCH`` — ``routing.<effect>.pin`` = the recommended provider (ranked first in
  every manifest published from now on, ``economics.manifest_adjustments``);
* ``PRICE_ADJUSTMENT`` — ``effect.<effect>.price_tokens`` = the new price (the parameter is
  removed when the new price is the shipped list price); refused as stale when the price in
  force is no longer the one the recommendation was computed from;
* ``CAPACITY_SCALE_UP`` (a GPU saturation's scale-up over the automatic budget) and a
  ``WORKFLOW_REVIEW`` that suggests a price — the change they carry;
* ``FLEET_OPTIMIZATION``, ``WORKFLOW_TUNING``, ``WARM_POOL`` and a ``WORKFLOW_REVIEW`` without
  a price change the fleet or a workflow definition, which the platform does not run: the
  approval is recorded and an engineer makes the change (``NotApplicable`` says which).

Unattended (``unattended_refusal``): only ``auto_applicable`` recommendations, a numeric
parameter moved by at most ``max_step`` of its value (a price, a concurrency), at most
``per_cycle`` per economics cycle, never one applied before (a rolled-back application stays
rolled back).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from economics.actions import Change

CAPACITY_SCALE_UP, WARM_POOL, WORKFLOW_REVIEW = "CAPACITY_SCALE_UP", "WARM_POOL", "WORKFLOW_REVIEW"
# The recommendation types the automatic actions raise (bronze/bottleneck_actions), by action.
ACTION_TYPES = {"scale_up": CAPACITY_SCALE_UP, "warm_pool": WARM_POOL, "review_workflow": WORKFLOW_REVIEW}


class NotApplicable(ValueError):
    """The recommendation changes nothing the platform runs (the fleet, a workflow file)."""


class Stale(ValueError):
    """The recommendation was computed from a value no longer in force."""


def _action(rec: Mapping) -> dict:
    raw = rec.get("action")
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def change_for(
    rec: Mapping,
    in_force: Mapping[tuple[str, str, str], Any],
    prices: Mapping[str, int],
    list_prices: Mapping[str, int],
) -> Change:
    """The parameter change approving ``rec`` makes (module docstring).

    Args:
        rec: a recommendation row (``type``, ``action`` JSON).
        in_force: (scope, subject, name) → value of the runtime parameters set now.
        prices: effect type → list price in force; ``list_prices``: the shipped ones.

    Raises:
        NotApplicable, Stale.
    """
    kind, action = rec["type"], _action(rec)
    if kind == "PROVIDER_SWITCH":
        effect = action["effect_type"]
        key = ("routing", effect, "pin")
        return Change(*key, in_force.get(key), action["to_provider"])
    if kind == "PRICE_ADJUSTMENT":
        effect, new = action["effect_type"], int(action["price_tokens"])
        now = prices.get(effect)
        if now is None:
            raise NotApplicable(f"{effect} is not in the effect catalog")
        if action.get("previous_price_tokens") is not None and int(action["previous_price_tokens"]) != now:
            raise Stale(
                f"{effect} costs {now} tokens now, not the {action['previous_price_tokens']} this was computed on"
            )
        key = ("effect", effect, "price_tokens")
        return Change(*key, in_force.get(key), None if new == list_prices.get(effect) else new)
    if kind in (CAPACITY_SCALE_UP, WORKFLOW_REVIEW) and action.get("scope"):
        key = (action["scope"], action["subject"], action["name"])
        if in_force.get(key) != action.get("before"):
            raise Stale(f"{'.'.join(key)} is {in_force.get(key)!r} now, not the {action.get('before')!r} proposed from")
        return Change(*key, action.get("before"), action["after"], action.get("cost_usd_per_hour"))
    what = {
        "FLEET_OPTIMIZATION": "the provider's fleet (instance type, spot) in its deployment",
        "WORKFLOW_TUNING": "the workflow in data/providers.yaml",
        WARM_POOL: "the fleet's minimum capacity schedule",
        WORKFLOW_REVIEW: "the workflow in data/providers.yaml",
    }.get(kind, "nothing the platform runs")
    raise NotApplicable(f"{kind} changes {what}: approval recorded, an engineer applies it")


def relative_step(before: Any, after: Any) -> float | None:
    """|after − before| / before for numbers (None when either is not a positive number)."""
    if isinstance(before, int | float) and isinstance(after, int | float) and before > 0:
        return abs(after - before) / before
    return None


def unattended_refusal(
    rec: Mapping, change: Change, effective_before: Any, applied_this_cycle: int, per_cycle: int, max_step: float
) -> str | None:
    """Why ``rec`` may not be applied unattended now, or None when it may.

    Args:
        effective_before: the value in force the change moves from (the shipped default when
            no parameter is set: a price's list price, a provider's registry concurrency).
        applied_this_cycle: unattended applications already made this cycle.
    """
    if not rec.get("auto_applicable"):
        return "not auto-applicable: an admin decides"
    if applied_this_cycle >= per_cycle:
        return f"the {per_cycle} unattended application(s) of this cycle are used: next cycle"
    step = relative_step(effective_before, change.after)
    if step is not None and step > max_step + 1e-9:
        return f"a {step:.0%} change is over the {max_step:.0%} unattended step: an admin decides"
    return None
