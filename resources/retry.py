"""The retry and poll policies of every call that waits on the outside world (tenacity).

Each function returns a fresh ``tenacity.Retrying``: call it with the function to run and its
arguments, ``policy(fn, *args)``. A fresh one per use because a ``Retrying`` carries the state
of the call in progress; ``.copy(sleep=...)`` swaps the sleep in tests.

=====================  =================================================================
policy                 used for
=====================  =================================================================
``commit_conflicts``   Delta commits that lose an optimistic-concurrency race (lake)
``transient_failures`` one task attempt that failed for a passing reason (providers)
``until_ready``        polling a remote job or server until it answers, with a deadline
``server_paced``       a rate-limited API (429 / 5xx) that says how long to wait (Gemini)
=====================  =================================================================

Exceptions a policy does not retry propagate unchanged from the first attempt that raised
them, and an exhausted retry re-raises the last attempt's exception (``reraise``), so callers
handle the same exceptions as without a policy.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from deltalake.exceptions import CommitFailedError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

# Pause before commit attempt n+1 is uniform(0.05, 0.2) s x n: the jitter spreads writers
# that lost together so they do not collide again, and the growth gives a crowd time to clear.
COMMIT_PAUSE_S = (0.05, 0.2)


class PollTimeout(TimeoutError):
    """``until_ready`` reached its deadline without a ready answer."""


class JitteredLinearWait(wait_base):
    """Wait ``uniform(low_s, high_s) * n`` seconds after the n-th failed attempt."""

    def __init__(self, low_s: float, high_s: float):
        self.low_s = low_s
        self.high_s = high_s

    def __call__(self, retry_state: RetryCallState) -> float:
        return random.uniform(self.low_s, self.high_s) * retry_state.attempt_number


def commit_conflicts(attempts: int) -> Retrying:
    """Retry a Delta commit that raised ``CommitFailedError``: delta-rs resolves concurrent
    writes optimistically, so the writer that lost the race commits again.

    Args:
        attempts: attempts in all (first try included); the lake uses 10.

    Waits ``uniform(0.05, 0.2) * n`` s after the n-th failure (``COMMIT_PAUSE_S``); after
    ``attempts`` failures the last ``CommitFailedError`` is raised. Other exceptions are not
    retried.
    """
    return Retrying(
        retry=retry_if_exception_type(CommitFailedError),
        stop=stop_after_attempt(attempts),
        wait=JitteredLinearWait(*COMMIT_PAUSE_S),
        reraise=True,
    )


def transient_failures(
    is_transient: Callable[[BaseException], bool],
    attempts: int,
    pause_s: float,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """Retry an attempt whose exception ``is_transient`` says may pass (a full machine, a
    dropped connection), at most ``attempts`` tries in all, ``pause_s`` seconds apart.

    Args:
        is_transient: exception -> True to retry; every other exception is raised at once.
        attempts: attempts in all (first try included); the last failure is raised.
        pause_s: seconds between attempts (long enough for a momentary shortage to clear).
        before_sleep: called with tenacity's call state before each pause (to log the retry;
            ``state.outcome.exception()`` is the failure, ``state.attempt_number`` its attempt).
    """
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_fixed(pause_s),
        before_sleep=before_sleep,
        reraise=True,
    )


def until_ready(timeout_s: float, interval_s: float) -> Retrying:
    """Call a check every ``interval_s`` seconds until it returns something other than None.

    Returns the first non-None answer. The deadline is checked after each call, so there is
    always a first call and an answer that arrives at the deadline still counts. Exceptions
    of the check are not retried: they propagate at once.

    Raises:
        PollTimeout: ``timeout_s`` seconds passed since the first call and the check still
            answers None.
    """

    def timed_out(state: RetryCallState) -> None:
        raise PollTimeout(f"not ready after {state.attempt_number} checks in {timeout_s:g} s")

    return Retrying(
        retry=retry_if_result(lambda answer: answer is None),
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s),
        retry_error_callback=timed_out,
    )


class ServerPacedWait(wait_base):
    """Wait what the server asked for (``server_delay_s(exception)``), else exponential backoff
    ``base_s * 2**(n-1)`` scaled by a uniform(0.5, 1) jitter after the n-th failed attempt;
    never more than ``max_wait_s``."""

    def __init__(self, server_delay_s: Callable[[BaseException], float | None], base_s: float, max_wait_s: float):
        self.server_delay_s = server_delay_s
        self.base_s = base_s
        self.max_wait_s = max_wait_s

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = self.server_delay_s(exc) if exc is not None else None
        if asked is None:
            asked = self.base_s * 2 ** (retry_state.attempt_number - 1) * random.uniform(0.5, 1.0)
        return min(max(asked, 0.0), self.max_wait_s)


class StopWhenServerAsksTooLong(stop_base):
    """Stop when the failed attempt's server delay is longer than ``max_wait_s``: waiting less
    than a quota's Retry-After would only be refused again, and waiting minutes inside a
    stage is worse than its fallback."""

    def __init__(self, server_delay_s: Callable[[BaseException], float | None], max_wait_s: float):
        self.server_delay_s = server_delay_s
        self.max_wait_s = max_wait_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = self.server_delay_s(exc) if exc is not None else None
        return asked is not None and asked > self.max_wait_s


def server_paced(
    is_retryable: Callable[[BaseException], bool],
    server_delay_s: Callable[[BaseException], float | None],
    attempts: int,
    max_wait_s: float,
    base_s: float = 1.0,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """Retry a call to a rate-limited API, pacing the retries as the server asks.

    Args:
        is_retryable: exception -> True to retry (429, 5xx, a dropped connection); every other
            exception is raised at once.
        server_delay_s: exception -> the seconds the server asked to wait (``Retry-After``, a
            ``google.rpc.RetryInfo``), or None when it did not say.
        attempts: attempts in all (first try included); the last failure is raised.
        max_wait_s: longest single pause, seconds. A server asking for more stops the retries
            at once (the last failure is raised) instead of being retried early.
        base_s: first pause of the exponential backoff used when the server gives no delay
            (``base_s * 2**(n-1)`` × uniform(0.5, 1) after the n-th failure, the jitter spreading
            clients that were refused together).
        before_sleep: called with tenacity's call state before each pause (to log the retry).
    """
    return Retrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(attempts) | StopWhenServerAsksTooLong(server_delay_s, max_wait_s),
        wait=ServerPacedWait(server_delay_s, base_s, max_wait_s),
        before_sleep=before_sleep,
        reraise=True,
    )


def backoff_delay_s(attempt: int, base_s: float, max_s: float, server_delay_s: float | None = None) -> float:
    """The pause after the ``attempt``-th failure when the retry is scheduled rather than
    slept (a remote task waits in the store, not in a thread): ``ServerPacedWait``'s rule —
    the server's delay when it gave one (``Retry-After``), else ``base_s * 2**(attempt-1)`` ×
    uniform(0.5, 1) — never more than ``max_s``.

    Args:
        attempt: the failed attempt (1 = first).
    """
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempt)
    state.set_exception((RuntimeError, RuntimeError("scheduled retry"), None))
    return ServerPacedWait(lambda _exc: server_delay_s, base_s, max_s)(state)
