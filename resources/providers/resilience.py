"""Pure decisions about provider tasks that may fail, wait or hang: error classes, retry
delays, the circuit breaker per provider, admission against a provider's real concurrency,
and deadlines (docs/architecture.md, "Remote tasks"). No I/O, no Dagster: the store keeps the
state these functions compute on (``resources/store/remote.py``), the completion sensor and
M6 apply their answers.

Times are tz-aware UTC datetimes; durations are seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from resources.retry import backoff_delay_s

# --- error classes ----------------------------------------------------------------------------
# Transient: the same task may succeed later (the server was down, restarted and lost the
# prompt, asked us to slow down, ran out of GPU memory while busy with another prompt).
# Everything else is permanent: a rejected graph, a decoder error, a missing input, a timeout
# (a retry would double an already too long task) — retrying would fail the same way.
TRANSIENT_ERRORS = frozenset(
    {
        "ProviderUnreachable",
        "PromptLost",
        "ProviderBusy",  # 429 / 503 from the provider or its front
        "ComfyUIHTTPError",  # other 5xx answers
        "OutputMissing",  # the output vanished between history and download (server restart)
        "torch.OutOfMemoryError",
        "FFmpegKilled",
        "ResourceExhausted",
        "MemoryError",
    }
)
# Failures that say nothing about the provider's health: they never count against its breaker.
# ``Orphaned``: the sender stopped before the provider got the task (recovery), not its doing;
# ``RunDeadline``: the effect run it serves ran out of time (our deadline, not the provider's).
RUN_DEADLINE = "RunDeadline"
NOT_THE_PROVIDERS_FAULT = frozenset(
    {"InputMissing", "InvalidParams", "DecodeError", "BreakerOpen", "Orphaned", RUN_DEADLINE}
)


def is_transient(error_class: str | None) -> bool:
    """True when a failure of ``error_class`` may pass on a later attempt."""
    return error_class in TRANSIENT_ERRORS


@dataclass(frozen=True)
class RetryPolicy:
    """How a provider's failed attempts are retried.

    Attributes:
        attempts: attempts in all (first included); 1 = never retry.
        base_s: first backoff pause; the n-th retry waits ``base_s * 2**(n-1)`` scaled by a
            uniform(0.5, 1) jitter (``resources.retry.backoff_delay_s``).
        max_s: longest pause, seconds; also the longest ``Retry-After`` honoured: a provider
            asking for more gets no retry (its next provider takes the task).
    """

    attempts: int = 3
    base_s: float = 2.0
    max_s: float = 60.0


def retry_delay_s(
    policy: RetryPolicy,
    error_class: str | None,
    attempt: int,
    retry_after_s: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when the task must not be retried.

    Args:
        attempt: the attempt that just failed (1 = first).
        retry_after_s: the provider's ``Retry-After``, honoured as given (not shortened).

    Returns None for permanent errors, when ``attempt`` used the last attempt, and when the
    provider asks for longer than ``policy.max_s``.
    """
    if not is_transient(error_class) or attempt >= policy.attempts:
        return None
    if retry_after_s is not None and retry_after_s > policy.max_s:
        return None
    return backoff_delay_s(attempt, policy.base_s, policy.max_s, retry_after_s)


# --- circuit breaker --------------------------------------------------------------------------
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a provider's breaker opens and how it closes again.

    Attributes:
        consecutive_failures: open after this many failures in a row.
        failure_rate: open when the failure share of the last ``window_s`` reaches this…
        min_calls: …over at least this many outcomes (a rate over 2 calls means nothing).
        window_s: the failure-rate window, seconds.
        cooldown_s: an open breaker lets a probe through after this many seconds (half-open).
        probes: tasks let through while half-open; one success closes, one failure re-opens.
    """

    consecutive_failures: int = 5
    failure_rate: float = 0.5
    min_calls: int = 10
    window_s: float = 600.0
    cooldown_s: float = 120.0
    probes: int = 1


@dataclass(frozen=True)
class Breaker:
    """One provider's breaker (the store's ``provider_breakers`` row).

    Attributes:
        state: ``closed`` | ``open`` | ``half_open``.
        consecutive_failures: failures since the last success.
        outcomes: (finished_at, ok) of the outcomes inside the window, oldest first.
        opened_at: when it last opened (None when never).
        probes_in_flight: tasks admitted while half-open and not finished.
        changed_at: when ``state`` last changed.
    """

    state: str = CLOSED
    consecutive_failures: int = 0
    outcomes: tuple[tuple[datetime, bool], ...] = ()
    opened_at: datetime | None = None
    probes_in_flight: int = 0
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Transition:
    """A breaker's state change, for the ``ProviderBreaker…`` events."""

    provider_id: str
    from_state: str
    to_state: str
    at: datetime
    reason: str


