"""Reading the store's new rows for landing in the lake (bronze), in batches.

Every mirrored table (``models.MIRRORED``: uploads, upload_rejections, ledger_entries,
notifications, decisions) has ``seq``, an autoincrement integer assigned at insert. A lander
keeps a cursor per table and asks for the rows with ``seq > cursor``; it lands them (one
Delta commit per batch, insert-if-absent on the bronze key) and stores the returned
``last_seq`` as its new cursor.

Out-of-order commits. ``seq`` is assigned when a row is inserted, not when its transaction
commits. On PostgreSQL two transactions can take seq 10 and 11 and commit 11 first; a reader
between the two commits sees 11 but not 10, and a cursor moved to 11 would skip 10 forever.
(On SQLite this cannot happen: ``BEGIN IMMEDIATE`` admits one writer at a time, so seq order
is commit order.) The store prevents the skip with a grace interval: a batch stops before
the first row recorded less than ``grace`` ago. A transaction that took a smaller seq started
its insert before that row's, and every store transaction is short (milliseconds; on
PostgreSQL the engine's lock, statement and idle-in-transaction timeouts cut off a stalled
one after seconds), so ``grace`` longer than the longest transaction — plus the clock skew
between the hosts that write ``recorded_at`` (the app's UTC clock) — guarantees that every
row below the returned cursor has committed or rolled back. Rows are landed up to ``grace``
late, which the lake's readers do not notice. Gaps in ``seq`` (rolled back or skipped
inserts) are normal and never waited for.

Readers that can act on a row twice without harm (the upload and run sensors: their run
keys and partitions make a second request a no-op) need not wait the grace out: ``recent``
returns every committed row past the cursor at once, and a cursor that only moves to the
settled prefix (``settled_through``), so a row that commits late under a smaller seq is still
read by the next call.

Rows are returned as they are now: mutable operational columns (an upload's ``status``, a
notification's ``delivered_at``) are landed with the value they had when read, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from resources.store.errors import InvalidInput
from resources.store.models import MIRRORED
from resources.store.sql import as_dict, utcnow

PG_GRACE = timedelta(seconds=10)
SQLITE_GRACE = timedelta(0)
MAX_BATCH = 10_000


def default_grace(dialect_name: str) -> timedelta:
    """``SQLITE_GRACE`` (writers are serial) or ``PG_GRACE``."""
    return SQLITE_GRACE if dialect_name == "sqlite" else PG_GRACE


def changes_since(
    session: Session,
    table: str,
    after_seq: int,
    limit: int = 1000,
    *,
    grace: timedelta | None = None,
    now: datetime | None = None,
) -> tuple[list[dict], int]:
    """(rows with ``seq > after_seq`` in seq order, new cursor) of a mirrored ``table``.

    The batch holds at most ``limit`` rows and stops before the first row whose
    ``recorded_at`` is later than ``now − grace`` (module docstring); the cursor is the last
    returned row's seq, or ``after_seq`` when nothing is returned.

    Args:
        grace: default ``default_grace`` of the session's backend.
        now: the reader's clock (UTC), for tests; default ``utcnow()``.
    Raises:
        InvalidInput: unknown table, negative cursor, or limit outside 1..MAX_BATCH.
    """
    model = MIRRORED.get(table)
    if model is None:
        raise InvalidInput(f"{table!r} is not a mirrored table ({sorted(MIRRORED)})")
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
        raise InvalidInput("after_seq must be a non-negative integer")
    if not 1 <= limit <= MAX_BATCH:
        raise InvalidInput(f"limit must be in 1..{MAX_BATCH}")
    if grace is None:
        grace = default_grace(session.get_bind().dialect.name)
    cutoff = (now or utcnow()) - grace
    query = select(model).where(model.seq > after_seq).order_by(model.seq).limit(limit)
    rows = [as_dict(row) for row in session.scalars(query)]
    through = settled_through(rows, after_seq, cutoff)
    return [r for r in rows if r["seq"] <= through], through


def settled_through(rows: list[dict], after_seq: int, cutoff: datetime) -> int:
    """The cursor ``changes_since`` would return for ``rows`` (seq order, past ``after_seq``)
    with the grace ``cutoff`` (``now − grace``): the seq of the last row before the first one
    recorded after ``cutoff``, or ``after_seq`` when the first is already that recent."""
    through = after_seq
    for row in rows:
        if row["recorded_at"] > cutoff:
            break
        through = row["seq"]
    return through


def recent(
    session: Session, table: str, after_seq: int, limit: int = 1000, *, now: datetime | None = None
) -> tuple[list[dict], int]:
    """(every committed row of ``table`` with ``seq > after_seq``, up to ``limit``, in seq
    order; the settled cursor): the rows are read without the grace, the cursor keeps it
    (``settled_through`` with the backend's ``default_grace``), so the rows past it are read
    again by the next call and a late commit under a smaller seq is never skipped.

    Raises:
        InvalidInput: as ``changes_since``.
    """
    now = now or utcnow()
    rows, _ = changes_since(session, table, after_seq, limit, grace=timedelta(0), now=now)
    grace = default_grace(session.get_bind().dialect.name)
    return rows, settled_through(rows, after_seq, now - grace)
