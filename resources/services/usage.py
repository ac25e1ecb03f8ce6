"""A user's usage: jobs, compute, storage and tokens (what ``GET /v1/usage`` serves).

Sources:

- jobs and uploaded bytes: the user's uploads in the transactional store (``pending``
  presigned uploads whose bytes never arrived are not jobs, nor is a video sent with an
  effect run: its run is) and the user's effect runs. Uploaded bytes count only the user's
  originals: a duplicate of a colleague's upload shares that upload's stored object.
- compute seconds and output bytes: the lake's execution events of the user's videos and
  runs, one row per task with its latest outcome (``economics.telemetry.finished_executions``),
  for the tasks run for the user — selection ``ranked`` or ``exploration``; the platform's own
  ``shadow`` runs and admins' ``ab`` tests are not the user's usage.
- tokens: the user's balance row in the store (``Store.balance``).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from economics.telemetry import finished_executions
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS
from resources.store.client import Store
from resources.store.models import RUN_SOURCE

USER_SELECTIONS = ("ranked", "exploration")
_PAGE = 1000  # store rows read per query


def _all(fetch: Callable[[str, int, int], list[dict]], user_id: str) -> list[dict]:
    """Every row of a store list paged by ``seq`` (``Store.uploads``, ``Store.effect_runs``)."""
    rows: list[dict] = []
    after = 0
    while batch := fetch(user_id, after, _PAGE):
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
    uploads = [u for u in _all(store.uploads, user_id) if u["status"] != "pending"]
    runs = _all(store.effect_runs, user_id)
    examples = [u for u in uploads if u["source"] != RUN_SOURCE]
    correlation_ids = [u["video_id"] for u in examples] + [r["run_id"] for r in runs]
    uploaded = sum(u["bytes"] or 0 for u in uploads if u["duplicate_of"] is None)
    compute_seconds, output_bytes = 0.0, 0
    if correlation_ids:
        events = lake.scan(EXECUTION_EVENTS).filter(pl.col("correlation_id").is_in(correlation_ids))
        tasks = finished_executions(events)
        tasks = tasks.filter(pl.col("selection").is_in(USER_SELECTIONS))
        compute_seconds = float(tasks["compute_seconds"].fill_null(0).sum())
        output_bytes = int(tasks["output_bytes"].fill_null(0).sum())
    return {
        "user_id": user_id,
        "jobs": len(examples) + len(runs),
        "compute_seconds": compute_seconds,
        "storage_bytes": {"uploads": uploaded, "outputs": output_bytes, "total": uploaded + output_bytes},
        "tokens": tokens,
    }
