"""Concurrent reservations against the store never overspend, from threads and from
processes, and reservations of different users proceed in parallel (throughput printed)."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import threading
import time

import polars as pl
import pytest

from economics import ledger as rules
from economics.budget import UserQuotaExceeded
from resources.store.errors import LedgerConflict

pytest_plugins = ["tests.store_fixtures"]

# Threads and processes racing on real databases: seconds each, so outside the quick loop.
pytestmark = pytest.mark.slow


def _run_threads(target, args_list) -> list:
    errors: list = []

    def guarded(*args):
        try:
            target(*args)
        except Exception as exc:  # collected; asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=a) for a in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _recomputed(store, user_id: str) -> dict:
    keys = ("entry_id", "user_id", "task_id", "kind", "tokens", "occurred_at")
    frame = pl.DataFrame([{k: e[k] for k in keys} for e in store.entries(user_id)])
    return rules.balance_of(frame, user_id)


def test_threads_reserving_one_balance_never_overspend(store, new_user):
    uid = new_user(tokens=100)["user_id"]
    granted, refused = [], []

    def worker(w):
        for i in range(25):
            try:
                store.reserve(uid, f"{uid}-t{w}-{i}", 1)
                granted.append(1)
            except UserQuotaExceeded:
                refused.append(1)

    assert _run_threads(worker, [(w,) for w in range(8)]) == []
    assert (len(granted), len(refused)) == (100, 100)
    balance = store.balance(uid)
    assert (balance["available"], balance["reserved_outstanding"]) == (0, 100)
    assert balance == _recomputed(store, uid)


def test_processes_reserving_one_balance_never_overspend(store, new_user, capsys):
    from tests.store_fixtures import reserve_worker  # loaded as a plugin by pytest_plugins

    uid = new_user(tokens=60)["user_id"]
    # spawn: each child opens its own Store (its own engine and connections) in a fresh
    # interpreter; a fork of this test process (xdist's and polars' threads, held locks) can
    # hang a child before it starts
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(reserve_worker, [(store.url, uid, f"{uid}-p{p}", 25) for p in range(4)])
    assert sum(g for g, _, _ in results) == 60 and sum(r for _, r, _ in results) == 40
    balance = store.balance(uid)
    assert (balance["available"], balance["reserved_outstanding"]) == (0, 60)
    assert balance == _recomputed(store, uid)
    with capsys.disabled():
        print(  # noqa: T201 - the throughput is reported, not asserted
            f"\n[{store.dialect}] 4 processes × 25 attempts on one balance: "
            f"{100 / max(s for _, _, s in results):.0f} attempts/s"
        )


def test_concurrent_settlements_charge_and_refund_at_most_once(store, new_user):
    uid = new_user(tokens=1_000)["user_id"]
    jobs = [f"{uid}-job-{i}" for i in range(20)]
    for job in jobs:
        store.reserve(uid, job, 10)

    def settle(seed):
        rng = random.Random(seed)
        for job in rng.sample(jobs, len(jobs)):
            with contextlib.suppress(LedgerConflict):  # consume after refund: refused by design
                store.consume(job) if rng.random() < 0.5 else store.refund(job, "rejected")

    assert _run_threads(settle, [(s,) for s in range(6)]) == []
    entries = pl.DataFrame(store.entries(uid))
    per_job = entries.filter(pl.col("kind") != "credit").group_by("task_id", "kind").len()
    assert (per_job["len"] == 1).all()
    balance = store.balance(uid)
    assert balance == _recomputed(store, uid)
    assert balance["reserved_outstanding"] == 0 and 0 <= balance["available"] <= 1_000


def _throughput(store, users: list[str], threads: int, per_thread: int) -> float:
    """Reservations per second of ``threads`` threads, thread i reserving for users[i % n]."""
    start = time.perf_counter()
    errors = _run_threads(
        lambda w: [
            store.reserve(users[w % len(users)], f"{users[w % len(users)]}-b{w}-{i}", 1) for i in range(per_thread)
        ],
        [(w,) for w in range(threads)],
    )
    assert errors == []
    return threads * per_thread / (time.perf_counter() - start)


def test_many_users_reserve_in_parallel(store, new_user, capsys):
    threads, per_thread = 8, 30
    many = [new_user(tokens=per_thread)["user_id"] for _ in range(threads)]
    one = [new_user(tokens=threads * per_thread)["user_id"]]
    solo = [new_user(tokens=per_thread)["user_id"]]
    sequential = _throughput(store, solo, 1, per_thread)
    parallel_users = _throughput(store, many, threads, per_thread)
    one_user = _throughput(store, one, threads, per_thread)
    for uid in many + one + solo:
        balance = store.balance(uid)
        assert balance["available"] == 0 and balance == _recomputed(store, uid)
    with capsys.disabled():
        print(  # noqa: T201 - the throughput is reported, not asserted
            f"\n[{store.dialect}] reservations/s: 1 thread {sequential:.0f}; {threads} threads × "
            f"{threads} users {parallel_users:.0f}; {threads} threads × 1 user {one_user:.0f}"
        )
