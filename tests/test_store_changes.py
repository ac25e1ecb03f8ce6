"""Landing cursor of the store (changes_since): rows after the cursor in seq order, in
batches, never skipping a row whose transaction commits after a later seq's (PostgreSQL:
grace interval; SQLite: one writer at a time)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from resources.store import outbox
from resources.store.errors import InvalidInput
from resources.store.models import MIRRORED
from resources.store.sql import utcnow

pytest_plugins = ["tests.store_fixtures"]
LATER = timedelta(hours=1)  # a reader clock far enough ahead that every row is past the grace


def _cursor(store, table: str) -> int:
    model = MIRRORED[table]
    with store.read() as s:
        return s.scalar(select(func.coalesce(func.max(model.seq), 0)))


def test_every_mirrored_table_is_read_in_seq_order_in_batches(store, new_user):
    user = new_user(tokens=100)
    uid = user["user_id"]
    cursors = {t: _cursor(store, t) for t in MIRRORED}
    for i in range(3):
        store.reserve(uid, f"{uid}-job-{i}", 1)
        store.notify(uid, "k", f"n{i}")
        store.create_upload(
            uid, filename=f"{i}.mp4", content_type="video/mp4", sha256=f"{i:064x}", bytes_=1, media_key=f"k{i}"
        )
        store.record_rejection(
            user_id=uid,
            workspace_id=user["workspace_id"],
            filename="x",
            content_type="t",
            bytes_=1,
            http_status=415,
            code="c",
            reason="r",
        )
        store.record_decision("approval", f"{uid}-{i}", "approve", uid)

    now = utcnow() + LATER
    for table, expected in {
        "ledger_entries": 3,
        "notifications": 3,
        "uploads": 3,
        "upload_rejections": 3,
        "decisions": 3,
    }.items():
        rows, last = store.changes_since(table, cursors[table], limit=2, now=now)
        assert len(rows) == 2 and last == rows[-1]["seq"]
        more, last2 = store.changes_since(table, last, limit=100, now=now)
        everything = rows + more
        assert len(everything) == expected, table
        seqs = [r["seq"] for r in everything]
        assert seqs == sorted(seqs) and seqs[0] > cursors[table] and last2 == seqs[-1]
        assert store.changes_since(table, last2, now=now) == ([], last2)  # nothing new: cursor stays
    ledger_rows, _ = store.changes_since("ledger_entries", cursors["ledger_entries"], now=now)
    assert {"entry_id", "kind", "tokens", "occurred_at", "recorded_at", "seq"} <= set(ledger_rows[0])


def test_rows_younger_than_the_grace_wait_and_stop_the_batch(store, new_user):
    uid = new_user()["user_id"]
    cursor = _cursor(store, "notifications")
    a = store.notify(uid, "k", "a")
    b = store.notify(uid, "k", "b")
    # The reader's clock between the two rows: only a is old enough; the batch stops at b.
    rows, last = store.changes_since(
        "notifications", cursor, grace=timedelta(0), now=a["recorded_at"] + (b["recorded_at"] - a["recorded_at"]) / 2
    )
    assert [r["notification_id"] for r in rows] == [a["notification_id"]] and last == a["seq"]
    rows, _ = store.changes_since(
        "notifications", cursor, grace=timedelta(seconds=30), now=b["recorded_at"] + timedelta(seconds=29)
    )
    assert rows == []
    rows, _ = store.changes_since(
        "notifications", cursor, grace=timedelta(seconds=30), now=b["recorded_at"] + timedelta(seconds=31)
    )
    assert [r["title"] for r in rows] == ["a", "b"]


def test_arguments_are_checked(store):
    for args in (("users", 0), ("uploads", -1), ("uploads", True), ("uploads", "3")):
        with pytest.raises(InvalidInput):
            store.changes_since(*args)
    for limit in (0, 10_001):
        with pytest.raises(InvalidInput):
            store.changes_since("uploads", 0, limit)


def test_a_row_committed_after_a_later_seq_is_never_skipped(store, new_user):
    """Backend by backend: PostgreSQL writers overlap, so the grace interval protects the
    cursor; SQLite admits one writer at a time, so seq order is commit order."""
    if store.dialect == "sqlite":
        _sqlite_writers_commit_in_seq_order(store, new_user()["user_id"])
    else:
        _postgresql_out_of_order_commit_is_not_skipped(store, new_user()["user_id"])


def _postgresql_out_of_order_commit_is_not_skipped(store, uid):
    # seq n taken, seq n+1 committed first: a reader without grace would move past n.
    cursor = _cursor(store, "notifications")
    slow = store._writer()  # an open transaction holding the earlier seq
    slow.begin()
    held = outbox.notify(slow, uid, "k", "earlier seq, committed later")
    later = store.notify(uid, "k", "later seq, committed first")
    assert held["seq"] < later["seq"]

    # Without a grace interval the cursor jumps over the uncommitted row: the hazard.
    rows, unsafe_cursor = store.changes_since("notifications", cursor, grace=timedelta(0))
    assert [r["seq"] for r in rows] == [later["seq"]] and unsafe_cursor == later["seq"]
    # With the default grace nothing this young is landed yet: the cursor stays.
    assert store.changes_since("notifications", cursor) == ([], cursor)

    slow.commit()
    slow.close()
    rows, last = store.changes_since("notifications", cursor, now=utcnow() + LATER)
    assert [r["seq"] for r in rows] == [held["seq"], later["seq"]] and last == later["seq"]


def _sqlite_writers_commit_in_seq_order(store, uid):
    cursor = _cursor(store, "notifications")
    committed: list[int] = []
    slow = store._writer()
    slow.begin()
    held = outbox.notify(slow, uid, "k", "first writer")

    def second_writer():
        committed.append(store.notify(uid, "k", "second writer")["seq"])

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.3)
    assert committed == []  # BEGIN IMMEDIATE: the second writer waits for the first
    assert store.changes_since("notifications", cursor) == ([], cursor)
    slow.commit()
    slow.close()
    thread.join()
    assert committed[0] > held["seq"]
    rows, _ = store.changes_since("notifications", cursor)
    assert [r["seq"] for r in rows] == [held["seq"], committed[0]]
