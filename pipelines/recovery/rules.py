"""What is stuck and what to do about it: the pure decisions of the orphan-recovery sensor
(docs/architecture.md, "Recovery"). No Dagster, no I/O: ``pipelines.recovery.facts`` gathers
a ``VideoFacts`` per watched video, ``decide`` answers, ``pipelines.recovery.sensor`` applies.

A video's chain waits on four kinds of run (``PHASES``). Which one it waits on follows from
what the lake and the store hold (``phase``); a video waits on none when it has ended (an end
event), waits for an admin (an approval request, undecided), or has remote tasks the remote
task sensor still follows within their own deadlines.

A video is stuck when it waits on a run, no run of its partition is live, and nothing was
recorded for it for ``Policy.stuck_after_s``. Then, per phase: the phase's job is started
again (``Requeue``, at most ``Policy.requeues`` times: stages are re-entrant, the ledger and
the event ids make a repeat change nothing), and after that the video is failed and its job
refunded with a reason the user can read (``Abandon``). Each resolution is numbered (the
requeue's attempt) and recorded as an event of a deterministic id, so a second tick that sees
the same facts decides the same thing and it is applied once: a requeued run is live (or has
recorded something) on the next tick, and an abandoned video has an end event.

Effect runs (``RunFacts``, ``decide_run``) wait on one job, ``effect_run_job`` of their
partition (phase ``run``). A run is stuck when it is not final, no provider is working on its
remote task (the remote task sensor follows those, within their deadlines and the run's), no
run of its partition is live, and nothing was recorded for it for ``Policy.stuck_after_s``.
Then its job is started again if its work can still finish — it never started, a remote
result is waiting to be collected, or its deadline has not passed — at most
``Policy.requeues`` times; otherwise it is failed and its tokens refunded (``Abandon``), in
one compare-and-set with its status in the store, so it is settled once whoever gets there
first (its own run, or this).

Times are tz-aware UTC datetimes; durations seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

INTAKE, COLLECT, EVALUATE, PUBLISH = "intake", "collect", "evaluate", "publish"
PHASES = (INTAKE, COLLECT, EVALUATE, PUBLISH)
RUN = "run"  # an effect run's one phase: its effect_run_job
# The job that moves a video (or an effect run) on from each phase (pipelines/jobs.py).
JOB_OF_PHASE = {
    INTAKE: "intake_job",
    COLLECT: "collect_job",
    EVALUATE: "evaluation_job",
    PUBLISH: "publish_job",
    RUN: "effect_run_job",
}

STAGE = "recovery"
REQUEUED_EVENT = "RecoveryRequeued"
ABANDONED_EVENT = "VideoAbandoned"
RUN_ABANDONED_EVENT = "RunAbandoned"
# Effect run states that still need work (resources/store/runs.py: queued, running).
UNFINISHED_RUN = frozenset({"queued", "running"})
# A video with one of these events has ended: published, rejected at the door, rejected by an
# admin, nothing usable, nothing to make, no analysis, no tokens, or given up by recovery.
END_EVENTS = frozenset(
    {
        "EffectPublished",
        "EffectRejected",
        "VideoRejected",
        "NoUsableResult",
        "NoTargetEffect",
        "NoEligibleEffects",
        "AnalysisFailed",
        "UserQuotaExceeded",
        ABANDONED_EVENT,
    }
)
# Remote task states the remote task sensor still works on (its deadlines bound them).
REMOTE_FOLLOWED = frozenset({"waiting", "submitting", "submitted", "cancelling"})

# What the user reads when their video is given up, per phase (the notification's body adds
# the refund).
USER_REASONS = {
    INTAKE: "processing your video stopped before its effects were made, and restarting it did not help",
    COLLECT: "the results of the GPU provider for your video could not be collected",
    EVALUATE: "the results made for your video could not be scored and compared",
    PUBLISH: "your approved effect could not be published",
    RUN: "making your video stopped before it was finished, and it could not be completed in time",
}


@dataclass(frozen=True)
class Policy:
    """When a video counts as stuck and how often its phase is started again.

    Attributes:
        stuck_after_s: seconds without a live run and without anything recorded.
        requeues: runs started again per phase before the video is failed and refunded.
    """

    stuck_after_s: float = 900.0
    requeues: int = 2


@dataclass(frozen=True)
class VideoFacts:
    """What the store, the lake and the Dagster instance say about one watched video.

    Attributes:
        video_id: the video (its ``videos`` partition, its job ``economics.ledger.job_id``).
        since: when it came under watch (upload, reservation, delivery or decision time).
        last_activity: the latest of its pipeline events, its runs' starts and the sensor's
            own resumption after an outage (None: nothing known beyond ``since``).
        live_run: a run of its partition is queued or running with a live worker.
        events: the pipeline event types it recorded.
        dispatched / finished: task ids with a ``TaskDispatched`` / a terminal event.
        remote_states: the states of its remote tasks not yet collected.
        best_outcome: its ``best_result`` outcome (``selected``, ``no_usable_result``) or None.
        approval_requested: its approval request exists.
        decided: an admin decided on it.
        revised: its gallery revision exists (written by M10 after the decision).
        requeued: phase → how many times recovery started that phase's job again.
    """

    video_id: str
    since: datetime
    last_activity: datetime | None = None
    live_run: bool = False
    events: frozenset[str] = frozenset()
    dispatched: frozenset[str] = frozenset()
    finished: frozenset[str] = frozenset()
    remote_states: tuple[str, ...] = ()
    best_outcome: str | None = None
    approval_requested: bool = False
    decided: bool = False
    revised: bool = False
    requeued: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Requeue:
    """Start ``job`` again for the video (the ``attempt``-th time for ``phase``)."""

    video_id: str
    phase: str
    job: str
    attempt: int
    quiet_s: float

    @property
    def run_key(self) -> str:
        """The run key: one run per (video, phase, attempt), however often it is asked."""
        return f"recover:{self.video_id}:{self.phase}:{self.attempt}"


@dataclass(frozen=True)
class Abandon:
    """Fail the video, refund its job and tell the user ``reason``."""

    video_id: str
    phase: str
    requeues: int
    quiet_s: float

    @property
    def reason(self) -> str:
        """Why, in the user's words."""
        return USER_REASONS[self.phase]

    @property
    def details(self) -> dict:
        """The payload of the abandon event: phase, requeues, quiet seconds (0.1 s), reason."""
        quiet_s = round(self.quiet_s, 1)
        return {"phase": self.phase, "requeues": self.requeues, "quiet_s": quiet_s, "reason": self.reason}


