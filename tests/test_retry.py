"""Retry and poll policies (resources/retry.py) and the lake's use of the commit policy."""

from __future__ import annotations

import time

import pytest
from deltalake.exceptions import CommitFailedError

from resources.lake import Lake
from resources.retry import (
    PollTimeout,
    commit_conflicts,
    server_paced,
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


class Refused(Exception):
    """A refusal that may name the seconds to wait (as a 429's Retry-After does)."""

    def __init__(self, delay_s: float | None = None):
        super().__init__(f"refused, wait {delay_s}")
        self.delay_s = delay_s


def test_server_paced_waits_what_the_server_asks_else_backs_off_exponentially():
    sleeps: list[float] = []
    policy = server_paced(
        lambda exc: isinstance(exc, Refused), lambda exc: exc.delay_s, attempts=4, max_wait_s=10, base_s=1.0
    ).copy(sleep=sleeps.append)
    fn = flaky([Refused(2.5), Refused(None), Refused(None)])
    assert policy(fn) == "done" and fn.calls == 4
    # the server's 2.5 s, then base * 2**(n-1) × uniform(0.5, 1) for failures 2 and 3
    assert sleeps[0] == 2.5 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0


def test_server_paced_is_bounded_in_attempts_and_in_each_wait():
    sleeps: list[float] = []
    policy = server_paced(lambda exc: isinstance(exc, Refused), lambda exc: exc.delay_s, attempts=3, max_wait_s=5).copy(
        sleep=sleeps.append
    )
    always = flaky([Refused(0.1)] * 10)
    with pytest.raises(Refused):
        policy(always)
    assert (always.calls, sleeps) == (3, [0.1, 0.1])
    # A server asking for longer than max_wait_s ends the retries at once: retrying early
    # would only be refused again.
    sleeps.clear()
    too_long = flaky([Refused(60.0), Refused(None)])
    with pytest.raises(Refused, match="wait 60"):
        policy(too_long)
    assert (too_long.calls, sleeps) == (1, [])
    other = flaky([ValueError("bad request")])
    with pytest.raises(ValueError, match="bad request"):
        policy(other)
    assert other.calls == 1
