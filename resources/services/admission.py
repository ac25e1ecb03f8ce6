"""GPU admission per workspace: admit, queue or refuse a new upload (pure; no I/O).

Each workspace has ``max_concurrent_gpu_jobs`` GPU slots (the store's ``workspaces`` row).
Its *active* jobs are its unfinished uploads (``resources.store.admission.ACTIVE_STATUSES``:
uploaded, accepted, processing). For a new upload:

- fewer active jobs than slots → **admit**: it can run as soon as the pipeline reaches it;
- fewer than ``slots × (1 + queue_per_slot)`` → **queue**: accepted, it waits for a slot;
- otherwise → **refuse** (429) with ``Retry-After``; with no slots at all (a quota of 0:
  GPU work switched off for the workspace) → refuse with no retry time (403).

Why ``queue_per_slot`` (default 2: ``Settings.gpu_queue_per_slot``): a queued upload then
waits at most about two jobs' time per slot before its GPU work starts, which a user still
experiences as progress; a longer queue only hides a wait a refusal states honestly, ties up
the tokens reserved for the queued jobs and lets one workspace fill the shared pipeline's
backlog ahead of the others. Refusing at the door costs the client one retry; queueing
without bound costs every other workspace.

The ``Retry-After`` is an estimate: the jobs beyond the queue's capacity drain at ``slots``
jobs per ``job_seconds`` (``Settings.gpu_job_seconds``), so the wait is
``ceil((active − capacity + 1) / slots) × job_seconds`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ADMIT, QUEUE, REFUSE = "admit", "queue", "refuse"


@dataclass(frozen=True)
class Admission:
    """The decision for one new upload.

    Attributes:
        decision: ``admit``, ``queue`` or ``refuse``.
        active: the workspace's unfinished jobs before this one.
        slots: its ``max_concurrent_gpu_jobs``.
        capacity: most unfinished jobs it may have (running + queued).
        retry_after_s: for a refusal, seconds to wait before retrying (None: retrying will
            not help until the quota is raised); None otherwise.
    """

    decision: Literal["admit", "queue", "refuse"]
    active: int
    slots: int
    capacity: int
    retry_after_s: int | None = None


def decide(active: int, slots: int, queue_per_slot: int, job_seconds: int) -> Admission:
    """Admit, queue or refuse one more job (module docstring).

    Args:
        active: unfinished jobs of the workspace (≥ 0).
        slots: its concurrent GPU jobs (≥ 0).
        queue_per_slot: jobs that may wait per slot (≥ 0).
        job_seconds: typical GPU time of one job, seconds (≥ 1).

    Raises:
        ValueError: a negative count, or ``job_seconds`` < 1.
    """
    if min(active, slots, queue_per_slot) < 0 or job_seconds < 1:
        raise ValueError("active, slots and queue_per_slot must be ≥ 0 and job_seconds ≥ 1")
    capacity = slots * (1 + queue_per_slot)
    if active < slots:
        return Admission(ADMIT, active, slots, capacity)
    if active < capacity:
        return Admission(QUEUE, active, slots, capacity)
    retry = None if slots == 0 else math.ceil((active - capacity + 1) / slots) * job_seconds
    return Admission(REFUSE, active, slots, capacity, retry)
