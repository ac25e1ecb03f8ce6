"""Idempotency keys (the ``Idempotency-Key`` request header) for POSTs that create things.

Scope is (user, route): two users, or two routes, may use the same key independently. A
request first ``claim``s its key with the hash of its body:

* new key → the claim is taken (returns None); the caller does the work, then ``complete``s
  with the response (status + body), or ``release``s the claim when it failed in a way
  worth retrying (e.g. a 5xx), so the same key can be sent again;
* same key, same body, completed → the stored response (``StoredResponse``): replay it;
* same key, same body, still running → ``IdempotencyInProgress`` (409) — unless the claim is
  older than ``STALE_CLAIM`` (its request died without completing or releasing): then the
  new request takes the claim over;
* same key, different body → ``IdempotencyMismatch`` (422).

The claim is an insert-if-absent on the primary key, so two concurrent first requests cannot
both win. Keys older than the retention are removed by ``purge``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from resources.store.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidInput
from resources.store.models import IdempotencyKey
from resources.store.sql import insert_ignore, utcnow

MAX_KEY_LENGTH = 255
# Far longer than any request may run (the API's own timeouts are shorter).
STALE_CLAIM = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredResponse:
    """The first request's response: HTTP ``status`` and ``body`` (text, as sent)."""

    status: int
    body: str


def request_hash(body: bytes | str | dict | list) -> str:
    """sha256 hex of a request body; JSON values are hashed in canonical form (sorted keys,
    no whitespace), so the same fields in another order count as the same body."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return hashlib.sha256(body).hexdigest()


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise InvalidInput(f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} visible ASCII characters")


def _where(user_id: str, route: str, key: str):
    return (IdempotencyKey.user_id == user_id, IdempotencyKey.route == route, IdempotencyKey.key == key)


def claim(
    session: Session, user_id: str, route: str, key: str, body_hash: str, stale_after: timedelta = STALE_CLAIM
) -> StoredResponse | None:
    """Claim ``key`` for this request (None), or return the response to replay (module
    docstring).

    Raises:
        InvalidInput: malformed key; IdempotencyMismatch; IdempotencyInProgress.
    """
    _check_key(key)
    if insert_ignore(
        session,
        IdempotencyKey,
        {"user_id": user_id, "route": route, "key": key, "request_hash": body_hash, "created_at": utcnow()},
    ):
        return None
    row = session.scalars(select(IdempotencyKey).where(*_where(user_id, route, key))).one()
    if row.request_hash != body_hash:
        raise IdempotencyMismatch("this Idempotency-Key was used with a different request body")
    if row.response_status is None:
        if row.created_at < utcnow() - stale_after and _take_over(session, row):
            return None
        raise IdempotencyInProgress("the first request with this Idempotency-Key is still running")
    return StoredResponse(row.response_status, row.response_body or "")


def _take_over(session: Session, row: IdempotencyKey) -> bool:
    # Compare-and-set on created_at: of two requests taking over together, one wins.
    taken = session.execute(
        update(IdempotencyKey)
        .where(
            *_where(row.user_id, row.route, row.key),
            IdempotencyKey.created_at == row.created_at,
            IdempotencyKey.response_status.is_(None),
        )
        .values(created_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def complete(session: Session, user_id: str, route: str, key: str, status: int, body: str) -> None:
    """Store the response of the claimed request (replayed to every repeat)."""
    row = session.scalars(select(IdempotencyKey).where(*_where(user_id, route, key))).one()
    row.response_status, row.response_body, row.completed_at = int(status), body, utcnow()


def release(session: Session, user_id: str, route: str, key: str) -> None:
    """Drop an unfinished claim (the request failed; the key may be sent again)."""
    session.execute(
        delete(IdempotencyKey).where(*_where(user_id, route, key), IdempotencyKey.response_status.is_(None))
    )


def purge(session: Session, older_than: datetime) -> int:
    """Delete keys created before ``older_than``; returns how many."""
    return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < older_than)).rowcount
