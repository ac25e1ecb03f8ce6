"""The store's side of GPU admission: a workspace's GPU slots and unfinished jobs (example
uploads on their way through effect creation, and effect runs).

The decision itself is ``resources.services.admission.decide`` (pure). ``gpu_load`` with
``lock=True`` locks the workspace row first (PostgreSQL ``SELECT … FOR UPDATE``; SQLite's
write transactions are serial anyway), so a caller that counts, decides and inserts the
upload in one ``Store.write()`` transaction admits exactly: two concurrent uploads of one
workspace cannot both take its last place.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from resources.store.errors import UnknownWorkspace
from resources.store.models import RUN_SOURCE, EffectRun, Upload, Workspace

# Uploads that hold or will hold a GPU slot: received, ingested, or with tasks dispatched.
# (pending = bytes not received yet; done and rejected = finished.) An upload that came with
# an effect run (source ``run``) is no job of its own: its run is.
ACTIVE_STATUSES = ("uploaded", "accepted", "processing")
# Effect runs that hold or will hold a GPU slot (resources/store/runs.py).
ACTIVE_RUN_STATUSES = ("queued", "running")


def gpu_load(session: Session, workspace_id: str, lock: bool = False) -> dict:
    """``{workspace_id, max_concurrent_gpu_jobs, active}``: the workspace's slots and its
    unfinished jobs: uploads in ``ACTIVE_STATUSES`` (but the inputs of runs) plus effect runs
    in ``ACTIVE_RUN_STATUSES``.

    Args:
        lock: lock the workspace row until the transaction ends (use in a write transaction).

    Raises:
        UnknownWorkspace: no such workspace.
    """
    query = select(Workspace).where(Workspace.workspace_id == workspace_id)
    workspace = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if workspace is None:
        raise UnknownWorkspace(f"no workspace {workspace_id!r}")
    uploads = session.scalar(
        select(func.count())
        .select_from(Upload)
        .where(Upload.workspace_id == workspace_id, Upload.status.in_(ACTIVE_STATUSES), Upload.source != RUN_SOURCE)
    )
    runs = session.scalar(
        select(func.count())
        .select_from(EffectRun)
        .where(EffectRun.workspace_id == workspace_id, EffectRun.status.in_(ACTIVE_RUN_STATUSES))
    )
    return {
        "workspace_id": workspace_id,
        "max_concurrent_gpu_jobs": workspace.max_concurrent_gpu_jobs,
        "active": int(uploads or 0) + int(runs or 0),
    }