def _to(b: Breaker, state: str, now: datetime, **changes) -> Breaker:
    return replace(b, state=state, changed_at=now, **changes)


def breaker_view(b: Breaker, policy: BreakerPolicy, now: datetime) -> Breaker:
    """The breaker as of ``now``: an open one whose cooldown has passed is half-open."""
    if b.state == OPEN and b.opened_at is not None and now >= b.opened_at + timedelta(seconds=policy.cooldown_s):
        return _to(b, HALF_OPEN, now, probes_in_flight=0)
    return b


def breaker_allows(b: Breaker, policy: BreakerPolicy, now: datetime) -> bool:
    """True when a new task may be sent to the provider now (closed, or a free probe slot)."""
    b = breaker_view(b, policy, now)
    return b.state == CLOSED or (b.state == HALF_OPEN and b.probes_in_flight < policy.probes)


def breaker_admit(b: Breaker, policy: BreakerPolicy, now: datetime) -> Breaker:
    """The breaker after admitting one task (``breaker_allows`` must be True): a half-open
    breaker counts it as a probe in flight."""
    b = breaker_view(b, policy, now)
    return replace(b, probes_in_flight=b.probes_in_flight + 1) if b.state == HALF_OPEN else b


def breaker_record(b: Breaker, policy: BreakerPolicy, ok: bool, now: datetime) -> Breaker:
    """The breaker after a task outcome (``ok`` = succeeded).

    Closed: opens on ``consecutive_failures`` in a row, or when the window holds at least
    ``min_calls`` outcomes and the failure share reaches ``failure_rate``. Half-open: a success
    closes it (history cleared), a failure re-opens it (cooldown restarts). Open: outcomes of
    tasks admitted before it opened are counted but change nothing.
    """
    b = breaker_view(b, policy, now)
    horizon = now - timedelta(seconds=policy.window_s)
    outcomes = tuple(o for o in (*b.outcomes, (now, ok)) if o[0] >= horizon)
    streak = 0 if ok else b.consecutive_failures + 1
    b = replace(b, outcomes=outcomes, consecutive_failures=streak)
    if b.state == HALF_OPEN:
        probes = max(0, b.probes_in_flight - 1)
        if ok:
            return _to(b, CLOSED, now, outcomes=(), consecutive_failures=0, probes_in_flight=0)
        return _to(b, OPEN, now, opened_at=now, probes_in_flight=probes)
    if b.state == CLOSED and not ok:
        failures = sum(1 for _, good in outcomes if not good)
        rate_trips = len(outcomes) >= policy.min_calls and failures / len(outcomes) >= policy.failure_rate
        if streak >= policy.consecutive_failures or rate_trips:
            return _to(b, OPEN, now, opened_at=now)
    return b


def transition(provider_id: str, before: Breaker, after: Breaker, now: datetime) -> Transition | None:
    """The state change between two views of a breaker, if any."""
    if before.state == after.state:
        return None
    reasons = {
        OPEN: f"{after.consecutive_failures} failures in a row, "
        f"{sum(1 for _, ok in after.outcomes if not ok)}/{len(after.outcomes)} in the window",
        HALF_OPEN: "cooldown over: a probe may go through",
        CLOSED: "probe succeeded",
    }
    return Transition(provider_id, before.state, after.state, now, reasons[after.state])


# --- admission --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A task waiting to be sent: ``not_before`` is its retry backoff (None = at once)."""

    task_id: str
    provider_id: str
    enqueued_at: datetime
    not_before: datetime | None = None


def admit(
    waiting: Sequence[Waiting],
    in_flight: Mapping[str, int],
    capacity: Mapping[str, int],
    breakers: Mapping[str, Breaker],
    policies: Mapping[str, BreakerPolicy],
    now: datetime,
) -> tuple[list[str], dict[str, Breaker]]:
    """Which waiting tasks to send now, oldest first, and the breakers after admitting them.

    A provider takes tasks while ``in_flight`` (sent, not finished) is below ``capacity`` (its
    real concurrency: a ComfyUI server runs one prompt at a time, so servers × 1) and its
    breaker allows (closed, or half-open with a free probe slot). A task in retry backoff
    waits until ``not_before``. Providers missing from ``capacity`` take nothing.
    """
    busy = dict(in_flight)
    after = dict(breakers)
    chosen: list[str] = []
    for w in sorted(waiting, key=lambda w: (w.enqueued_at, w.task_id)):
        if w.not_before is not None and w.not_before > now:
            continue
        pid = w.provider_id
        if busy.get(pid, 0) >= capacity.get(pid, 0):
            continue
        b, policy = after.get(pid, Breaker()), policies.get(pid, BreakerPolicy())
        if not breaker_allows(b, policy, now):
            continue
        after[pid] = breaker_admit(b, policy, now)
        busy[pid] = busy.get(pid, 0) + 1
        chosen.append(w.task_id)
    return chosen, after


