"""The token ledger on SQL: exactly-once entries with the ids of economics.ledger, bounds
(422-style errors), balances equal to economics.ledger.balances over the entries — on SQLite
and PostgreSQL, including hypothesis sequences of credits, reservations, settlements and
replays."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from economics import ledger as rules
from economics.budget import UserQuotaExceeded
from resources.store.errors import BalanceOverflow, InvalidTokens, JobNotReserved, LedgerConflict, UnknownUser
from resources.store.identity import welcome_topup_id
from resources.store.tokens import MAX_BALANCE, MAX_TOKENS_PER_OPERATION

pytest_plugins = ["tests.store_fixtures"]


ENTRY_SCHEMA = {
    "entry_id": pl.String,
    "user_id": pl.String,
    "task_id": pl.String,
    "kind": pl.String,
    "tokens": pl.Int64,
    "occurred_at": pl.Datetime("us", "UTC"),
}


def _frame(store, user_id: str) -> pl.DataFrame:
    rows = [{k: e[k] for k in ENTRY_SCHEMA} for e in store.entries(user_id)]
    return pl.DataFrame(rows, schema=ENTRY_SCHEMA)


def _recomputed(store, user_id: str) -> dict:
    return rules.balance_of(_frame(store, user_id), user_id)


def test_welcome_credit_is_granted_once_when_the_user_is_created(store, new_user):
    user = new_user(tokens=200)
    entries = store.entries(user["user_id"])
    assert [(e["kind"], e["tokens"], e["task_id"]) for e in entries] == [
        ("credit", 200, welcome_topup_id(user["user_id"]))
    ]
    assert entries[0]["entry_id"] == rules.entry_id("credit", welcome_topup_id(user["user_id"]))
    # A re-delivered welcome credit is the same entry: still one.
    store.credit(user["user_id"], 200, welcome_topup_id(user["user_id"]), "welcome credit")
    assert len(store.entries(user["user_id"])) == 1
    assert store.balance(user["user_id"])["available"] == 200
    assert store.entries(new_user()["user_id"]) == []  # no welcome tokens: no entry


def test_reserve_consume_refund_exactly_once_with_deterministic_ids(store, new_user):
    uid = new_user(tokens=100)["user_id"]
    first = store.reserve(uid, "job-a", 30, correlation_id="video-1")
    assert first["entry_id"] == rules.entry_id("reserve", "job-a")
    assert store.reserve(uid, "job-a", 30, correlation_id="video-1") == first  # replay
    assert store.balance(uid)["available"] == 70

    consumed = store.consume("job-a")
    assert (consumed["kind"], consumed["tokens"], consumed["correlation_id"]) == ("consume", 30, "video-1")
    assert store.consume("job-a") == consumed
    assert store.balance(uid) == _recomputed(store, uid)
    assert store.balance(uid)["spent"] == 30

    # A refund after the consume reverses the charge, once.
    refunded = store.refund("job-a", "admin rejected")
    assert (refunded["kind"], refunded["tokens"]) == ("refund", 30)
    assert store.refund("job-a", "again") == refunded
    balance = store.balance(uid)
    assert (balance["spent"], balance["available"], balance["refunded_consumed"]) == (0, 100, 30)

    # An open reservation refunded is released; it can no longer be charged.
    store.reserve(uid, "job-b", 40)
    store.refund("job-b", "provider failed")
    with pytest.raises(LedgerConflict):
        store.consume("job-b")
    assert store.balance(uid)["available"] == 100
    assert store.balance(uid) == _recomputed(store, uid)
    kinds = [e["kind"] for e in store.entries(uid)]
    assert kinds == ["credit", "reserve", "consume", "refund", "reserve", "refund"]


def test_reservation_beyond_the_available_balance_is_refused(store, new_user):
    uid = new_user(tokens=50)["user_id"]
    store.reserve(uid, "j1", 50)  # the last token may be used
    with pytest.raises(UserQuotaExceeded) as refused:
        store.reserve(uid, "j2", 1)
    assert (refused.value.user_id, refused.value.requested, refused.value.available) == (uid, 1, 0)
    assert len(store.entries(uid)) == 2
    store.refund("j1", "failed")
    store.reserve(uid, "j2", 1)


def test_settling_an_unknown_job_and_unknown_users(store, new_user):
    with pytest.raises(JobNotReserved) as missing:
        store.consume("never-reserved")
    assert missing.value.http_status == 404
    with pytest.raises(JobNotReserved):
        store.refund("never-reserved", "x")
    with pytest.raises(UnknownUser):
        store.credit("u_nobody", 10, "t1")
    with pytest.raises(UnknownUser):
        store.reserve("u_nobody", "j", 10)
    with pytest.raises(UnknownUser):
        store.balance("u_nobody")


def test_a_replayed_id_with_other_content_is_a_conflict(store, new_user):
    alice, bob = new_user()["user_id"], new_user()["user_id"]
    store.credit(alice, 100, "payment-1")
    with pytest.raises(LedgerConflict):
        store.credit(alice, 999, "payment-1")  # same payment, another amount
    with pytest.raises(LedgerConflict):
        store.credit(bob, 100, "payment-1")  # same payment for someone else
    store.reserve(alice, "job-1", 10)
    with pytest.raises(LedgerConflict):
        store.reserve(alice, "job-1", 11)
    with pytest.raises(LedgerConflict):
        store.reserve(bob, "job-1", 10)
    assert store.balance(bob)["credited"] == 0
    assert store.balance(alice)["available"] == 90


@pytest.mark.parametrize("tokens", [True, False, 1.0, 2.5, "10", 0, -5, None, MAX_TOKENS_PER_OPERATION + 1, 10**30])
def test_token_amounts_must_be_positive_bounded_ints(store, new_user, tokens):
    uid = new_user(tokens=100)["user_id"]
    with pytest.raises(InvalidTokens) as credit_error:
        store.credit(uid, tokens, "t")
    assert credit_error.value.http_status == 422
    with pytest.raises(InvalidTokens):
        store.reserve(uid, "j", tokens)
    assert len(store.entries(uid)) == 1


def test_credits_stop_at_the_maximum_balance(store, new_user):
    uid = new_user()["user_id"]
    per_op = MAX_TOKENS_PER_OPERATION
    full = MAX_BALANCE // per_op
    # Fill the account by writing its credited total directly (a million top-ups would be slow).
    with store.write() as s:
        from resources.store.models import Account

        s.get(Account, uid).credited = full * per_op - 5
    store.credit(uid, 5, "last")  # exactly MAX_BALANCE
    assert store.balance(uid)["credited"] == MAX_BALANCE
    with pytest.raises(BalanceOverflow) as overflow:
        store.credit(uid, 1, "one-too-many")
    assert overflow.value.http_status == 422 and "maximum" in str(overflow.value)
    assert [e["task_id"] for e in store.entries(uid)] == ["last"]


# --- property: random sequences, replays included ----------------------------------------

# Few ids, so that replays and every settle order are frequent; "reserve_rest" asks for the
# available balance plus -1, 0 or +1 tokens (the boundary of the quota check).
OPS = st.one_of(
    st.tuples(st.just("credit"), st.integers(0, 2), st.sampled_from([1, 50, 300])),
    st.tuples(st.just("reserve"), st.integers(0, 2), st.integers(1, 400)),
    st.tuples(st.just("reserve_rest"), st.integers(0, 2), st.integers(-1, 1)),
    st.tuples(st.just("consume"), st.integers(0, 2), st.none()),
    st.tuples(st.just("refund"), st.integers(0, 2), st.none()),
)


class _Model:
    """What each operation must do, from the ledger's rules."""

    def __init__(self, welcome: int):
        self.credits = {"welcome": welcome}
        self.jobs: dict[str, dict] = {}

    @property
    def available(self) -> int:
        spent = sum(j["r"] for j in self.jobs.values() if j["state"] == "consumed")
        held = sum(j["r"] for j in self.jobs.values() if j["state"] == "reserved")
        return sum(self.credits.values()) - spent - held

    def expect(self, op: str, key: str, tokens: int | None):
        """The exception type expected, or None; updates the model when the op applies."""
        if op == "credit":
            if key in self.credits:
                return None if self.credits[key] == tokens else LedgerConflict
            self.credits[key] = tokens
            return None
        job = self.jobs.get(key)
        if op == "reserve":
            if job is not None:
                return None if job["r"] == tokens else LedgerConflict
            if tokens > self.available:
                return UserQuotaExceeded
            self.jobs[key] = {"r": tokens, "state": "reserved"}
            return None
        if job is None:
            return JobNotReserved
        state = job["state"]
        if op == "consume":
            if state == "refunded_open":
                return LedgerConflict
            if state == "reserved":
                job["state"] = "consumed"
            return None
        job["state"] = {"reserved": "refunded_open", "consumed": "refunded_consumed"}.get(state, state)
        return None


