"""Notifications as an outbox, and admin decisions recorded once (first stands, same again is
a no-op, contrary is a conflict) — in the store."""

from __future__ import annotations

import threading

import pytest

from resources.store.errors import DecisionConflict, InvalidInput, NotFound

pytest_plugins = ["tests.store_fixtures"]


def test_notifications_are_queued_listed_per_user_and_delivered_once(store, new_user):
    alice, bob = new_user()["user_id"], new_user()["user_id"]
    first = store.notify(
        alice,
        "video_ready",
        "Your video is ready",
        "body",
        "/v1/videos/v_1",
        correlation_id="v_1",
        notification_id=f"ready:{alice}:v_1",
    )
    assert store.notify(alice, "video_ready", "other title", notification_id=f"ready:{alice}:v_1") == first
    second = store.notify(alice, "low_balance", "Running low")
    store.notify(bob, "video_ready", "Bob's")
    mine = store.notifications(alice)
    assert [n["notification_id"] for n in mine] == [first["notification_id"], second["notification_id"]]
    assert [n["title"] for n in store.notifications(alice, after_seq=mine[0]["seq"])] == ["Running low"]

    pending_ids = {n["notification_id"] for n in store.pending_notifications(limit=10_000)}
    assert {first["notification_id"], second["notification_id"]} <= pending_ids
    assert store.mark_delivered([first["notification_id"]]) == 1
    assert store.mark_delivered([first["notification_id"]]) == 0  # first delivery stands
    pending_ids = {n["notification_id"] for n in store.pending_notifications(limit=10_000)}
    assert first["notification_id"] not in pending_ids and second["notification_id"] in pending_ids
    assert store.mark_delivered([]) == 0


def test_notification_and_change_commit_together(store, new_user):
    """The outbox row is written in the transaction of the change: both or neither."""
    from resources.store import ledger, outbox

    uid = new_user(tokens=10)["user_id"]

    def crash_before_commit() -> None:
        with store.write() as s:
            ledger.reserve(s, uid, f"job-{uid}", 5)
            outbox.notify(s, uid, "reserved", "5 tokens held")
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash before commit"):
        crash_before_commit()
    assert store.notifications(uid) == [] and store.balance(uid)["reserved_outstanding"] == 0


def test_first_decision_stands(store, new_user):
    admin = new_user(role="admin")["user_id"]
    subject = f"appr-{admin}"
    first = store.record_decision("approval", subject, "approve", admin, "looks good")
    assert store.record_decision("approval", subject, "approve", "someone-else", "again") == first
    with pytest.raises(DecisionConflict) as conflict:
        store.record_decision("approval", subject, "reject", admin)
    assert conflict.value.existing == first and conflict.value.http_status == 409
    # The same id under the other subject kind is another subject.
    assert store.record_decision("recommendation", subject, "reject", admin)["decision"] == "reject"
    assert store.decision("approval", subject) == first
    with pytest.raises(NotFound):
        store.decision("approval", "undecided")
    with pytest.raises(InvalidInput):
        store.record_decision("approval", subject, "maybe", admin)
    with pytest.raises(InvalidInput):
        store.record_decision("effect", subject, "approve", admin)


def test_racing_admins_one_decision_stands(store, new_user):
    admin = new_user(role="admin")["user_id"]
    subject = f"rec-{admin}"
    stood, conflicts, errors = [], [], []

    def decide(decision):
        try:
            stood.append(store.record_decision("recommendation", subject, decision, admin)["decision"])
        except DecisionConflict as exc:
            conflicts.append(exc.existing["decision"])
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=decide, args=(d,)) for d in ["approve", "reject"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stood) == 4 and len(conflicts) == 4
    assert set(stood) == set(conflicts) == {store.decision("recommendation", subject)["decision"]}
