"""``AdmissionDep``: GPU admission of a new upload, for the upload routes.

A route that creates GPU work declares ``admission: AdmissionDep``; before the route runs it
counts the caller's workspace's unfinished jobs (``Store.gpu_load``) and decides
(``resources.services.admission.decide`` with ``Settings.gpu_queue_per_slot`` and
``gpu_job_seconds``):

- admit / queue → the route runs and gets the ``Admission`` (e.g. to say ``queued``);
- refuse → 429 problem ``gpu_queue_full`` with ``Retry-After`` (seconds); a workspace whose
  quota is 0 → 403 problem ``gpu_quota_zero`` (retrying cannot help).

Every decision is counted (``effectlake_admission_decisions_total{decision}``). The count is
read before the upload is inserted, so two concurrent uploads can both take a last place;
an exact check counts with the workspace row locked in the insert's transaction
(``resources.store.admission``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api import metrics
from api.deps import CallerDep, SettingsDep, StoreDep
from api.problems import ProblemError
from resources.services.admission import REFUSE, Admission, decide


def gpu_admission(request: Request, caller: CallerDep, store: StoreDep, settings: SettingsDep) -> Admission:
    """The admission of one more upload of the caller's workspace.

    Raises:
        ProblemError: 429 ``gpu_queue_full`` (with ``Retry-After``) or 403 ``gpu_quota_zero``.
    """
    load = store.gpu_load(caller.workspace_id)
    admission = decide(
        load["active"], load["max_concurrent_gpu_jobs"], settings.gpu_queue_per_slot, settings.gpu_job_seconds
    )
    metrics.of(request).admission.labels(admission.decision).inc()
    if admission.decision == REFUSE:
        if admission.retry_after_s is None:
            raise ProblemError(403, "gpu_quota_zero", "This workspace has no GPU quota: ask an admin to raise it.")
        raise ProblemError(
            429,
            "gpu_queue_full",
            f"The workspace has {admission.active} unfinished jobs, its most ({admission.slots} running, "
            f"{admission.capacity - admission.slots} waiting); retry in {admission.retry_after_s} s.",
            headers={"Retry-After": str(admission.retry_after_s)},
        )
    return admission


AdmissionDep = Annotated[Admission, Depends(gpu_admission)]
