"""Idempotency keys in the store: same key and body → the first response replayed; another
body → 422; still running → 409; scoped per user and route; one winner under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from resources.store.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidInput
from resources.store.idempotency import StoredResponse, request_hash
from resources.store.sql import utcnow

pytest_plugins = ["tests.store_fixtures"]
ROUTE = "POST /v1/uploads"


def test_same_key_same_body_replays_and_another_body_is_refused(store, new_user):
    uid = new_user()["user_id"]
    body = request_hash({"a": 1, "b": [1, 2]})
    assert store.claim_idempotency(uid, ROUTE, "k-1", body) is None  # first: proceed
    with pytest.raises(IdempotencyInProgress) as running:
        store.claim_idempotency(uid, ROUTE, "k-1", body)
    assert running.value.http_status == 409
    store.complete_idempotency(uid, ROUTE, "k-1", 201, '{"video_id": "v_1"}')
    replay = store.claim_idempotency(uid, ROUTE, "k-1", request_hash({"b": [1, 2], "a": 1}))
    assert replay == StoredResponse(201, '{"video_id": "v_1"}')
    with pytest.raises(IdempotencyMismatch) as mismatch:
        store.claim_idempotency(uid, ROUTE, "k-1", request_hash({"a": 2}))
    assert mismatch.value.http_status == 422


def test_keys_are_scoped_per_user_and_route(store, new_user):
    alice, bob = new_user()["user_id"], new_user()["user_id"]
    body = request_hash(b"same")
    assert store.claim_idempotency(alice, ROUTE, "shared", body) is None
    assert store.claim_idempotency(bob, ROUTE, "shared", body) is None
    assert store.claim_idempotency(alice, "POST /v1/uploads/presign", "shared", body) is None


def test_a_released_claim_can_be_retried_and_a_stale_one_taken_over(store, new_user):
    uid = new_user()["user_id"]
    body = request_hash("x")
    assert store.claim_idempotency(uid, ROUTE, "k", body) is None
    store.release_idempotency(uid, ROUTE, "k")  # the request failed with a 5xx
    assert store.claim_idempotency(uid, ROUTE, "k", body) is None
    # Its process died: after the stale interval another request may take the key over.
    with pytest.raises(IdempotencyInProgress):
        store.claim_idempotency(uid, ROUTE, "k", body)
    assert store.claim_idempotency(uid, ROUTE, "k", body, stale_after=timedelta(0)) is None
    store.complete_idempotency(uid, ROUTE, "k", 200, "ok")
    store.release_idempotency(uid, ROUTE, "k")  # a completed key is kept
    assert store.claim_idempotency(uid, ROUTE, "k", body, stale_after=timedelta(0)) == StoredResponse(200, "ok")
    assert store.purge_idempotency(utcnow() + timedelta(seconds=1)) >= 1
    assert store.claim_idempotency(uid, ROUTE, "k", body) is None


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\t", "ünïcode", None])
def test_malformed_keys_are_refused(store, new_user, key):
    with pytest.raises(InvalidInput):
        store.claim_idempotency(new_user()["user_id"], ROUTE, key, request_hash("x"))


def test_concurrent_first_requests_have_one_winner(store, new_user):
    uid = new_user()["user_id"]
    body = request_hash("x")
    outcomes, errors = [], []

    def claim():
        try:
            outcomes.append(store.claim_idempotency(uid, ROUTE, "race", body))
        except IdempotencyInProgress:
            outcomes.append("in progress")
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes.count(None) == 1 and outcomes.count("in progress") == 7
