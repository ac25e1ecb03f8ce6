"""Token ledger of jobs: exactly-once under retries, re-executions and admin refunds (hypothesis),
and per-user budgets (alert at 80 %, pause at 100 %, top-up lifts the pause)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from economics import ledger
from economics.budget import UserQuotaExceeded, check_budget, reserve_or_raise

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SCHEMA = {
    "entry_id": pl.String,
    "user_id": pl.String,
    "correlation_id": pl.String,
    "task_id": pl.String,
    "kind": pl.String,
    "tokens": pl.Int64,
    "reason": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
}
USERS = ("ann", "bob")


def frame(entries: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(entries, schema=SCHEMA)


def task(user: str, n: int) -> dict:
    """A job, as the pipeline reserves it: one video's effect creation, charged once, the
    ledger's ``task_id`` being ``ledger.job_id(video)``; its price is fixed by its identity,
    as M5's is by the video's effect types."""
    video = f"v-{user}-{n}"
    return {"user_id": user, "video_id": video, "task_id": ledger.job_id(video), "tokens_reserved": 1 + n % 5}


# --- the reference model: what each user should see, written the obvious way -------------


class Model:
    """Per task the *set* of settlement kinds seen, per user the distinct top-ups.

    Settlements are recorded for every task, reserved or not: an orphan counts for nothing
    while it has no reserve, and settles the reservation if the reserve arrives later
    (balances depend on the set of entries, not their order)."""

    def __init__(self):
        self.topups: dict[str, int] = {}  # topup id → tokens
        self.topup_user: dict[str, str] = {}
        self.reserved: dict[str, tuple[str, int]] = {}  # task id → (user, R)
        self.kinds: dict[str, set[str]] = {}

    def spent(self, task_id: str) -> int:
        kinds = self.kinds.get(task_id, set())
        return self.reserved[task_id][1] if "consume" in kinds and "refund" not in kinds else 0

    def outstanding(self, task_id: str) -> int:
        return 0 if self.kinds.get(task_id) else self.reserved[task_id][1]

    def balance(self, user: str) -> dict:
        credited = sum(t for k, t in self.topups.items() if self.topup_user[k] == user)
        mine = [t for t, (u, _) in self.reserved.items() if u == user]
        spent = sum(self.spent(t) for t in mine)
        outstanding = sum(self.outstanding(t) for t in mine)
        return {
            "credited": credited,
            "spent": spent,
            "reserved_outstanding": outstanding,
            "available": credited - spent - outstanding,
        }


# --- operations, as the assets and the API would issue them --------------------------------

users = st.sampled_from(USERS)
task_numbers = st.integers(0, 2)  # few tasks, so operations collide on them often
operation = st.one_of(
    st.tuples(st.just("topup"), users, st.integers(1, 12), st.integers(0, 3)),
    st.tuples(st.just("dispatch"), users, task_numbers),
    st.tuples(st.just("finish"), users, task_numbers, st.booleans()),
    st.tuples(st.just("admin_reject"), users, task_numbers),
    st.tuples(st.just("retry")),  # the previous operation's writes, again
    st.tuples(st.just("replay")),  # the whole run so far re-executed
)


def run(ops, model: Model, log: list[dict], check) -> None:
    """Apply ``ops``: ``log`` is the raw append log (repeats kept, as in a union of
    retried writes); ``check`` is called after every operation."""
    last: list[dict] = []
    for step, op in enumerate(ops):
        at = T0 + timedelta(minutes=step)
        kind = op[0]
        if kind == "topup":
            _, user, tokens, n = op
            topup_id = f"pay-{user}-{n}"
            # a re-delivered payment carries the same id and the same amount
            tokens = model.topups.get(topup_id, tokens)
            last = [ledger.credit(user, tokens, topup_id, at)]
            model.topups.setdefault(topup_id, tokens)
            model.topup_user[topup_id] = user
        elif kind == "dispatch":
            t = task(op[1], op[2])
            before = model.balance(op[1])
            new = 0 if t["task_id"] in model.reserved else t["tokens_reserved"]
            refused: UserQuotaExceeded | None = None
            try:
                last = reserve_or_raise(frame(log), [t], at).entries
            except UserQuotaExceeded as e:
                last, refused = [], e
            if refused is not None:
                assert new > before["available"], "refused a reservation the user could cover"
                assert (refused.user_id, refused.requested, refused.available) == (op[1], new, before["available"])
                event("dispatch refused")
            else:
                assert new <= before["available"], "granted a reservation beyond the balance"
                model.reserved.setdefault(t["task_id"], (op[1], t["tokens_reserved"]))
        elif kind == "finish":
            t = task(op[1], op[2])
            last = [ledger.settle(t, "succeeded" if op[3] else "failed", at)]
            model.kinds.setdefault(t["task_id"], set()).add("consume" if op[3] else "refund")
        elif kind == "admin_reject":
            t = task(op[1], op[2])
            last = [ledger.refund_consumed(t, at, "rejected by admin")]
            if "consume" in model.kinds.get(t["task_id"], set()):
                event("admin refund of a consumed task")
            model.kinds.setdefault(t["task_id"], set()).add("refund")
        elif kind == "replay":  # re-executed: same entries, stamped with the new run's time
            last = [{**e, "occurred_at": at} for e in log]
            event("whole run replayed")
        log.extend(last)  # "retry" re-appends ``last`` unchanged
        check(log)


def assert_matches_model(log: list[dict], model: Model) -> None:
    got = {r["user_id"]: r for r in ledger.balances(frame(log)).iter_rows(named=True)}
    for user in USERS:
        want = model.balance(user)
        row = got.get(user, dict.fromkeys(want, 0))
        assert {k: row[k] for k in want} == want, user
        assert row["available"] >= 0, "balance went negative"


def assert_tasks_sane(log: list[dict]) -> None:
    for s in ledger.task_settlements(frame(log)).iter_rows(named=True):
        r = s["reserved"]
        assert s["spent"] in (0, r), "charged a task other than exactly once"
        assert 0 <= s["refunded"] <= r, "refunded a task more than once"
        assert s["refunded_consumed"] <= s["consumed"] <= r
        released = s["refunded"] - s["refunded_consumed"]
        assert r == s["reserved_outstanding"] + s["consumed"] + released, "tokens leaked"


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=20))
def test_random_interleavings_never_double_charge_double_refund_or_go_negative(ops):
    model, log = Model(), []
    run(ops, model, log, lambda log: assert_matches_model(log, model))
    assert_tasks_sane(log)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(operation, max_size=20), st.randoms(use_true_random=False))
def test_balances_depend_on_the_set_of_entries_not_their_order_or_repeats(ops, rnd):
    model, log = Model(), []
    run(ops, model, log, lambda log: None)
    shuffled = log + log[: len(log) // 2]
    rnd.shuffle(shuffled)
    once: dict[str, dict] = {}
    for e in log:  # what the lake's insert-if-absent append keeps: the first write
        once.setdefault(e["entry_id"], e)
    once = list(once.values())
    want = ledger.balances(frame(once))
    assert ledger.balances(frame(log)).equals(want)
    assert ledger.balances(frame(shuffled)).equals(want)


# --- plain cases ---------------------------------------------------------------------------

TASK = task("ann", 3)  # 4 tokens


def test_admin_refund_of_a_consumed_task_gives_the_charge_back_once():
    log = [ledger.credit("ann", 10, "p1", T0), *ledger.reserve([TASK], T0), ledger.settle(TASK, "succeeded", T0)]
    assert ledger.balance_of(frame(log), "ann")["spent"] == 4
    log += [ledger.refund_consumed(TASK, T0, "rejected"), ledger.refund_consumed(TASK, T0, "again")]
    row = ledger.balance_of(frame(log), "ann")
    assert (row["spent"], row["refunded"], row["refunded_consumed"], row["available"]) == (0, 4, 4, 10)


def test_refund_larger_than_the_charge_is_capped_and_flagged():
    log = [
        ledger.credit("ann", 10, "p1", T0),
        *ledger.reserve([TASK], T0),
        ledger.settle(TASK, "succeeded", T0),
        ledger.refund_consumed({**TASK, "tokens_reserved": 9}, T0, "fat finger"),
    ]
    row = ledger.balance_of(frame(log), "ann")
    assert (row["refunded_consumed"], row["available"], row["flagged"]) == (4, 10, 1)
    assert ledger.audit(frame(log))["issue"].to_list() == ["refund_exceeds_consumed"]


def test_settlement_without_reserve_is_ignored_and_flagged():
    log = [ledger.credit("ann", 10, "p1", T0), ledger.settle(TASK, "succeeded", T0)]
    row = ledger.balance_of(frame(log), "ann")
    assert (row["spent"], row["available"], row["flagged"]) == (0, 10, 1)
    assert ledger.audit(frame(log))["issue"].to_list() == ["orphan_settlement"]


def test_consume_after_a_failure_refund_nets_to_zero_and_is_flagged():
    log = [
        ledger.credit("ann", 10, "p1", T0),
        *ledger.reserve([TASK], T0),
        ledger.settle(TASK, "failed", T0 + timedelta(minutes=1)),
        ledger.settle(TASK, "succeeded", T0 + timedelta(minutes=2)),
    ]  # re-executed
    assert ledger.balance_of(frame(log), "ann")["spent"] == 0
    assert ledger.audit(frame(log))["issue"].to_list() == ["consume_after_refund"]


def test_conflicting_rows_under_one_id_keep_the_first_written():
    first = ledger.credit("ann", 10, "p1", T0)
    log = [first, {**first, "tokens": 1000, "occurred_at": T0 + timedelta(hours=1)}]
    assert ledger.balance_of(frame(log), "ann")["credited"] == 10
    assert ledger.audit(frame(log))["issue"].to_list() == ["conflicting_duplicate"]


def test_empty_ledger_and_unknown_user():
    assert ledger.balances(pl.DataFrame()).is_empty()
    assert ledger.balance_of(frame([]), "nobody")["available"] == 0
    with pytest.raises(UserQuotaExceeded, match="has 0 available"):  # no ledger table yet
        reserve_or_raise(pl.DataFrame(), [TASK], T0)
    with pytest.raises(ValueError, match="lack columns"):
        ledger.balances(pl.DataFrame({"entry_id": ["x"]}))
    with pytest.raises(ValueError, match="positive"):
        ledger.credit("ann", 0, "p0", T0)


# --- budgets -------------------------------------------------------------------------------


def _dispatch(log, n, tokens):
    t = {**task("ann", n), "tokens_reserved": tokens}
    granted = reserve_or_raise(frame(log), [t], T0)
    log.extend(granted.entries)
    return granted.decisions.get("ann")


def test_budget_alerts_at_80_percent_and_pauses_at_100_until_topped_up():
    log = [ledger.credit("ann", 100, "p1", T0)]
    assert not _dispatch(log, 1, 70).alert  # 70 % used
    decision = _dispatch(log, 2, 10)  # 80 % used → alert
    assert decision.alert and decision.allowed and not decision.paused
    assert "80 of 100" in decision.reason
    assert _dispatch(log, 3, 20).allowed  # the last token may be used
    paused = check_budget(ledger.balance_of(frame(log), "ann"), 1)
    assert paused.paused and not paused.allowed and paused.used_fraction == 1.0
    with pytest.raises(UserQuotaExceeded, match=r"user ann needs 1 tokens but has 0 available: paused"):
        _dispatch(log, 4, 1)
    log.append(ledger.credit("ann", 100, "p2", T0))  # top-up: 100 of 200 used
    decision = _dispatch(log, 4, 1)
    assert decision.allowed and not decision.paused and not decision.alert


def test_quota_error_says_who_asked_for_what_and_what_is_left():
    log = [ledger.credit("ann", 10, "p1", T0)]
    with pytest.raises(UserQuotaExceeded) as err:
        _dispatch(log, 1, 11)
    assert (err.value.user_id, err.value.requested, err.value.available) == ("ann", 11, 10)
    assert str(err.value) == (
        "user ann needs 11 tokens but has 10 available: 11 tokens requested, 10 left of a 10-token budget"
    )
    assert log == [ledger.credit("ann", 10, "p1", T0)]  # nothing reserved


def test_user_without_credits_is_paused():
    decision = check_budget(ledger.balance_of(frame([]), "new"), 1)
    assert decision.paused and not decision.allowed


def test_refunds_free_the_budget_and_retried_dispatch_is_not_charged_twice():
    log = [ledger.credit("ann", 10, "p1", T0)]
    t = {**task("ann", 1), "tokens_reserved": 10}
    log += reserve_or_raise(frame(log), [t, t], T0).entries  # a task listed twice: once
    assert ledger.balance_of(frame(log), "ann")["available"] == 0
    log += reserve_or_raise(frame(log), [t], T0).entries  # M5 re-run: not refused
    assert ledger.balance_of(frame(log), "ann")["reserved_outstanding"] == 10
    log.append(ledger.settle(t, "failed", T0))
    assert check_budget(ledger.balance_of(frame(log), "ann"), 10).allowed


def test_spending_cap_tighter_than_credits():
    balance = ledger.balance_of(frame([ledger.credit("ann", 100, "p1", T0)]), "ann")
    assert not check_budget(balance, 30, budget=20).allowed
    assert check_budget(balance, 16, budget=20).alert  # 16 ≥ 0.8 × 20
    assert check_budget(balance, 50, budget=1000).budget == 100  # a cap never adds tokens
    with pytest.raises(ValueError, match="requested_tokens must be ≥ 0, got -1"):
        check_budget(balance, -1)


def test_reserve_or_raise_refuses_everyone_if_one_user_cannot_pay():
    log = [ledger.credit("ann", 10, "p1", T0), ledger.credit("bob", 1, "p2", T0)]
    with pytest.raises(UserQuotaExceeded, match="user bob"):
        reserve_or_raise(frame(log), [task("ann", 1), task("bob", 3)], T0)


def test_random_order_of_a_realistic_day_gives_the_same_balance():
    rnd = random.Random(3)
    log = [ledger.credit("ann", 50, "p1", T0)]
    tasks = [task("ann", n) for n in range(6)]
    log += ledger.reserve(tasks, T0)
    log += [ledger.settle(t, "succeeded" if i % 3 else "failed", T0) for i, t in enumerate(tasks)]
    log += [ledger.refund_consumed(tasks[1], T0, "rejected")]
    # prices 1,2,3,4,5,1; tasks 0 and 3 failed; consumed tasks 1,2,4,5 = 2+3+5+1 = 11;
    # task 1 refunded after the fact → spent 9, available 50 − 9 = 41
    want = ledger.balance_of(frame(log), "ann")
    assert (want["spent"], want["available"], want["reserved"]) == (9, 41, 16)
    rnd.shuffle(log)
    assert ledger.balance_of(frame(log + log), "ann") == want
