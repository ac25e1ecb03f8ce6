"""The price of a job (one video's effect creation), in tokens (docs/architecture.md, "Economics").

    base  = the highest ``price_tokens`` among the effect types the job tries
    price = ceil(base × (1 + Σ premium[d] for each d in {quality, speed} the uploader favours))

A job tries several effect types and delivers the best result of one of them; it is reserved
before the winner is known and charged whole (the store's consume takes the reservation), so
it is priced at the dearest effect it may deliver — the user is never charged less than the
list price of what they get. An uploader *favours* quality or speed when their weight for it
is above the balanced weight (``economics.routing.PRIORITY_WEIGHTS["balanced"]``): favouring
quality or speed buys better or faster providers, which cost more to run, so ``data/effects.yaml``
``premiums`` adds a fraction of the price for each (cost-favouring uploads pay the list price).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from economics.routing import PRIORITY_WEIGHTS

PREMIUM_DIMENSIONS = ("quality", "speed")


def favoured(weights: Mapping[str, float] | None) -> list[str]:
    """The premium dimensions whose weight is above the balanced weight (none for None)."""
    if not weights:
        return []
    balanced = PRIORITY_WEIGHTS["balanced"]
    # A tolerance: weights are normalised floats, and 5:3:2 must read as balanced.
    return [d for d in PREMIUM_DIMENSIONS if weights.get(d, 0.0) > balanced[d] + 1e-9]


def job_price(
    prices: Mapping[str, int],
    effect_types: Iterable[str],
    premiums: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> int:
    """Tokens a job is reserved and charged (module formula); 0 when it tries no effect.

    Args:
        prices: effect type → ``price_tokens`` (``Catalog.prices``).
        effect_types: the effect types of the job's charged tasks.
        premiums: dimension → fraction of the price (``Catalog.premiums``); missing = 0.
        weights: the upload's priority weights (``resources.priorities.Priorities.weights()``,
            normalised to sum 1, as the balanced preset is); None = balanced.

    Raises:
        KeyError: an effect type without a price.
        ValueError: a negative premium.
    """
    types = set(effect_types)
    if not types:
        return 0
    base = max(int(prices[t]) for t in types)
    extra = 0.0
    for d in favoured(weights):
        p = float((premiums or {}).get(d, 0.0))
        if p < 0:
            raise ValueError(f"premium {d} must be ≥ 0, got {p}")
        extra += p
    # round() first: 2 × 1.25 is 2.5000000000000004 in binary and must not become 3 by float noise
    return math.ceil(round(base * (1 + extra), 9))
