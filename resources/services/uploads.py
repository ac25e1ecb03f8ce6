"""Upload intake: the checks an upload passes before it is accepted, and what is recorded
either way.

In order: the user's account must have tokens (a paused account is refused before a byte is
read), the declared content type must be a video type (or the generic
``application/octet-stream``), the size must stay under the limit, the file must not be empty
and its first bytes must be a video container (``resources.services.sniff``). An accepted
upload is stored in the media store under its content hash and gets an ``uploads`` row
(once: the same bytes uploaded twice give the same ``video_id`` and one row); a refused one
gets an ``upload_rejections`` row with the HTTP status, a machine code and a readable reason.
Both rows store the client's filename sanitized as the SQL store does
(``resources.filenames``): a label, never a path.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

import polars as pl
import structlog

from resources.events import stable_id, utcnow
from resources.filenames import sanitize_filename
from resources.lake import Lake
from resources.media import MediaStore
from resources.schemas import UPLOAD_REJECTIONS, UPLOADS
from resources.services.accounts import ensure_welcome_credit
from resources.services.sniff import SNIFF_BYTES, sniff

log = structlog.get_logger("effectlake.intake")

ACCEPTED_CONTENT_TYPES = {
    "video/mp4",
    "video/quicktime",
    "video/x-msvideo",
    "video/avi",
    "video/msvideo",
    "video/webm",
    "video/x-matroska",
    "video/mpeg",
    "video/mp2t",
    "video/x-flv",
    "video/ogg",
    "video/x-ms-wmv",
    "video/3gpp",
    # Many clients (curl -F without type, mobile uploaders) send this for any file; the
    # container sniff decides.
    "application/octet-stream",
}
# Extension of the stored raw file per sniffed container.
EXTENSION = {
    "mp4": ".mp4",
    "avi": ".avi",
    "matroska": ".mkv",
    "mpegts": ".ts",
    "mpegps": ".mpg",
    "flv": ".flv",
    "ogg": ".ogv",
    "asf": ".wmv",
}
CHUNK = 1 << 20  # bytes read at a time: memory stays flat whatever the upload size


class UploadRejected(Exception):
    """An upload refused at the door: HTTP ``status``, machine ``code``, readable ``reason``."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass(frozen=True)
class IncomingUpload:
    """What a client sent.

    Attributes:
        stream: the file's bytes, readable once.
        filename: the client's file name, as sent (stored through ``sanitize_filename``).
        content_type: the declared MIME type, possibly with parameters; None = not declared.
        user_id: who uploads.
    """

    stream: BinaryIO
    filename: str | None
    content_type: str | None
    user_id: str


@dataclass(frozen=True)
class AcceptedUpload:
    """An accepted upload: ``video_id`` (first 24 hex digits of the bytes' sha256), whether
    those bytes were already uploaded (``duplicate``: nothing new was stored) and their size
    in bytes."""

    video_id: str
    duplicate: bool
    bytes: int


def receive_upload(
    lake: Lake, media: MediaStore, upload: IncomingUpload, *, max_upload_bytes: int, welcome_credit_tokens: int
) -> AcceptedUpload:
    """Accept ``upload`` or record why not.

    Args:
        max_upload_bytes: size limit, bytes (``Settings.max_upload_bytes``).
        welcome_credit_tokens: tokens credited once to a new account
            (``Settings.welcome_credit_tokens``).

    Raises:
        UploadRejected: 402 ``UserQuotaExceeded`` (no tokens available), 415
            ``unsupported_media_type``, 413 ``too_large``, 400 ``empty_file``, 415
            ``not_a_video``; the rejection is recorded in ``upload_rejections`` first.
    """
    try:
        return accept_upload(
            lake, media, upload, max_upload_bytes=max_upload_bytes, welcome_credit_tokens=welcome_credit_tokens
        )
    except UploadRejected as exc:
        record_rejection(lake, upload, exc)
        raise


def accept_upload(
    lake: Lake, media: MediaStore, upload: IncomingUpload, *, max_upload_bytes: int, welcome_credit_tokens: int
) -> AcceptedUpload:
    """The checks and the storing of ``receive_upload``, without recording a rejection.

    Raises:
        UploadRejected: see ``receive_upload``.
    """
    user_id = upload.user_id
    # Refuse a paused account before reading a byte (spending pauses at 100% of the balance).
    available = ensure_welcome_credit(lake, user_id, welcome_credit_tokens)["available"]
    if available <= 0:
        raise UploadRejected(
            402,
            "UserQuotaExceeded",
            f"User {user_id} has no tokens left ({available} available); "
            "new jobs are paused until the account is topped up.",
        )
    content_type = (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise UploadRejected(
            415, "unsupported_media_type", f"Content type {content_type} is not a video type we accept."
        )
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
        head = b""
        while chunk := upload.stream.read(CHUNK):
            size += len(chunk)
            if size > max_upload_bytes:
                raise UploadRejected(
                    413, "too_large", f"The file is over the {max_upload_bytes / 1e6:.0f} MB upload limit."
                )
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            tmp.write(chunk)
        tmp.flush()
        if size == 0:
            raise UploadRejected(400, "empty_file", "The file is empty: nothing was uploaded.")
        container, reason = sniff(head)
        if container is None:
            raise UploadRejected(415, "not_a_video", reason)
        sha = digest.hexdigest()
        video_id = sha[:24]
        key = f"raw/{sha}{EXTENSION[container]}"
        existing = lake.read(UPLOADS, pl.col("video_id") == video_id)
        if existing.is_empty():
            media.put_file(key, tmp.name)
            lake.append(
                UPLOADS,
                pl.DataFrame(
                    [
                        {
                            "video_id": video_id,
                            "sha256": sha,
                            "user_id": user_id,
                            "filename": sanitize_filename(upload.filename),
                            "content_type": content_type,
                            "bytes": size,
                            "media_key": key,
                            "source": "api",
                            "uploaded_at": utcnow(),
                        }
                    ]
                ),
            )
    log.info("upload_accepted", video_id=video_id, bytes=size, duplicate=not existing.is_empty())
    return AcceptedUpload(video_id=video_id, duplicate=not existing.is_empty(), bytes=size)


def record_rejection(lake: Lake, upload: IncomingUpload, exc: UploadRejected) -> None:
    """Append the ``upload_rejections`` row of a refused upload (and log it); the filename is
    sanitized, or None when the client sent none."""
    now = utcnow()
    filename = None if upload.filename is None else sanitize_filename(upload.filename)
    lake.append(
        UPLOAD_REJECTIONS,
        pl.DataFrame(
            [
                {
                    "rejection_id": stable_id("upload_rejection", upload.user_id, upload.filename, now.isoformat()),
                    "user_id": upload.user_id,
                    "filename": filename,
                    "content_type": upload.content_type,
                    "bytes": None,
                    "http_status": exc.status,
                    "code": exc.code,
                    "reason": exc.reason,
                    "rejected_at": now,
                }
            ]
        ),
    )
    log.warning(
        "upload_rejected",
        code=exc.code,
        reason=exc.reason,
        filename=filename,
        economic_impact="none: rejected before any compute",
        operator_action="none unless rejections spike",
    )