def phase(f: VideoFacts) -> str | None:
    """The run ``f``'s video waits on (one of ``PHASES``), or None when it waits on no run:
    ended, waiting for an admin, or with remote tasks the remote task sensor follows."""
    if f.events & END_EVENTS:
        return None
    if f.decided:
        return None if f.revised else PUBLISH
    if f.best_outcome is not None:
        # Selected but never put before an admin (the run stopped between M5 and M9).
        return EVALUATE if f.best_outcome == "selected" and not f.approval_requested else None
    if any(s in REMOTE_FOLLOWED for s in f.remote_states):
        return None
    if f.remote_states:  # every remote task finished, some not collected
        return COLLECT
    if f.dispatched and f.dispatched <= f.finished:
        return EVALUATE
    return INTAKE


def quiet_for(f: VideoFacts | RunFacts, now: datetime) -> float:
    """Seconds since anything was recorded for the video or run (or since it came under
    watch)."""
    last = max(f.since, f.last_activity) if f.last_activity is not None else f.since
    return max(0.0, (now - last).total_seconds())


def decide(f: VideoFacts, policy: Policy, now: datetime) -> Requeue | Abandon | None:
    """What to do about ``f``'s video now: nothing (not waiting on a run, a run is live, or
    it was quiet for less than ``policy.stuck_after_s``), start its phase's job again, or —
    once that was done ``policy.requeues`` times for this phase — fail and refund it."""
    waits_on = phase(f)
    if waits_on is None or f.live_run:
        return None
    quiet = quiet_for(f, now)
    if quiet < policy.stuck_after_s:
        return None
    done = int(f.requeued.get(waits_on, 0))
    if done < policy.requeues:
        return Requeue(f.video_id, waits_on, JOB_OF_PHASE[waits_on], done + 1, quiet)
    return Abandon(f.video_id, waits_on, done, quiet)


def waits_on_a_run(f: VideoFacts) -> bool:
    """True while the video waits on one of ``PHASES`` (a delivered or decided video stays
    under watch that long)."""
    return phase(f) is not None


def settled_status(f: VideoFacts) -> str | None:
    """The upload status an ended video should have (``rejected`` after ``VideoRejected``,
    else ``done``), None while it has not ended: a stage that died between its end event and
    its status change would otherwise hold the workspace's GPU slot for good."""
    if not f.events & END_EVENTS:
        return None
    return "rejected" if "VideoRejected" in f.events else "done"


@dataclass(frozen=True)
class RunFacts:
    """What the store, the lake and the Dagster instance say about one unfinished effect run.

    Attributes:
        run_id: the run (its ``runs`` partition, its ledger job ``economics.ledger.job_id``).
        status: its store status (``queued`` or ``running``; a final one needs nothing).
        since: when it was queued.
        deadline: its start + ``Settings.run_deadline_s`` (None: it never started).
        last_activity: the latest of its pipeline events, its partition's runs' starts and
            the sensor's own resumption after an outage (None: nothing beyond ``since``).
        live_run: a run of its partition is queued or running with a live worker.
        remote_states: the states of its remote tasks not yet collected.
        requeued: how many times recovery started its job again.
    """

    run_id: str
    status: str
    since: datetime
    deadline: datetime | None = None
    last_activity: datetime | None = None
    live_run: bool = False
    remote_states: tuple[str, ...] = ()
    requeued: int = 0


def run_waits(f: RunFacts) -> bool:
    """True while the run waits on a run of its job: not final, and no remote task of it is
    still with its provider (the remote task sensor follows those, and stops one at the run's
    deadline)."""
    return f.status in UNFINISHED_RUN and not any(s in REMOTE_FOLLOWED for s in f.remote_states)


def run_can_finish(f: RunFacts, now: datetime) -> bool:
    """True when starting the run's job again may still deliver: it never started, a
    finished remote result waits to be collected (gate and delivery remain), or its deadline
    has not passed."""
    return f.status == "queued" or "finished" in f.remote_states or (f.deadline is not None and now < f.deadline)


def decide_run(f: RunFacts, policy: Policy, now: datetime) -> Requeue | Abandon | None:
    """What to do about ``f``'s run now: nothing (it does not wait on a run, one is live, or
    it was quiet for less than ``policy.stuck_after_s``), start its ``effect_run_job`` again
    (when its work can still finish, at most ``policy.requeues`` times), else fail it and
    refund its tokens."""
    if not run_waits(f) or f.live_run:
        return None
    quiet = quiet_for(f, now)
    if quiet < policy.stuck_after_s:
        return None
    if run_can_finish(f, now) and f.requeued < policy.requeues:
        return Requeue(f.run_id, RUN, JOB_OF_PHASE[RUN], f.requeued + 1, quiet)
    return Abandon(f.run_id, RUN, f.requeued, quiet)
