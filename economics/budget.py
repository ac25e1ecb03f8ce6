"""Per-user token budgets (docs/architecture.md, "Economics"): alert at 80 % used, pause at 100 %, and refuse a
reservation the user cannot cover — so a balance never goes negative.

    used      = spent + reserved_outstanding          (tokens charged or held; ledger.balances)
    budget    = the user's credits, unless a tighter spending cap is given
    alert     = used' ≥ 0.8 × budget                  used' = used + requested if allowed, else used
    paused    = used ≥ budget                         (already at 100 %: no new jobs)
    allowed   = not paused and requested ≤ min(available, budget − used)

With the default budget (credits), ``budget − used`` is exactly ``available``, a top-up
raises the budget and so lifts the pause. A reservation that uses the last token is
allowed; the next one is refused (the user is then at 100 %).

``reserve_or_raise`` reads entries and the caller then appends the reservation: not atomic,
so on its own two concurrent jobs could both pass the check on the same tokens. The pipeline
reserves through the transactional store instead (``resources/store/ledger.py``), which makes
the same check and the insert in one transaction under a lock on the user's account row;
``check_budget`` still tells M5 when a user passed the 80 % alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from economics import ledger

ALERT_AT = 0.8
PAUSE_AT = 1.0


@dataclass(frozen=True)
class BudgetDecision:
    """Outcome of ``check_budget`` (tokens)."""

    allowed: bool
    alert: bool
    paused: bool
    reason: str
    used: int = 0
    budget: int = 0
    available: int = 0
    requested: int = 0

    @property
    def used_fraction(self) -> float:
        """used / budget now (before the request); inf when the budget is 0."""
        return self.used / self.budget if self.budget else float("inf")


class UserQuotaExceeded(Exception):
    """A user asked for more tokens than their balance or budget allows.

    Attributes: user_id, requested, available (tokens), decision (the BudgetDecision).
    """

    def __init__(self, user_id: str, requested: int, available: int, decision: BudgetDecision | None = None):
        self.user_id, self.requested, self.available = user_id, requested, available
        self.decision = decision
        why = f": {decision.reason}" if decision else ""
        super().__init__(f"user {user_id} needs {requested} tokens but has {available} available{why}")


def check_budget(
    balance_row: Mapping,
    requested_tokens: int,
    budget: int | None = None,
) -> BudgetDecision:
    """Decide whether ``requested_tokens`` may be reserved for a user (formulas: module doc).

    Args:
        balance_row: the user's ``ledger.balances`` row (``credited``, ``spent``,
            ``reserved_outstanding``, ``available``), e.g. from ``ledger.balance_of``.
        requested_tokens: tokens the new job would reserve (≥ 0).
        budget: spending cap in tokens over the entries the balance was computed from;
            None → the user's credits. The effective budget is the smaller of the two, so
            a cap can never let a user spend tokens they did not buy.

    Raises:
        ValueError: ``requested_tokens`` or ``budget`` is negative.
    """
    if requested_tokens < 0:
        raise ValueError(f"requested_tokens must be ≥ 0, got {requested_tokens}")
    if budget is not None and budget < 0:
        raise ValueError(f"budget must be ≥ 0, got {budget}")
    credited, available = int(balance_row["credited"]), int(balance_row["available"])
    used = int(balance_row["spent"]) + int(balance_row["reserved_outstanding"])
    cap = credited if budget is None else min(budget, credited)
    headroom = min(available, cap - used)
    paused = used >= PAUSE_AT * cap
    allowed = not paused and requested_tokens <= headroom
    alert = (used + (requested_tokens if allowed else 0)) >= ALERT_AT * cap
    if paused:
        reason = f"paused: {used} of {cap} tokens used; top up to resume"
    elif not allowed:
        reason = f"{requested_tokens} tokens requested, {max(headroom, 0)} left of a {cap}-token budget"
    elif alert:
        reason = f"alert: {used + requested_tokens} of {cap} tokens used after this job"
    else:
        reason = "ok"
    return BudgetDecision(allowed, alert, paused, reason, used, cap, available, requested_tokens)


@dataclass(frozen=True)
class Reservation:
    """What ``reserve_or_raise`` grants: the reserve entries to append (one per charged
    task, including ones already in the ledger — appending them again is a no-op) and the
    budget decision per user (``alert`` → tell the user they passed 80 %)."""

    entries: list[dict]
    decisions: dict[str, BudgetDecision] = field(default_factory=dict)


def reserve_or_raise(
    entries: pl.DataFrame,
    tasks: list[dict],
    at: datetime,
    budgets: Mapping[str, int] | None = None,
) -> Reservation:
    """Reserve entries for ``tasks`` if every user involved can cover them.

    Retry-safe: a task whose reserve entry is already in ``entries`` asks for nothing new
    (a re-run of M5 is never refused for tokens it already holds), and a task listed twice
    is reserved once.

    Args:
        entries: the ledger so far (``ledger_entries`` rows).
        tasks: as for ``ledger.reserve`` (``user_id``, ``video_id``, ``task_id``,
            ``tokens_reserved``).
        at: entry timestamp (UTC).
        budgets: optional spending cap per user id (see ``check_budget``).

    Raises:
        UserQuotaExceeded: for the first user (by id) whose request is not allowed;
            nothing is reserved for anyone then.
    """
    new = list({e["entry_id"]: e for e in ledger.reserve(tasks, at)}.values())
    held = set(entries["entry_id"].to_list()) if "entry_id" in entries.columns else set()
    requested: dict[str, int] = {}
    for e in new:
        if e["entry_id"] not in held:
            requested[e["user_id"]] = requested.get(e["user_id"], 0) + e["tokens"]
    decisions = {}
    for user_id in sorted(requested):
        decision = check_budget(ledger.balance_of(entries, user_id), requested[user_id], (budgets or {}).get(user_id))
        if not decision.allowed:
            raise UserQuotaExceeded(user_id, requested[user_id], decision.available, decision)
        decisions[user_id] = decision
    return Reservation(new, decisions)
