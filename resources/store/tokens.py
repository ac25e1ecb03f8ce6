"""Bounds of token amounts (pure).

Tokens are integers. Every amount an operation takes (a top-up, a reservation) must be an
``int`` — not a ``bool`` (``True`` is an ``int`` in Python), not a float (``1.5`` or ``1e3``
would be rounded somewhere), not a numeric string — in ``1 … MAX_TOKENS_PER_OPERATION``.
An account's lifetime credits — an upper bound of its available balance — never exceed
``MAX_BALANCE``: both are far inside a signed 64-bit BIGINT
(9.2·10¹⁸), so no sum the store keeps can overflow the column, whatever the backend.
(The gross counters ``reserved``/``consumed``/``refunded`` of an account grow with every
cycle of reserve and refund; at ``MAX_TOKENS_PER_OPERATION`` per cycle they need over nine
billion cycles to reach the BIGINT limit.)
"""

from __future__ import annotations

from resources.store.errors import BalanceOverflow, InvalidTokens

MAX_TOKENS_PER_OPERATION = 10**9
MAX_BALANCE = 10**15


def check_tokens(value: object, what: str = "tokens") -> int:
    """``value`` as a token amount, or ``InvalidTokens`` (422).

    Accepts a Python ``int`` other than ``bool`` in ``1 … MAX_TOKENS_PER_OPERATION``
    (a numpy integer is not an ``int`` and is refused: convert it explicitly).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTokens(f"{what} must be an integer, not {type(value).__name__} {value!r}")
    if value <= 0:
        raise InvalidTokens(f"{what} must be positive, got {value}")
    if value > MAX_TOKENS_PER_OPERATION:
        raise InvalidTokens(f"{what} must be at most {MAX_TOKENS_PER_OPERATION:,} per operation, got {value:,}")
    return int(value)


def check_credit_fits(credited: int, tokens: int) -> None:
    """Refuse a credit of ``tokens`` that would take the account's lifetime credits
    ``credited`` above ``MAX_BALANCE``.

    Raises:
        BalanceOverflow: ``credited + tokens > MAX_BALANCE`` (422).
    """
    if credited + tokens > MAX_BALANCE:
        raise BalanceOverflow(
            f"a credit of {tokens:,} tokens would take the balance to {credited + tokens:,}, "
            f"above the maximum of {MAX_BALANCE:,}"
        )
