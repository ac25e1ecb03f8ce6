"""Retry and poll policies (resources/retry.py) and the lake's use of the commit policy."""

from __future__ import annotations

import time

import pytest
from deltalake.exceptions import CommitFailedError

from resources.lake import Lake
from resources.retry import (
    PollTimeout,
    commit_conflicts,
    transient_failures,
    until_ready,
)


def flaky(failures: list[BaseException], result: str = "done"):
    """A function that raises each of ``failures`` in turn, then returns ``result``;
    ``fn.calls`` counts the calls."""

    def fn() -> str:
        fn.calls += 1
        if failures:
            raise failures.pop(0)
        return result

    fn.calls = 0
    return fn


def test_commit_conflicts_retry_with_jittered_growing_pauses():
    sleeps: list[float] = []
    fn = flaky([CommitFailedError("lost the race")] * 3)
    assert commit_conflicts(10).copy(sleep=sleeps.append)(fn) == "done"
    assert fn.calls == 4
    # uniform(0.05, 0.2) s times the number of the attempt that failed
    assert [0.05 * n <= s <= 0.2 * n for n, s in enumerate(sleeps, start=1)] == [True] * 3


def test_commit_conflicts_give_up_with_the_last_conflict():
    sleeps: list[float] = []
    fn = flaky([CommitFailedError(f"conflict {i}") for i in range(10)])
    with pytest.raises(CommitFailedError, match="conflict 9"):
        commit_conflicts(10).copy(sleep=sleeps.append)(fn)
    assert (fn.calls, len(sleeps)) == (10, 9)


def test_commit_conflicts_do_not_retry_other_errors():
    fn = flaky([ValueError("schema mismatch")])
    with pytest.raises(ValueError, match="schema mismatch"):
        commit_conflicts(10).copy(sleep=lambda s: None)(fn)
    assert fn.calls == 1


def test_lake_commits_retry_conflicts():
    fn = flaky([CommitFailedError("lost the race")])
    assert Lake._retry(fn) == "done" and fn.calls == 2


def test_transient_failures_stop_at_the_attempt_limit_and_log_each_retry():
    logged: list[tuple[int, str]] = []

    def log(state) -> None:
        logged.append((state.attempt_number, str(state.outcome.exception())))

    policy = transient_failures(lambda exc: isinstance(exc, OSError), attempts=2, pause_s=0, before_sleep=log)
    ok = flaky([OSError("out of pids")])
    assert policy(ok) == "done" and ok.calls == 2
    assert logged == [(1, "out of pids")]
    twice = flaky([OSError("a"), OSError("b")])
    with pytest.raises(OSError, match="b"):
        policy(twice)
    permanent = flaky([ValueError("bad params")])
    with pytest.raises(ValueError, match="bad params"):
        policy(permanent)
    assert (twice.calls, permanent.calls) == (2, 1)


def test_until_ready_returns_the_first_answer():
    answers = iter([None, None, "ready"])
    assert until_ready(timeout_s=5, interval_s=0.01)(lambda: next(answers)) == "ready"


def test_until_ready_times_out_after_the_deadline():
    started = time.monotonic()
    calls = []
    with pytest.raises(PollTimeout):
        until_ready(timeout_s=0.2, interval_s=0.05)(lambda: calls.append(1))
    assert 0.2 <= time.monotonic() - started < 2 and 3 <= len(calls) <= 6
    assert issubclass(PollTimeout, TimeoutError)


def test_until_ready_does_not_retry_errors():
    fn = flaky([RuntimeError("server exited")])
    with pytest.raises(RuntimeError, match="server exited"):
        until_ready(timeout_s=5, interval_s=0.01)(fn)
    assert fn.calls == 1
