"""The upload sensor's feed from the store: which upload rows start an intake run, and the
cursor that remembers where the sensor is (pure: rows in, decisions out; no Dagster, no I/O).

The sensor reads the uploads past its cursor (``changes.recent``: every committed row at
once, a cursor that only moves over the settled prefix) and starts an intake run for each
received upload. A presigned upload is inserted ``pending`` and completed later *in place*
(same ``seq``), so a seq cursor alone would pass it while its bytes are missing and never
see it complete: the cursor also names the pending uploads it has passed, and each tick
re-reads those rows by id until they are received, folded into another upload (deleted), or
older than ``PENDING_WATCH`` (a presigned URL expires long before). A promoted run input
(``uploads._promote``) is re-inserted under a new seq, so the seq cursor brings it back.

Reading a row twice is harmless: the sensor skips videos that already have a partition and
its run key is the video id, so an upload starts its intake run exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from resources.store.models import RUN_SOURCE

# How long a presigned upload landed or passed while ``pending`` is watched for its
# completion: as long as a presigned URL can be used, with a wide margin.
PENDING_WATCH = timedelta(days=1)
# An upload whose bytes are stored and that no stage has finished or refused yet.
RECEIVED_STATUSES = ("uploaded", "accepted")


def received(upload: dict) -> bool:
    """The upload's bytes are stored, it awaits intake, and it is an example to build from
    (not an effect run's input, source ``run``: that run processes it)."""
    return (
        upload.get("media_key") is not None
        and upload.get("status") in RECEIVED_STATUSES
        and upload.get("source") != RUN_SOURCE
    )


@dataclass(frozen=True)
class UploadCursor:
    """Where the upload sensor is: every upload with ``seq <= seq`` has been examined, and
    ``pending`` are the video ids among them still waiting for their bytes."""

    seq: int = 0
    pending: tuple[str, ...] = ()

    def encode(self) -> str:
        """The Dagster sensor cursor string (JSON)."""
        return json.dumps({"seq": self.seq, "pending": list(self.pending)})

    @classmethod
    def decode(cls, raw: str | None) -> UploadCursor:
        """The cursor ``encode`` wrote; the start (seq 0) for none or for a cursor of another
        form (the bronze-era cursor was a Delta version): re-reading from the start is safe,
        the sensor skips videos already partitioned."""
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            return cls()
        return cls(int(value.get("seq", 0)), tuple(value.get("pending", ())))


def advance_cursor(
    cursor: UploadCursor, rows: list[dict], settled: int, watched: list[dict], now: datetime
) -> tuple[list[dict], UploadCursor]:
    """(the received uploads among ``rows`` and ``watched``, the next cursor).

    Args:
        rows: the store's upload rows past ``cursor.seq`` (``changes.recent``), seq order.
        settled: the settled cursor ``changes.recent`` returned with them.
        watched: the current store rows of ``cursor.pending`` (``uploads.by_ids``; a folded
            upload is absent).
        now: the reader's clock (UTC), for ``PENDING_WATCH``.
    """
    seen: dict[str, dict] = {}
    for row in [*watched, *rows]:
        seen[row["video_id"]] = row
    start = now - PENDING_WATCH
    pending = sorted(v for v, r in seen.items() if r["status"] == "pending" and r["uploaded_at"] > start)
    return [r for r in seen.values() if received(r)], UploadCursor(max(settled, cursor.seq), tuple(pending))
