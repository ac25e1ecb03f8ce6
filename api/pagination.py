"""Cursor pagination for every list endpoint: ``?limit=&cursor=`` → ``{items, next_cursor}``.

A cursor is opaque to clients: URL-safe base64 of a small JSON object holding the position
of the last item served (``{"seq": 42}`` for store lists, ``{"k": [...]}`` — the sort key —
for lake lists). The next page is everything *after* that position in the list's order
(keyset pagination): rows inserted or removed meanwhile never shift a page, unlike an offset.
``next_cursor`` is null on the last page. A cursor is not a secret and grants nothing: every
list still filters by the caller's rights.

- Store lists (ordered by ``seq``): ``seq_page(fetch, cursor, limit)`` with ``fetch(after_seq,
  n)`` a store read such as ``lambda after, n: store.notifications(user_id, after, n)``.
- Lake lists (a Polars frame): ``frame_page(df, order, cursor, limit)`` with ``order`` the
  sort key columns and their direction, the last of them unique.

Routes take ``limit: LimitQuery = DEFAULT_LIMIT`` and ``cursor: CursorQuery = None`` and return
``Page[Item]``. A malformed cursor is a 400 problem ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import polars as pl
from fastapi import Query
from pydantic import BaseModel

from api.problems import ProblemError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200  # a page stays a few hundred kB of JSON at most

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (1..{MAX_LIMIT})")]
CursorQuery = Annotated[
    str | None, Query(max_length=1024, description="`next_cursor` of the previous page; omit for the first")
]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` in the list's order and ``next_cursor`` (null on the
    last page)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(position: dict[str, Any]) -> str:
    """The opaque cursor of ``position`` (JSON-able; datetimes as ISO 8601)."""
    raw = json.dumps(position, separators=(",", ":"), default=_iso).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-able in a cursor: {type(value).__name__}")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The position a cursor holds.

    Raises:
        ProblemError: 400 ``invalid_cursor`` for anything ``encode_cursor`` did not make.
    """
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        position = None
    if not isinstance(position, dict):
        raise ProblemError(400, "invalid_cursor", "the cursor is not one this list gave out")
    return position


def seq_page(fetch: Callable[[int, int], list[dict]], cursor: str | None, limit: int) -> tuple[list[dict], str | None]:
    """(rows, next cursor) of a store list in ``seq`` order.

    Args:
        fetch: ``(after_seq, n)`` → up to ``n`` rows with ``seq > after_seq`` in seq order.
    """
    after = 0
    if cursor is not None:
        seq = decode_cursor(cursor).get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ProblemError(400, "invalid_cursor", "the cursor is not one this list gave out")
        after = seq
    rows = fetch(after, limit + 1)  # one more tells whether a next page exists
    page = rows[:limit]
    return page, encode_cursor({"seq": page[-1]["seq"]}) if len(rows) > limit else None


def _after(order: Sequence[tuple[str, bool]], key: list[Any]) -> pl.Expr:
    """Rows strictly after ``key`` in the lexicographic order ``order`` ((column, descending)…)."""
    expr = pl.lit(False)
    equal = pl.lit(True)
    for (column, descending), value in zip(order, key, strict=True):
        beyond = pl.col(column) < value if descending else pl.col(column) > value
        expr = expr | (equal & beyond)
        equal = equal & (pl.col(column) == value)
    return expr


def _key_value(dtype: pl.DataType, value: Any) -> Any:
    if isinstance(dtype, pl.Datetime) and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def frame_page(
    df: pl.DataFrame, order: Sequence[tuple[str, bool]], cursor: str | None, limit: int
) -> tuple[list[dict], str | None]:
    """(rows, next cursor) of a lake list sorted by ``order``.

    Args:
        df: the whole list (any order: it is sorted here).
        order: (column, descending) pairs; the columns must hold no nulls and together be
            unique (end with an id).
    """
    columns = [c for c, _ in order]
    df = df.sort(columns, descending=[d for _, d in order])
    if cursor is not None:
        key = decode_cursor(cursor).get("k")
        if not isinstance(key, list) or len(key) != len(order):
            raise ProblemError(400, "invalid_cursor", "the cursor is not one this list gave out")
        try:
            key = [_key_value(df.schema[c], v) for c, v in zip(columns, key, strict=True)]
            df = df.filter(_after(order, key))
        except (ValueError, TypeError, pl.exceptions.PolarsError):
            raise ProblemError(400, "invalid_cursor", "the cursor is not one this list gave out") from None
    rows = df.head(limit + 1).to_dicts()
    page = rows[:limit]
    next_cursor = encode_cursor({"k": [page[-1][c] for c in columns]}) if len(rows) > limit else None
    return page, next_cursor
