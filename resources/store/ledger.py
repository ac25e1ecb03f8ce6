"""The token ledger on SQL: entries and the per-user account row, changed together.

Semantics are those of ``economics.ledger`` (read its docstring): deterministic entry ids
``entry_id(kind, task)`` make every operation exactly-once; a consume takes the whole
reservation (so it is capped at it); a refund releases an open reservation, or reverses the
charge of a consumed job; a job is refunded at most once. In addition the store refuses what
``economics.ledger`` would only flag: a consume after a refund (``LedgerConflict``) and a
settlement without reservation (``JobNotReserved``). The job id is the ledger's ``task_id``.

Each operation runs in one write transaction (the caller's ``session``):

1. lock the user's ``accounts`` row — ``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the
   transaction already holds the database's write lock (``BEGIN IMMEDIATE``, engine.py) —
   so operations of one user are serialized and those of different users run in parallel
   (PostgreSQL);
2. look the entry id up: present → a replay, return the stored entry unchanged (or
   ``LedgerConflict`` when the replay names another user or amount);
3. check the balance and bounds, insert the entry and update the account row.

The account row thus equals ``economics.ledger.balances`` over the user's entries at every
commit (a property test recomputes it). ``available = credited − spent −
reserved_outstanding`` is never negative: a reservation beyond it raises
``economics.budget.UserQuotaExceeded``, and a CHECK constraint backs that up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from economics import ledger as rules
from economics.budget import UserQuotaExceeded
from resources.store.errors import InvalidInput, JobNotReserved, LedgerConflict, UnknownUser
from resources.store.models import Account, LedgerEntry
from resources.store.sql import as_dict, utcnow
from resources.store.tokens import check_credit_fits, check_tokens

BALANCE_FIELDS = ("credited", "reserved", "reserved_outstanding", "consumed", "refunded", "refunded_consumed", "spent")


def balance_dict(account: Account) -> dict:
    """The account as an ``economics.ledger.BALANCE_SCHEMA`` row (``flagged`` is 0: the
    store never writes what ``audit`` would flag)."""
    row = {"user_id": account.user_id} | {f: getattr(account, f) for f in BALANCE_FIELDS}
    return row | {"available": account.credited - account.spent - account.reserved_outstanding, "flagged": 0}


def open_account(session: Session, user_id: str) -> Account:
    """Create the zero account of a new user (in the user's creating transaction)."""
    account = Account(user_id=user_id, **dict.fromkeys(BALANCE_FIELDS, 0))
    session.add(account)
    return account


def _locked_account(session: Session, user_id: str) -> Account:
    account = session.scalars(select(Account).where(Account.user_id == user_id).with_for_update()).one_or_none()
    if account is None:
        raise UnknownUser(f"no user {user_id!r}")
    return account


def _entry(session: Session, kind: str, task_id: str) -> LedgerEntry | None:
    eid = rules.entry_id(kind, task_id)
    return session.scalars(select(LedgerEntry).where(LedgerEntry.entry_id == eid)).one_or_none()


def _replay(existing: LedgerEntry, user_id: str, tokens: int | None = None) -> dict:
    if existing.user_id != user_id or (tokens is not None and existing.tokens != tokens):
        raise LedgerConflict(
            f"entry {existing.entry_id} ({existing.kind} {existing.task_id}) already exists for "
            f"user {existing.user_id} with {existing.tokens} tokens"
        )
    return as_dict(existing)


def _add(
    session: Session,
    account: Account,
    kind: str,
    task_id: str,
    tokens: int,
    correlation_id: str | None,
    reason: str,
    at: datetime | None,
) -> dict:
    entry = LedgerEntry(
        entry_id=rules.entry_id(kind, task_id),
        user_id=account.user_id,
        correlation_id=correlation_id,
        task_id=task_id,
        kind=kind,
        tokens=tokens,
        reason=reason,
        occurred_at=at or utcnow(),
    )
    session.add(entry)
    account.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError as exc:
        # Two transactions holding *different* accounts' locks raced on one entry id (the
        # same top-up or job id given to two users): the unique key keeps the first.
        raise LedgerConflict(f"entry {entry.entry_id} ({kind} {task_id}) already exists") from exc
    return as_dict(entry)


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidInput(f"{what} must be a non-empty string of at most 200 characters")
    return value


def credit(
    session: Session, user_id: str, tokens: int, topup_id: str, reason: str = "top-up", at: datetime | None = None
) -> dict:
    """Credit ``tokens`` to ``user_id`` once per ``topup_id``; returns the entry.

    Raises:
        InvalidTokens, BalanceOverflow: bounds (``tokens`` module).
        UnknownUser: no such user.
        LedgerConflict: ``topup_id`` was credited to another user or with another amount.
    """
    tokens = check_tokens(tokens)
    topup_id = _check_id(topup_id, "topup_id")
    account = _locked_account(session, user_id)
    if (existing := _entry(session, rules.CREDIT, topup_id)) is not None:
        return _replay(existing, user_id, tokens)
    check_credit_fits(account.credited, tokens)
    account.credited += tokens
    return _add(session, account, rules.CREDIT, topup_id, tokens, topup_id, reason, at)


def reserve(
    session: Session,
    user_id: str,
    job_id: str,
    tokens: int,
    correlation_id: str | None = None,
    reason: str = "dispatched",
    at: datetime | None = None,
) -> dict:
    """Hold ``tokens`` of ``user_id`` for ``job_id``, once; returns the entry.

    Raises:
        InvalidTokens: bounds.
        UnknownUser: no such user.
        UserQuotaExceeded: ``tokens`` > the user's available balance.
        LedgerConflict: ``job_id`` was reserved for another user or amount.
    """
    tokens = check_tokens(tokens)
    job_id = _check_id(job_id, "job_id")
    account = _locked_account(session, user_id)
    if (existing := _entry(session, rules.RESERVE, job_id)) is not None:
        return _replay(existing, user_id, tokens)
    available = account.credited - account.spent - account.reserved_outstanding
    if tokens > available:
        raise UserQuotaExceeded(user_id, tokens, available)
    account.reserved += tokens
    account.reserved_outstanding += tokens
    return _add(session, account, rules.RESERVE, job_id, tokens, correlation_id, reason, at)


def _reservation(session: Session, job_id: str) -> tuple[LedgerEntry, Account]:
    """(reserve entry, locked account of its user)."""
    job_id = _check_id(job_id, "job_id")
    held = _entry(session, rules.RESERVE, job_id)
    if held is None:
        raise JobNotReserved(f"job {job_id!r} has no reservation")
    return held, _locked_account(session, held.user_id)


def consume(session: Session, job_id: str, reason: str = "delivered", at: datetime | None = None) -> dict:
    """Charge ``job_id``'s whole reservation, once; returns the consume entry.

    Raises:
        JobNotReserved: nothing was reserved for ``job_id``.
        LedgerConflict: the job was already refunded (a refunded job is never charged).
    """
    held, account = _reservation(session, job_id)
    if (existing := _entry(session, rules.CONSUME, job_id)) is not None:
        return as_dict(existing)
    if _entry(session, rules.REFUND, job_id) is not None:
        raise LedgerConflict(f"job {job_id!r} was refunded; it cannot be charged")
    account.reserved_outstanding -= held.tokens
    account.consumed += held.tokens
    account.spent += held.tokens
    return _add(session, account, rules.CONSUME, job_id, held.tokens, held.correlation_id, reason, at)


def refund(session: Session, job_id: str, reason: str, at: datetime | None = None) -> dict:
    """Refund ``job_id`` once: release its open reservation, or reverse its charge when it
    was consumed; returns the refund entry (a repeat returns the first one).

    Raises:
        JobNotReserved: nothing was reserved for ``job_id``.
    """
    held, account = _reservation(session, job_id)
    if (existing := _entry(session, rules.REFUND, job_id)) is not None:
        return as_dict(existing)
    charged = _entry(session, rules.CONSUME, job_id)
    if charged is not None:
        tokens = min(charged.tokens, held.tokens)
        account.refunded_consumed += tokens
        account.spent -= tokens
    else:
        tokens = held.tokens
        account.reserved_outstanding -= tokens
    account.refunded += tokens
    return _add(session, account, rules.REFUND, job_id, tokens, held.correlation_id, reason, at)


def balance(session: Session, user_id: str) -> dict:
    """The user's balance (``balance_dict``).

    Raises:
        UnknownUser: no such user.
    """
    account = session.get(Account, user_id)
    if account is None:
        raise UnknownUser(f"no user {user_id!r}")
    return balance_dict(account)


def entries(session: Session, user_id: str, after_seq: int = 0, limit: int | None = None) -> list[dict]:
    """The user's entries in ``seq`` order (those after ``after_seq``, at most ``limit``)."""
    query = (
        select(LedgerEntry).where(LedgerEntry.user_id == user_id, LedgerEntry.seq > after_seq).order_by(LedgerEntry.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return [as_dict(e) for e in session.scalars(query)]