def assign_servers(
    chosen: Sequence[tuple[str, str]], busy: Mapping[str, Iterable[int | None]], servers: Mapping[str, int]
) -> dict[str, int]:
    """Which server each admitted task goes to: a ComfyUI server runs one prompt at a time, so
    a provider's tasks take its servers that hold no prompt of ours, lowest index first.

    Args:
        chosen: (task id, provider id) of the tasks ``admit`` chose, in its order.
        busy: provider id → the servers of its tasks in flight (None: a row from before
            servers were recorded; it holds some server, which one is unknown).
        servers: provider id → how many servers it has (absent: 1).

    Returns:
        task id → server index (0-based). When every server looks busy (rows of unknown
        server), the index wraps round: admission already bounded the count.
    """
    free: dict[str, list[int]] = {}
    out: dict[str, int] = {}
    for task_id, pid in chosen:
        if pid not in free:
            taken = {s for s in busy.get(pid, ()) if s is not None}
            free[pid] = [i for i in range(max(1, servers.get(pid, 1))) if i not in taken]
        pool = free[pid]
        out[task_id] = pool.pop(0) if pool else len(out) % max(1, servers.get(pid, 1))
    return out


# --- deadlines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadlines:
    """A remote task's two bounds.

    Attributes:
        queue_s: longest time from enqueueing until the provider starts it (our wait for a
            slot plus the provider's own queue).
        run_s: longest time from the provider starting it until it ends.
        cancel_grace_s: after an interrupt, how long to wait for the provider's final record
            (an interrupt lands only between nodes) before giving up on it.
    """

    queue_s: float = 600.0
    run_s: float = 600.0
    cancel_grace_s: float = 300.0


def overdue(
    deadlines: Deadlines,
    enqueued_at: datetime,
    started_at: datetime | None,
    now: datetime,
    run_deadline: datetime | None = None,
) -> str | None:
    """``QueueTimeout`` when the task never started within ``queue_s`` of enqueueing,
    ``Timeout`` when it started (on the provider) more than ``run_s`` ago, ``RunDeadline``
    when the effect run the task serves has a deadline (``run_deadline``) and it has passed
    (its result could no longer be delivered in time), else None."""
    if started_at is None:
        if now - enqueued_at > timedelta(seconds=deadlines.queue_s):
            return "QueueTimeout"
    elif now - started_at > timedelta(seconds=deadlines.run_s):
        return "Timeout"
    return RUN_DEADLINE if run_deadline is not None and now >= run_deadline else None


def send_orphaned(submitted_at: datetime | None, now: datetime, grace_s: float) -> bool:
    """True when a task marked ``submitting`` at ``submitted_at`` has been so for longer than
    ``grace_s``: its sender (an intake run or the sensor) stopped between claiming the slot
    and recording the provider's answer, and nobody else will finish the send. Such a task
    holds a provider slot until the orphan-recovery sensor resolves it."""
    return submitted_at is not None and now - submitted_at > timedelta(seconds=grace_s)


def video_deadline(deadlines: Iterable[tuple[datetime, Deadlines]]) -> datetime | None:
    """When a video's evaluation starts at the latest: the last of its tasks' enqueue time +
    queue bound + run bound + cancel grace (None for a video without remote tasks)."""
    ends = [at + timedelta(seconds=d.queue_s + d.run_s + d.cancel_grace_s) for at, d in deadlines]
    return max(ends) if ends else None


@dataclass(frozen=True)
class Accounting:
    """Queue and compute time of a finished remote task, from the provider's own clock.

    Attributes:
        queue_wait_ms: enqueue (our clock) → the provider's start; 0 when it never started.
        compute_seconds: provider start → its final event (success, error or interrupt);
            0 when the provider never started it or the result was reused (charged before).
    """

    queue_wait_ms: int
    compute_seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def account(
    enqueued_ms: int,
    provider_start_ms: int | None,
    provider_end_ms: int | None,
    reused: bool = False,
) -> Accounting:
    """Queue and compute time of one finished prompt (epoch ms).

    A reused result (its prompt had already finished before this task was sent: an earlier
    submit's work) reports no compute, so it is never charged twice. Clock skew between this
    machine and the provider is clamped at 0.
    """
    if provider_start_ms is None:
        return Accounting(0, 0.0, ("never started",))
    queue = max(0, provider_start_ms - enqueued_ms)
    if reused:
        return Accounting(0, 0.0, ("reused: charged by the submit that ran it",))
    compute = max(0, (provider_end_ms or provider_start_ms) - provider_start_ms) / 1000.0
    return Accounting(queue, compute)
