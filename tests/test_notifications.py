"""Telling the user, one way: ``notify_user`` queues the notification once in the store's
outbox and returns the ``UserNotified`` event; ``refund_and_notify`` gives the job's tokens
back once and says so."""

from __future__ import annotations

import json

import pytest

from economics import ledger
from economics.ids import event_id
from resources.lake import Lake
from resources.notifications import notification_id, notify_user
from resources.refunds import refund_and_notify
from resources.schemas import PIPELINE_EVENTS
from resources.store.client import Store


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


@pytest.fixture
def user(store) -> str:
    ws = store.create_workspace("w")
    return store.create_user(ws["workspace_id"], welcome_tokens=20)[0]["user_id"]


def test_notify_user_writes_once_and_returns_the_event(store, user):
    first = notify_user(store, "M5", user, "v1", "no_result", "Title", "Body", url="http://x")
    again = notify_user(store, "M5", user, "v1", "no_result", "Title", "Body", url="http://x")
    [note] = store.notifications(user)
    assert note["notification_id"] == notification_id("v1", "no_result")
    assert (note["url"], note["correlation_id"], note["delivered_at"]) == ("http://x", "v1", None)
    assert first["event_type"] == "UserNotified" and first["stage"] == "M5" and first["correlation_id"] == "v1"
    assert first["event_id"] == again["event_id"] == event_id("M5", "UserNotified", "v1", "no_result")
    assert json.loads(first["payload"]) == {"kind": "no_result", "notification_id": note["notification_id"]}
    other = notify_user(store, "M10", user, "v1", "effect_rejected", "T", "B", identity="a1", event_identity="rejected")
    assert other["event_id"] == event_id("M10", "UserNotified", "v1", "rejected")
    assert [n["kind"] for n in store.notifications(user)] == ["no_result", "effect_rejected"]
    assert notify_user(store, "M1", user, "v2", "video_rejected", "T", "B")  # no url: stored as ""
    assert store.notifications(user)[-1]["url"] == ""


def test_refund_and_notify_gives_a_consumed_job_back_once(tmp_path, store, user):
    lake = Lake(uri=str(tmp_path / "lake"))
    job = ledger.job_id("v1")
    store.reserve(user, job, 5, correlation_id="v1")
    store.consume(job)
    assert store.balance(user)["spent"] == 5
    for _ in range(2):
        refunded = refund_and_notify(
            store,
            lake,
            "M10",
            "rejected by admin",
            outcome="EffectRejected",
            details={"approval_id": "a1"},
            user_id=user,
            video_id="v1",
            kind="effect_rejected",
            title="T",
            body="Your {tokens} tokens were refunded.",
        )
        assert refunded == 5
    balance = store.balance(user)
    assert (balance["spent"], balance["available"], balance["refunded"]) == (0, 20, 5)
    refunds = [e for e in store.entries(user) if e["kind"] == "refund"]
    assert [(e["task_id"], e["tokens"]) for e in refunds] == [(job, 5)]
    [note] = store.notifications(user)
    assert (note["kind"], note["body"]) == ("effect_rejected", "Your 5 tokens were refunded.")
    # What happened, then that the user was told: in that order, once each.
    events = lake.read(PIPELINE_EVENTS).sort("occurred_at")
    assert events["event_type"].to_list() == ["EffectRejected", "UserNotified"]
    assert json.loads(events["payload"][0]) == {"approval_id": "a1", "refunded_tokens": 5}


def test_refund_and_notify_releases_an_open_reservation_and_tolerates_none(tmp_path, store, user):
    lake = Lake(uri=str(tmp_path / "lake"))
    store.reserve(user, ledger.job_id("v1"), 4, correlation_id="v1")
    kw = {"outcome": "NoUsableResult", "details": {}, "user_id": user, "kind": "no_result", "title": "T", "body": "B"}
    assert refund_and_notify(store, lake, "M5", "no usable result", video_id="v1", **kw) == 4
    assert store.balance(user)["reserved_outstanding"] == 0
    # A job that reserved nothing has nothing to give back, and the user is still told.
    assert refund_and_notify(store, lake, "M5", "no usable result", video_id="v2", **kw) == 0
    assert [n["correlation_id"] for n in store.notifications(user)] == ["v1", "v2"]
