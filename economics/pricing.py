"""The price of a job (one video's effect creation) and of an effect run, in tokens
(docs/architecture.md, "Economics"; docs/gallery.md, "The price of a run").

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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class RunPrice:
    """What an effect run is reserved and charged, and where that number came from.

    Attributes:
        tokens: the price reserved.
        revision_price_tokens: the pinned revision's price (the effect's list price when it
            was published).
        change_id: the ``parameter_changes`` id of the runtime price parameter that set
            ``tokens``; None when the revision's price stood.
    """

    tokens: int
    revision_price_tokens: int
    change_id: str | None = None

    @property
    def source(self) -> str:
        """``runtime_parameter`` or ``revision``."""
        return "revision" if self.change_id is None else "runtime_parameter"


def run_price(revision_price_tokens: int, price_in_force: int | None = None, change_id: str | None = None) -> RunPrice:
    """The effective price of an effect run when it is accepted.

    A revision's price is its effect type's list price at publication and never changes (the
    revision is immutable). The economic engine revises prices while the platform runs by
    setting the effect type's ``effect.<type>.price_tokens`` runtime parameter (an applied
    PRICE_ADJUSTMENT, a flagged workflow's price): that parameter is the effect type's list
    price in force — the one M5 charges creation jobs — so while it is set it is also the
    price of every run of the effect, whichever revision is pinned; when it is removed or
    rolled back the revision's price applies again.

    Args:
        revision_price_tokens: the pinned revision's ``price_tokens``.
        price_in_force: the ``effect.<type>.price_tokens`` parameter's value, None when unset.
        change_id: the change that set it.

    Raises:
        ValueError: a negative price, or a parameter that is not a whole number of tokens.
    """
    if revision_price_tokens < 0:
        raise ValueError(f"a revision's price must be >= 0, got {revision_price_tokens}")
    if price_in_force is None:
        return RunPrice(int(revision_price_tokens), int(revision_price_tokens))
    numeric = isinstance(price_in_force, (int, float)) and not isinstance(price_in_force, bool)
    if not numeric or not float(price_in_force).is_integer() or price_in_force < 0:
        raise ValueError(f"a price parameter must be a whole number of tokens >= 0, got {price_in_force!r}")
    return RunPrice(int(price_in_force), int(revision_price_tokens), change_id)