def _apply(store, uid: str, op: str, key: str, tokens: int | None) -> None:
    if op == "credit":
        store.credit(uid, tokens, key)
    elif op == "reserve":
        store.reserve(uid, key, tokens)
    elif op == "consume":
        store.consume(key)
    else:
        store.refund(key, "failed")


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(welcome=st.integers(0, 500), ops=st.lists(OPS, min_size=8, max_size=30))
def test_random_sequences_keep_the_account_equal_to_the_recomputed_ledger(store, workspace, welcome, ops):
    user, _ = store.create_user(workspace["workspace_id"], welcome_tokens=welcome)
    uid = user["user_id"]
    model = _Model(welcome if welcome else 0)
    if not welcome:
        model.credits = {}
    for op, index, tokens in ops:
        if op == "reserve_rest":
            op, tokens = "reserve", max(1, model.available + tokens)
        key = f"{uid}:{op if op == 'credit' else 'job'}:{index}"
        expected = model.expect(op, key, tokens)
        if expected is None:
            _apply(store, uid, op, key, tokens)
        else:
            with pytest.raises(expected):
                _apply(store, uid, op, key, tokens)
        balance = store.balance(uid)
        assert balance["available"] == model.available >= 0

    frame = _frame(store, uid)
    assert store.balance(uid) == rules.balance_of(frame, uid)
    assert rules.audit(frame).is_empty(), "the store wrote what the ledger flags"
    per_job = frame.filter(pl.col("kind") != "credit").group_by("task_id", "kind").len()
    assert (per_job["len"] == 1).all()  # no double charge, no double refund
    assert frame["entry_id"].n_unique() == frame.height
