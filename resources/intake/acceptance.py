"""The checks a video passes before it becomes an upload, whichever way it arrived (presigned
PUT, link download), and the store rows either way.

The checks and their codes are the direct upload's (``resources.services.uploads``, whose
``check_balance``, ``check_content_type``, ``UploadRejected`` and ``raw_key`` the routes and
this module use): 402 ``UserQuotaExceeded`` when the account has no tokens, 415
``unsupported_media_type``, 413 ``too_large``, 400 ``empty_file``, 415 ``not_a_video`` (the
container sniff). Accepted bytes are stored under their content key in the workspace (one
object per content) and recorded with
``Store.create_upload`` / ``Store.complete_upload``; a refusal is recorded by
``resources.services.uploads.record_refusal``, as for a direct upload.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog

from resources.media import MediaStore
from resources.services.uploads import Inspected, inspect_stream
from resources.store.client import Store
from resources.store.uploads import UploadResult

log = structlog.get_logger("effectlake.intake")

# The MIME type recorded for a file whose client declared none (a link download), by container.
CONTAINER_TYPES = {
    "mp4": "video/mp4",
    "avi": "video/x-msvideo",
    "matroska": "video/x-matroska",
    "mpegts": "video/mp2t",
    "mpegps": "video/mpeg",
    "flv": "video/x-flv",
    "ogg": "video/ogg",
    "asf": "video/x-ms-wmv",
}


def inspect_file(path: str | Path, max_bytes: int) -> Inspected:
    """``resources.services.uploads.inspect_stream`` of the file at ``path``.

    Raises:
        UploadRejected: 413 ``too_large``, 400 ``empty_file``, 415 ``not_a_video``.
    """
    with open(path, "rb") as f:
        return inspect_stream(f, max_bytes)


def store_bytes(media: MediaStore, path: str | Path, key: str) -> None:
    """Put the file under its content ``key`` unless those bytes are stored already."""
    if not media.exists(key):
        media.put_file(key, str(path))


def accept_file(
    store: Store,
    media: MediaStore,
    user: dict,
    path: str | Path,
    *,
    filename: str,
    source: str,
    max_bytes: int,
    admit: Callable[[dict], None] | None = None,
    description: str | None = None,
) -> UploadResult:
    """Accept the local file ``path`` as an upload of ``user`` (``user_id``,
    ``workspace_id``; ``source``: ``link``), recorded with the MIME type of its container.

    Raises:
        UploadRejected: see ``inspect_file``.
    """
    inspected = inspect_file(path, max_bytes)
    key = inspected.media_key(user["workspace_id"])
    store_bytes(media, path, key)
    result = store.create_upload(
        user["user_id"],
        filename=filename,
        content_type=CONTAINER_TYPES[inspected.container],
        sha256=inspected.sha256,
        bytes_=inspected.bytes,
        media_key=key,
        source=source,
        admit=admit,
        description=description,
    )
    log.info("upload_accepted", video_id=result.upload["video_id"], source=source, bytes=inspected.bytes)
    return result
