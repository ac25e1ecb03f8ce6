"""A video job's status in the transactional store, as the GPU admission counts it.

The stages move an upload's ``status`` (``resources.store.models.UPLOAD_STATUSES``):
``accepted`` or ``rejected`` (M1), ``processing`` (M5 dispatched its tasks), ``done`` (its GPU
work is over: a best result, none usable, no effect fits, or no tokens). The API's admission
(``api/admission.py``) counts the workspace's unfinished ones.
"""

from __future__ import annotations

import structlog

from resources.store.client import Store
from resources.store.errors import UploadNotFound

log = structlog.get_logger("effectlake.jobs")

ACCEPTED, REJECTED, PROCESSING, DONE = "accepted", "rejected", "processing", "done"


def mark_job(store: Store, video_id: str, status: str) -> None:
    """Set the upload's status. A video with no upload row (one written straight into the
    lake, as a backfill or a test does) has no job to count: logged, not raised, so the stage
    that reached this point still records its result."""
    try:
        store.set_upload_status(video_id, status)
    except UploadNotFound:
        log.warning(
            "job_status_not_recorded",
            video_id=video_id,
            status=status,
            economic_impact="none: no workspace GPU slot is held by a video the intake never saw",
            operator_action="none unless the video came through the API",
        )
