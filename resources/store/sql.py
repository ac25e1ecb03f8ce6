"""Small SQL helpers shared by the store's modules: UTC timestamps on every backend, random
ids, insert-if-absent, and ORM rows as plain dicts."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

# Autoincrement primary keys: BIGINT on PostgreSQL (a ledger outlives 2**31 rows), but SQLite
# only autoincrements a column declared exactly INTEGER PRIMARY KEY (a 64-bit rowid anyway).
SEQ = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A random identifier ``<prefix>_<hex>`` (``nbytes`` random bytes from ``secrets``):
    never derived from content, so it reveals nothing about it."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no timezone type, so values are stored as
    naive UTC and given back their UTC zone on read. Naive datetimes are refused on write
    (they would be silently shifted by whoever reads them).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_ignore(session: Session, model, values: dict) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` of one row of ``model``; True when it was inserted.

    Any unique constraint of the table counts as the conflict, so two transactions racing on
    the same key both succeed and exactly one row is written (the loser reads the winner's
    row afterwards). On PostgreSQL a skipped insert still consumes a sequence value: gaps in
    ``seq`` are normal.
    """
    name = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[name]
    table = model.__table__
    # Column defaults declared in Python (ids, recorded_at) are applied by Core as well.
    result = session.execute(insert(table).values(**values).on_conflict_do_nothing())
    return result.rowcount == 1


def as_dict(row) -> dict:
    """An ORM instance as ``{column: value}`` (every mapped column, none of the relations)."""
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}
