"""The checks a video passes before it becomes an upload, whichever way it arrived (presigned
PUT, link download), and the store rows either way.

The checks and their codes are the direct upload's (``resources.services.uploads``, whose
``check_balance``, ``check_content_type``, ``UploadRejected`` and ``raw_key`` the routes and
this module use): 402 ``UserQuotaExceeded`` when the account has no tokens, 415
``unsupported_media_type``, 413 ``too_large``, 400 ``empty_file``, 415 ``not_a_video`` (the
container sniff). Accepted bytes are stored under their content key in the workspace (one
object per content) and recorded with
``Store.create_upload`` / ``Store.complete_upload``; a refusal is recorded with
``Store.record_rejection``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import structlog

from resources.media import MediaStore
from resources.services.sniff import SNIFF_BYTES, sniff
from resources.services.uploads import CHUNK, UploadRejected, raw_key
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


@dataclass(frozen=True)
class Inspected:
    """A file that passed the checks: hex ``sha256``, size in ``bytes``, sniffed ``container``."""

    sha256: str
    bytes: int
    container: str

    def media_key(self, workspace_id: str) -> str:
        """Where the bytes are kept: the direct upload's content key in the workspace
        (``resources.services.uploads.raw_key``)."""
        return raw_key(workspace_id, self.sha256, self.container)


def check_size(size: int, max_bytes: int) -> None:
    """Raises UploadRejected (413 ``too_large``) when ``size`` passes ``max_bytes``."""
    if size > max_bytes:
        raise UploadRejected(413, "too_large", f"The file is over the {max_bytes / 1e6:.0f} MB upload limit.")


def inspect_file(path: str | Path, max_bytes: int) -> Inspected:
    """Hash, measure and sniff the file at ``path`` (read once, ``CHUNK`` bytes at a time).

    Raises:
        UploadRejected: 413 ``too_large`` (reading stops there), 400 ``empty_file``, 415
            ``not_a_video``.
    """
    digest, size, head = hashlib.sha256(), 0, b""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            check_size(size, max_bytes)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
    if size == 0:
        raise UploadRejected(400, "empty_file", "The file is empty: nothing was uploaded.")
    container, reason = sniff(head)
    if container is None:
        raise UploadRejected(415, "not_a_video", reason or "not a video")
    return Inspected(sha256=digest.hexdigest(), bytes=size, container=container)


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
    )
    log.info("upload_accepted", video_id=result.upload["video_id"], source=source, bytes=inspected.bytes)
    return result


def record_refusal(
    store: Store,
    user: dict,
    exc: UploadRejected,
    *,
    filename: str,
    content_type: str | None,
    bytes_: int | None = None,
) -> None:
    """Record ``exc`` in ``upload_rejections`` for ``user`` (a ``Store.user`` row or a
    caller's ``user_id``/``workspace_id``) and log it."""
    store.record_rejection(
        user_id=user["user_id"],
        workspace_id=user["workspace_id"],
        filename=filename,
        content_type=content_type or "",
        bytes_=bytes_,
        http_status=exc.status,
        code=exc.code,
        reason=exc.reason,
    )
    log.warning("upload_rejected", code=exc.code, reason=exc.reason, economic_impact="none: rejected before compute")
