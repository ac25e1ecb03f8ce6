"""Threshold decisions with a confidence, so a value near a threshold is known to be borderline.

A measured value near a class boundary can land on either side for two encodings of the same
picture (the uploaded file and its proxy differ by compression noise and frame rate). A
decision here is the class plus a confidence: the value's distance to the nearest threshold in
log units, relative to a margin (the band in which the two sides are not told apart reliably).
Confidence is 0 on a threshold and 1 from ``margin`` away on; a decision with confidence < 1 is
*borderline*, reported as such (``ContentAnalysis.borderline``) rather than presented as sure.

Distances are ratios because both measures it serves (motion level, colour temperature in
kelvin) vary multiplicatively: a 10 % change means the same at 0.005 as at 0.05, and equal
mired (1e6 / K) steps are roughly equal perceived shifts of colour temperature.

Pure, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """A class and how far its value was from changing it.

    Attributes:
        name: the class.
        confidence: 0..1; 0 on a threshold, 1 at ``margin`` (relative) or more from every one.
    """

    name: str
    confidence: float

    @property
    def borderline(self) -> bool:
        """True when the value lies inside the margin of a threshold."""
        return self.confidence < 1.0


def threshold_confidence(value: float, threshold: float, margin: float) -> float:
    """0..1: |ln(value / threshold)| / ln(1 + margin), capped at 1.

    A non-positive value or threshold is 1 (a value of 0 is "none at all", not near anything).

    Raises:
        ValueError: margin <= 0.
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    if value <= 0 or threshold <= 0 or math.isinf(threshold):
        return 1.0
    return min(1.0, abs(math.log(value / threshold)) / math.log1p(margin))


def classify(value: float, classes: tuple[tuple[str, float], ...], margin: float) -> Decision:
    """The first class whose upper bound exceeds ``value``, with the confidence of the nearest
    bound (see threshold_confidence).

    Args:
        value: the measure.
        classes: (name, upper bound) in ascending order; the last bound is usually ``inf``.
        margin: relative half-width of the borderline band, e.g. 0.15 = ±15 %.

    Raises:
        ValueError: value not below the last bound, or margin <= 0.
    """
    name = next((name for name, upper in classes if value < upper), None)
    if name is None:
        raise ValueError(f"{value} is not below the last bound {classes[-1][1]}")
    confidence = min((threshold_confidence(value, bound, margin) for _, bound in classes), default=1.0)
    return Decision(name, confidence)
