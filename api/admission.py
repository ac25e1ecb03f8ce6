"""``AdmissionDep``: GPU admission of a new upload, for the upload routes.

A route that creates GPU work declares ``admission: AdmissionDep``; before the route runs it
counts the caller's workspace's unfinished jobs (``Store.gpu_load``) and decides
(``resources.services.admission.decide`` with ``Settings.gpu_queue_per_slot`` and
``gpu_job_seconds``):

- admit / queue → the route runs and gets the ``Admission`` (e.g. to say ``queued``);
- refuse → 429 problem ``gpu_queue_full`` with ``Retry-After`` (seconds); a workspace whose
  quota is 0 → 403 problem ``gpu_quota_zero`` (retrying cannot help).

Every decision is counted (``effectlake_admission_decisions_total{decision}``). This first
count is read before the upload's body, so it refuses early but two concurrent uploads can
both pass it; ``exact_admission`` decides again with the workspace row locked in the insert's
transaction (``resources.store.admission``), which admits exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from api import metrics
from api.deps import CallerDep, SettingsDep, StoreDep
from api.problems import ProblemError
from resources.services.admission import REFUSE, Admission, decide
from resources.settings import Settings


def _refusal(admission: Admission) -> ProblemError:
    """The problem a refused admission answers: 403 ``gpu_quota_zero`` or 429
    ``gpu_queue_full`` with ``Retry-After``."""
    if admission.retry_after_s is None:
        return ProblemError(403, "gpu_quota_zero", "This workspace has no GPU quota: ask an admin to raise it.")
    return ProblemError(
        429,
        "gpu_queue_full",
        f"The workspace has {admission.active} unfinished jobs, its most ({admission.slots} running, "
        f"{admission.capacity - admission.slots} waiting); retry in {admission.retry_after_s} s.",
        headers={"Retry-After": str(admission.retry_after_s)},
    )


def _decide(load: dict, settings: Settings) -> Admission:
    return decide(
        load["active"], load["max_concurrent_gpu_jobs"], settings.gpu_queue_per_slot, settings.gpu_job_seconds
    )


def gpu_admission(request: Request, caller: CallerDep, store: StoreDep, settings: SettingsDep) -> Admission:
    """The admission of one more upload of the caller's workspace, before its body is read
    (a quick refusal; ``exact_admission`` decides again at the insert).

    Raises:
        ProblemError: 429 ``gpu_queue_full`` (with ``Retry-After``) or 403 ``gpu_quota_zero``.
    """
    admission = _decide(store.gpu_load(caller.workspace_id), settings)
    metrics.of(request).admission.labels(admission.decision).inc()
    if admission.decision == REFUSE:
        raise _refusal(admission)
    return admission


AdmissionDep = Annotated[Admission, Depends(gpu_admission)]


def exact_admission(request: Request, settings: Settings) -> Callable[[dict], None]:
    """The ``admit`` hook of ``Store.create_upload``: the same decision on the count taken with
    the workspace row locked in the insert's transaction, so concurrent uploads cannot both
    take a workspace's last place.

    Raises (from the hook):
        ProblemError: as ``gpu_admission``.
    """

    def admit(load: dict) -> None:
        admission = _decide(load, settings)
        if admission.decision == REFUSE:
            metrics.of(request).admission.labels("refuse_at_insert").inc()
            raise _refusal(admission)

    return admit
