"""Telling the user, one way: ``notify_user`` writes the notification once and returns the
``UserNotified`` event; ``refund_and_notify`` gives each consumed task back once and says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from economics import ledger
from economics.ids import event_id
from resources.lake import Lake
from resources.notifications import notify_user
from resources.refunds import refund_and_notify
from resources.schemas import LEDGER_ENTRIES, NOTIFICATIONS, PIPELINE_EVENTS

AT = datetime(2026, 3, 2, tzinfo=UTC)


def test_notify_user_writes_once_and_returns_the_event(tmp_path):
    lake = Lake(uri=str(tmp_path))
    first = notify_user(lake, "M5", "u1", "v1", "no_result", "Title", "Body", url="http://x")
    again = notify_user(lake, "M5", "u1", "v1", "no_result", "Title", "Body", url="http://x")
    notes = lake.read(NOTIFICATIONS)
    assert notes.height == 1 and notes.row(0, named=True)["url"] == "http://x"
    assert first["event_type"] == "UserNotified" and first["stage"] == "M5" and first["correlation_id"] == "v1"
    assert first["event_id"] == again["event_id"] == event_id("M5", "UserNotified", "v1", "no_result")
    assert first["payload"] == f'{{"kind": "no_result", "notification_id": "{notes["notification_id"][0]}"}}'
    other = notify_user(lake, "M10", "u1", "v1", "effect_rejected", "T", "B", identity="a1", event_identity="rejected")
    assert other["event_id"] == event_id("M10", "UserNotified", "v1", "rejected")
    assert lake.read(NOTIFICATIONS).height == 2


def test_refund_and_notify_refunds_consumed_tasks_once(tmp_path):
    lake = Lake(uri=str(tmp_path))
    tasks = [
        {"task_id": t, "user_id": "u1", "video_id": "v1", "tokens_reserved": n}
        for t, n in (("t1", 5), ("t2", 2), ("shadow", 0))
    ]
    entries = ledger.reserve(tasks, AT) + [ledger.settle(t, "succeeded", AT) for t in tasks[:2]]
    lake.append(LEDGER_ENTRIES, pl.DataFrame(entries, schema=LEDGER_ENTRIES.schema))
    assert ledger.balance_of(lake.read(LEDGER_ENTRIES), "u1")["spent"] == 7
    for _ in range(2):
        refunded = refund_and_notify(
            lake,
            "M5",
            tasks,
            AT,
            "no usable result",
            outcome="NoUsableResult",
            details={"outputs": 3},
            user_id="u1",
            video_id="v1",
            kind="no_result",
            title="T",
            body="B",
        )
        assert refunded == 2
    stored = lake.read(LEDGER_ENTRIES)
    assert sorted(stored.filter(pl.col("kind") == "refund")["task_id"]) == ["t1", "t2"]
    assert ledger.balance_of(stored, "u1")["spent"] == 0
    assert lake.read(NOTIFICATIONS)["kind"].to_list() == ["no_result"]
    # What happened, then that the user was told: in that order, once each.
    events = lake.read(PIPELINE_EVENTS).sort("occurred_at")
    assert events["event_type"].to_list() == ["NoUsableResult", "UserNotified"]
    assert json.loads(events["payload"][0]) == {"outputs": 3, "refunded_tasks": 2}
