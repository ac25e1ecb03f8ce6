"""Effect runs in the store (``effect_runs``): a user's run of a published gallery effect on
their own video, its reservation, its state and its result-cache key.

A run is one job (``economics.ledger.job_id(run_id)``): ``create_run`` inserts the run and
reserves its price in the same transaction (``ledger.reserve``, under the user's account
lock), so a run exists if and only if it is paid for; the GPU admission of the workspace is
decided there too, with the workspace row locked (``admission.gpu_load``). The run's Dagster
run moves it on (``start`` → ``update`` → ``finish``); settling its tokens (consume or refund)
is done with the run's end in one transaction (``settle``: consume on delivery, refund
otherwise), a compare-and-set on the run's status, so it happens once whoever ends the run.

States: ``models.RUN_STATUSES``; a final run (delivered, refunded, failed) never changes
again, so a re-executed Dagster run finds it final and does nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from economics.ledger import job_id
from economics.pricing import RunPrice, run_price
from resources.store import admission, ledger, parameters
from resources.store.errors import Conflict, InvalidInput, NotFound, UnknownUser
from resources.store.models import RUN_STATUSES, EffectRun, User
from resources.store.sql import as_dict, new_id, utcnow

QUEUED, RUNNING, DELIVERED, REFUNDED, FAILED = RUN_STATUSES
FINAL = (DELIVERED, REFUNDED, FAILED)
# State columns a running run may set (``update``, ``finish``); the request columns never change.
STATE_FIELDS = frozenset(
    {
        "progress",
        "provider_id",
        "provider_version",
        "routing_decision",
        "propensity",
        "attempts",
        "output_key",
        "cache_key",
        "cached_from",
        "error",
    }
)


# Effect runs' ids are ``run_<hex>`` (their correlation id and their ledger job's): what tells a
# run's ledger entries from a video's.
RUN_ID_PREFIX = "run"


def is_run_id(correlation_id: str) -> bool:
    """True for an effect run's id (``run_<hex>``), False for a video's or anything else."""
    return correlation_id.startswith(f"{RUN_ID_PREFIX}_")


class RunNotFound(NotFound):
    """No such run, or not the caller's (one answer: ids leak nothing)."""

    code = "run_not_found"


def create_run(
    session: Session,
    user_id: str,
    *,
    slug: str,
    revision_id: str,
    content_hash: str,
    effect_type: str,
    params: dict,
    video_id: str,
    input_sha256: str,
    input_key: str,
    revision_price_tokens: int,
    at: datetime | None = None,
    admit: Callable[[dict], None] | None = None,
) -> dict:
    """Queue a run of ``user_id`` and reserve its price (its ledger job:
    ``economics.ledger.job_id(run_id)``, correlation id = the run id) in one transaction.

    The price is the effective price in force in this transaction
    (``economics.pricing.run_price``: the effect type's ``effect.<type>.price_tokens`` runtime
    parameter when set, else the revision's price), so a price change commits either before
    the run (it pays the new price) or after it (the old); the run records it (``tokens``),
    the revision's price and the change that set it (``price_change_id``).

    Args:
        params: the run's parameters (validated by the caller), stored as JSON.
        video_id, input_sha256, input_key: the user's upload the run renders (its bytes'
            sha256 and media key).
        revision_price_tokens: the pinned revision's price; an effective price of 0 reserves
            nothing (a free effect).
        admit: GPU admission, called with the workspace's ``admission.gpu_load`` (workspace
            row locked) before the insert; it raises to refuse (nothing is written).

    Returns:
        The run row (``status`` ``queued``).

    Raises:
        UnknownUser; InvalidInput (a negative price, or a price parameter that is not a whole
        number of tokens); economics.budget.UserQuotaExceeded (the balance cannot cover the
        price: nothing is written); whatever ``admit`` raises.
    """
    if isinstance(revision_price_tokens, bool) or not isinstance(revision_price_tokens, int):
        raise InvalidInput("revision_price_tokens must be a non-negative integer")
    price = effective_price(session, effect_type, revision_price_tokens)
    tokens = price.tokens
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(f"no user {user_id!r}")
    if admit is not None:
        admit(admission.gpu_load(session, user.workspace_id, lock=True))
    now = at or utcnow()
    run_id = new_id(RUN_ID_PREFIX, 12)
    run = EffectRun(
        run_id=run_id,
        user_id=user_id,
        workspace_id=user.workspace_id,
        slug=slug,
        revision_id=revision_id,
        content_hash=content_hash,
        effect_type=effect_type,
        params=json.dumps(params, sort_keys=True),
        video_id=video_id,
        input_sha256=input_sha256,
        input_key=input_key,
        tokens=tokens,
        revision_price_tokens=price.revision_price_tokens,
        price_change_id=price.change_id,
        status=QUEUED,
        progress=0.0,
        attempts=0,
        created_at=now,
    )
    session.add(run)
    session.flush()
    if tokens > 0:
        reason = f"effect run {slug}"
        ledger.reserve(session, user_id, job_id(run_id), tokens, correlation_id=run_id, reason=reason, at=now)
    return as_dict(run)


def effective_price(session: Session, effect_type: str, revision_price_tokens: int) -> RunPrice:
    """``economics.pricing.run_price`` of a run of ``effect_type`` pinned to a revision priced
    ``revision_price_tokens``, with the price parameter in force in ``session``.

    Raises:
        InvalidInput: a negative price, or a parameter that is not a whole number of tokens.
    """
    param = parameters.get(session, parameters.EFFECT, effect_type, parameters.PRICE)
    try:
        if param is None:
            return run_price(revision_price_tokens)
        return run_price(revision_price_tokens, param["value"], param["change_id"])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _locked(session: Session, run_id: str) -> EffectRun:
    run = session.scalars(select(EffectRun).where(EffectRun.run_id == run_id).with_for_update()).one_or_none()
    if run is None:
        raise RunNotFound(f"no run {run_id!r}")
    return run


