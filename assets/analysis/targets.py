"""The effect a job builds: what the example shows and the uploader asks for, mapped to the
catalog's effect types, with parameters estimated from the example (docs/analysis.md, "Target
effects"). Pure: measured metrics, the description and the parsed catalog in, targets out.

An effect type of ``data/effects.yaml`` is a target when

* the example shows it: one of its ``shown_by`` looks is among M2's ``detected_effects``
  (measured, or named by Gemini when it answered);
* the description asks for it: one of its ``keywords`` occurs in the uploader's description as
  whole words (case-insensitive; "warm" matches "make it warm", not "warmup");
* Gemini named it among the example's effect types (``suggested``), when Gemini answered.

Targets are ordered by strength of evidence (shown and asked for, then shown, then asked for,
then suggested only; catalog order within a tier): the first is the job's primary target, the
one whose best result is delivered first (assets/batch/best.py).

Parameter estimates (each replaces the catalog default only when the example shows the
effect; a target asked for in words only keeps the defaults), each clipped to the effect's
``param_ranges`` in ``data/effects.yaml`` — the one declaration of a parameter's range, which
the API also checks a user's run parameters against (``resources.services.runs``):

* warm / cool grade ``strength``: the example's colour-temperature shift from D65 (6504 K) in
  mired (1e6 / K, the scale on which equal steps look equally strong), per MIRED_PER_STRENGTH.
  (A look M2 measures is at most 4000 K warm / at least 9000 K cool, so an estimate from a
  measured look is at least 0.64 / 0.47; only a look Gemini named alone can read weaker.)
  MIRED_PER_STRENGTH is the catalog providers' own scale
  (data/providers.yaml ffmpeg-colortemp: strength 0.6 = 4100 K warm, 10100 K cool): warm
  (1e6/4100 - 1e6/6504) / 0.6 = 150 mired, cool (1e6/6504 - 1e6/10100) / 0.6 = 91 mired.
* cartoon ``levels``: the example's luma bins per posterize band, LUMA_BINS_PER_LEVEL (a
  6-band posterize of bikes.mp4 read 15.3 bins after H.264: 2.55 per band); ``edge_density``:
  the example's share of edge pixels (the outline strength the output should match;
  providers that do not take it ignore it).
* slow motion ``factor``: a duplicated-frame slow motion by f repeats 1 - 1/f of its frame
  pairs, so f = 1 / (1 - repeat_share), rounded to a half.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

D65_K = 6504.0
MIRED_PER_STRENGTH = {"warm_grade": 150.0, "cool_grade": 91.0}
LUMA_BINS_PER_LEVEL = 2.55


@dataclass(frozen=True)
class Target:
    """One effect type the job builds.

    Attributes:
        effect_type: a catalog effect type.
        params: its parameters: the catalog defaults, with the estimates from the example.
        reasons: why it is a target: ``example:<look>``, ``description:<keyword>``, ``gemini``.
    """

    effect_type: str
    params: dict
    reasons: list[str] = field(default_factory=list)

    @property
    def shown(self) -> bool:
        """The example shows it (a detected look maps to it)."""
        return any(r.startswith("example:") for r in self.reasons)


def described_effects(description: str | None, effects: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """Effect type → the catalog ``keywords`` of it found in ``description`` as whole words
    (case-insensitive; hyphens and spaces inside a keyword must match as written)."""
    text = (description or "").lower()
    found: dict[str, list[str]] = {}
    if not text.strip():
        return found
    for effect_type, spec in effects.items():
        hits = [k for k in spec.get("keywords", ()) if re.search(rf"(?<![\w-]){re.escape(k.lower())}(?![\w-])", text)]
        if hits:
            found[effect_type] = hits
    return found


def target_effects(
    detected_effects: Collection[str],
    description: str | None,
    metrics: Mapping[str, float],
    effects: Mapping[str, Mapping],
    suggested: Collection[str] = (),
) -> list[Target]:
    """The job's targets, primary first (module docstring).

    Args:
        detected_effects: the example's looks (taxonomy ``detected_effects`` names).
        description: the uploader's description, or None.
        metrics: the example's measurements (``color_temperature`` K, ``luma_levels``,
            ``edge_density``, ``repeat_share``).
        effects: the catalog's effect types (``Catalog.effects()``).
        suggested: effect types Gemini named for the example (empty without Gemini).

    Returns:
        Targets in order; empty when nothing the platform can produce is shown or asked for.
    """
    described = described_effects(description, effects)
    targets = []
    for effect_type, spec in effects.items():
        reasons = [f"example:{look}" for look in spec.get("shown_by", ()) if look in detected_effects]
        reasons += [f"description:{k}" for k in described.get(effect_type, ())]
        if effect_type in suggested:
            reasons.append("gemini")
        if not reasons:
            continue
        params = dict(spec.get("params", {}))
        if any(r.startswith("example:") for r in reasons):
            params.update(estimate_params(effect_type, metrics, spec.get("param_ranges") or {}))
        targets.append(Target(effect_type, params, reasons))
    return sorted(targets, key=_tier)  # stable: catalog order within a tier


def _tier(t: Target) -> int:
    described = any(r.startswith("description:") for r in t.reasons)
    if t.shown:
        return 0 if described else 1
    return 2 if described else 3


def estimate_params(effect_type: str, metrics: Mapping[str, float], ranges: Mapping[str, Sequence[float]]) -> dict:
    """Parameters of ``effect_type`` estimated from the example's ``metrics`` (module
    docstring); {} for an effect type with no estimate or when a needed metric is missing.

    Args:
        ranges: the effect's ``param_ranges`` (``data/effects.yaml``): parameter → [lowest,
            highest]; every estimate is clipped to its range.

    Raises:
        KeyError: an estimated parameter has no declared range (the catalog must declare it).
    """
    if effect_type in MIRED_PER_STRENGTH and metrics.get("color_temperature"):
        shift = 1e6 / metrics["color_temperature"] - 1e6 / D65_K
        signed = shift if effect_type == "warm_grade" else -shift
        return {"strength": round(_clip(signed / MIRED_PER_STRENGTH[effect_type], ranges["strength"]), 2)}
    if effect_type == "cartoon" and metrics.get("luma_levels"):
        levels = round(_clip(metrics["luma_levels"] / LUMA_BINS_PER_LEVEL, ranges["levels"]))
        return {"levels": int(levels), "edge_density": round(float(metrics.get("edge_density", 0.0)), 4)}
    if effect_type == "slow_motion" and "repeat_share" in metrics:
        share = min(float(metrics["repeat_share"]), 0.9)
        return {"factor": _clip(round(2 / (1 - share)) / 2, ranges["factor"])}
    return {}


def _clip(x: float, bounds: Sequence[float]) -> float:
    low, high = bounds
    return min(float(high), max(float(low), float(x)))
