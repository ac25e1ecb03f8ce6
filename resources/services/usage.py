"""A user's usage: jobs, compute, storage and tokens (what ``GET /v1/usage`` serves).

Sources:

- jobs and uploaded bytes: the user's uploads in the transactional store (``pending``
  presigned uploads whose bytes never arrived are not jobs). Uploaded bytes count only the
  user's originals: a duplicate of a colleague's upload shares that upload's stored object.
- compute seconds and output bytes: the lake's execution events of the user's videos, one
  row per task with its latest outcome (``economics.telemetry.finished_executions``), for
  the tasks run for the user — selection ``ranked`` or ``exploration``; the platform's own
  ``shadow`` runs and admins' ``ab`` tests are not the user's usage.
- tokens: the user's balance row in the store (``Store.balance``).
"""

from __future__ import annotations

import polars as pl

from economics.telemetry import finished_executions
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS
from resources.store.client import Store

USER_SELECTIONS = ("ranked", "exploration")
_PAGE = 1000  # store rows read per query


def _uploads(store: Store, user_id: str) -> list[dict]:
    rows: list[dict] = []
    after = 0
    while batch := store.uploads(user_id, after, _PAGE):
        rows += batch
        after = batch[-1]["seq"]
    return rows


def usage(store: Store, lake: Lake, user_id: str) -> dict:
    """The usage of ``user_id`` (module docstring).

    Returns:
        ``{user_id, jobs, compute_seconds, storage_bytes: {uploads, outputs, total},
        tokens}`` — ``compute_seconds`` in seconds (float), bytes as ints, ``tokens`` the
        ``economics.ledger.BALANCE_SCHEMA`` row.

    Raises:
        resources.store.errors.UnknownUser: no such user.
    """
    tokens = store.balance(user_id)
    uploads = [u for u in _uploads(store, user_id) if u["status"] != "pending"]
    video_ids = [u["video_id"] for u in uploads]
    uploaded = sum(u["bytes"] or 0 for u in uploads if u["duplicate_of"] is None)
    compute_seconds, output_bytes = 0.0, 0
    if video_ids:
        tasks = finished_executions(lake.scan(EXECUTION_EVENTS).filter(pl.col("correlation_id").is_in(video_ids)))
        tasks = tasks.filter(pl.col("selection").is_in(USER_SELECTIONS))
        compute_seconds = float(tasks["compute_seconds"].fill_null(0).sum())
        output_bytes = int(tasks["output_bytes"].fill_null(0).sum())
    return {
        "user_id": user_id,
        "jobs": len(uploads),
        "compute_seconds": compute_seconds,
        "storage_bytes": {"uploads": uploaded, "outputs": output_bytes, "total": uploaded + output_bytes},
        "tokens": tokens,
    }