def get_run(session: Session, run_id: str, user_id: str | None = None) -> dict:
    """The run ``run_id``; with ``user_id``, only if it is that user's.

    Raises:
        RunNotFound: no such run, or not the user's.
    """
    query = select(EffectRun).where(EffectRun.run_id == run_id)
    if user_id is not None:
        query = query.where(EffectRun.user_id == user_id)
    run = session.scalars(query).one_or_none()
    if run is None:
        raise RunNotFound(f"no run {run_id!r}")
    return as_dict(run)


def list_runs(session: Session, user_id: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
    """The user's runs in ``seq`` order after the cursor ``after_seq`` (cursor paging)."""
    query = (
        select(EffectRun)
        .where(EffectRun.user_id == user_id, EffectRun.seq > after_seq)
        .order_by(EffectRun.seq)
        .limit(limit)
    )
    return [as_dict(r) for r in session.scalars(query)]


def start(session: Session, run_id: str, at: datetime | None = None) -> dict:
    """Move a queued run to ``running`` (stamping ``started_at``); a running or final run is
    returned as it is (a re-executed Dagster run resumes or finds it done).

    Raises:
        RunNotFound.
    """
    run = _locked(session, run_id)
    if run.status == QUEUED:
        run.status, run.started_at = RUNNING, at or utcnow()
        session.flush()
    return as_dict(run)


def _set(run: EffectRun, fields: dict) -> None:
    unknown = set(fields) - STATE_FIELDS
    if unknown:
        raise InvalidInput(f"not state columns of a run: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(run, name, value)


def update(session: Session, run_id: str, **fields) -> dict:
    """Set state columns (``STATE_FIELDS``) of a running run.

    Raises:
        RunNotFound; InvalidInput (a request column); Conflict (the run is not running).
    """
    run = _locked(session, run_id)
    if run.status != RUNNING:
        raise Conflict(f"run {run_id} is {run.status}, not running")
    _set(run, fields)
    session.flush()
    return as_dict(run)


def finish(session: Session, run_id: str, status: str, at: datetime | None = None, **fields) -> dict:
    """End a run: ``status`` one of ``FINAL``, ``progress`` 1, ``finished_at`` stamped, and
    the given state columns set. Finishing a run already final returns it unchanged (the
    first outcome stands).

    Raises:
        RunNotFound; InvalidInput (a status that is not final, or a request column).
    """
    if status not in FINAL:
        raise InvalidInput(f"a run ends {FINAL}, not {status!r}")
    run = _locked(session, run_id)
    if run.status in FINAL:
        return as_dict(run)
    _set(run, fields)
    run.status, run.progress, run.finished_at = status, 1.0, at or utcnow()
    session.flush()
    return as_dict(run)


def settle(
    session: Session, run_id: str, status: str, reason: str, at: datetime | None = None, **fields
) -> dict | None:
    """End a run that is not final yet, once, with its ledger settlement in the same
    transaction: ``delivered`` consumes the reservation, ``refunded`` / ``failed`` refund it
    (a free run, ``tokens`` 0, has none). A compare-and-set on the run's status under its row
    lock: of two settlers racing (a run's own collect, the recovery sensor giving it up) the
    first wins and the second changes nothing — so a run is charged or refunded exactly once,
    and never refunded after it was delivered.

    Args:
        status: one of ``FINAL``.
        reason: the ledger entry's reason.
        fields: state columns to set (``STATE_FIELDS``).

    Returns:
        The settled run, or None when it was already final (nothing written).

    Raises:
        RunNotFound; InvalidInput (a status that is not final, or a request column);
        resources.store.errors.LedgerConflict (a consume of a job refunded outside the run).
    """
    if status not in FINAL:
        raise InvalidInput(f"a run ends {FINAL}, not {status!r}")
    run = _locked(session, run_id)
    if run.status in FINAL:
        return None
    if run.tokens > 0:
        if status == DELIVERED:
            ledger.consume(session, job_id(run_id), reason=reason, at=at)
        else:
            ledger.refund(session, job_id(run_id), reason, at=at)
    _set(run, fields)
    run.status, run.progress, run.finished_at = status, 1.0, at or utcnow()
    session.flush()
    return as_dict(run)


def unfinished(session: Session, before: datetime) -> list[dict]:
    """Runs still ``queued`` or ``running`` that were created before ``before``, oldest first
    (what the orphan-recovery sensor watches; index on ``status, created_at``)."""
    query = (
        select(EffectRun)
        .where(EffectRun.status.in_((QUEUED, RUNNING)), EffectRun.created_at < before)
        .order_by(EffectRun.created_at)
    )
    return [as_dict(r) for r in session.scalars(query)]


def cached(session: Session, workspace_id: str, cache_key: str) -> dict | None:
    """The workspace's first delivered run with ``cache_key`` (its output is reusable), or
    None. Scoped to a workspace: media never crosses tenants (``raw_key`` is per workspace too).
    """
    query = (
        select(EffectRun)
        .where(
            EffectRun.workspace_id == workspace_id,
            EffectRun.cache_key == cache_key,
            EffectRun.status == DELIVERED,
        )
        .order_by(EffectRun.seq)
        .limit(1)
    )
    run = session.scalars(query).one_or_none()
    return as_dict(run) if run is not None else None
