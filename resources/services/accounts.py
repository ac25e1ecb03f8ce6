"""Users' token accounts: welcome credit, admin top-ups and balances, over the ledger.
Shared by the API and the admin dashboard."""

from __future__ import annotations

import polars as pl

from economics import ledger
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import LEDGER_ENTRIES


def user_entries(lake: Lake, user_id: str) -> pl.DataFrame:
    """Every ledger entry of ``user_id``."""
    return lake.read(LEDGER_ENTRIES, pl.col("user_id") == user_id)


def balance(lake: Lake, user_id: str) -> dict:
    """The user's balance (``economics.ledger.balance_of``: credited, reserved_outstanding,
    consumed, refunded, spent, available…)."""
    return ledger.balance_of(user_entries(lake, user_id), user_id)


def top_up(lake: Lake, user_id: str, tokens: int, topup_id: str, reason: str = "top-up") -> dict:
    """Credit ``tokens`` to ``user_id`` once per ``topup_id``; returns the new balance.

    Raises:
        ValueError: ``tokens`` is not positive.
    """
    lake.append(
        LEDGER_ENTRIES,
        pl.DataFrame([ledger.credit(user_id, tokens, topup_id, utcnow(), reason)], schema=LEDGER_ENTRIES.schema),
    )
    return balance(lake, user_id)


def ensure_welcome_credit(lake: Lake, user_id: str, tokens: int) -> dict:
    """Credit the one-time welcome tokens (idempotent: the top-up id is per user) and return
    the user's balance (``balance``)."""
    if tokens > 0:
        return top_up(lake, user_id, tokens, f"welcome:{user_id}", reason="welcome credit")
    return balance(lake, user_id)
