"""Upload intake: the checks an upload passes before it is accepted, and what is recorded
either way.

In order: the user's account must have tokens (a paused account is refused before a byte is
read), the declared content type must be a video type (or the generic
``application/octet-stream``), the size must stay under the limit, the file must not be empty
and its first bytes must be a video container (``resources.services.sniff``). An accepted
upload is stored in the media store under its content hash within the workspace and gets an
``uploads`` row in the transactional store (random ``video_id``; the same user sending the
same bytes again gets their existing upload back); a refused one gets an
``upload_rejections`` row with the HTTP status, a machine code and a readable reason. The
store keeps the client's filename sanitized (``resources.filenames``): a label, never a path.
Both tables are landed in the lake's bronze tables in batches.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import structlog

from resources.filenames import sanitize_filename
from resources.media import MediaStore
from resources.services.sniff import SNIFF_BYTES, sniff
from resources.store.client import Store

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
        filename: the client's file name, as sent (stored sanitized by the store).
        content_type: the declared MIME type, possibly with parameters; None = not declared.
        user_id: who uploads (the authenticated caller, never a form field).
        workspace_id: the caller's workspace (de-duplication scope).
        priorities: the caller's priority weights as JSON (already validated), None =
            balanced.
        description: the caller's words for the effect they want (already bounded), None =
            none given.
        source: how it arrived (``resources.store.models.UPLOAD_SOURCES``): ``upload`` (an
            example for effect creation) or ``run`` (the input of an effect run, which starts
            no creation job).
    """

    stream: BinaryIO
    filename: str | None
    content_type: str | None
    user_id: str
    workspace_id: str
    priorities: str | None = None
    description: str | None = None
    source: str = "upload"


@dataclass(frozen=True)
class AcceptedUpload:
    """An accepted upload: ``video_id`` (random, from the store), whether the caller had
    already uploaded these bytes (``duplicate``: their existing upload is returned, nothing
    new was stored) and their size in bytes."""

    video_id: str
    duplicate: bool
    bytes: int


def receive_upload(
    store: Store,
    media: MediaStore,
    upload: IncomingUpload,
    *,
    max_upload_bytes: int,
    admit: Callable[[dict], None] | None = None,
) -> AcceptedUpload:
    """Accept ``upload`` or record why not.

    Args:
        max_upload_bytes: size limit, bytes (``Settings.max_upload_bytes``).
        admit: the GPU admission decided at the insert (``Store.create_upload``'s ``admit``).

    Raises:
        UploadRejected: 402 ``UserQuotaExceeded`` (no tokens available), 415
            ``unsupported_media_type``, 413 ``too_large``, 400 ``empty_file``, 415
            ``not_a_video``; the rejection is recorded in the store's ``upload_rejections``
            first.
        resources.store.errors.StoreError: the store refused (e.g. ``StoreBusy``).
    """
    try:
        return accept_upload(store, media, upload, max_upload_bytes=max_upload_bytes, admit=admit)
    except UploadRejected as exc:
        record_rejection(store, upload, exc)
        raise


def check_content_type(content_type: str | None) -> str:
    """The bare, lower-cased MIME type of a declared ``content_type`` (None = octet-stream).

    Raises:
        UploadRejected: 415 ``unsupported_media_type`` when it is not a video type we accept.
    """
    bare = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if bare not in ACCEPTED_CONTENT_TYPES:
        raise UploadRejected(415, "unsupported_media_type", f"Content type {bare} is not a video type we accept.")
    return bare


def check_balance(store: Store, user_id: str) -> None:
    """Refuse a paused account before a byte is read (spending pauses at 100% of the balance).

    Raises:
        UploadRejected: 402 ``UserQuotaExceeded``.
    """
    available = store.balance(user_id)["available"]
    if available <= 0:
        raise UploadRejected(
            402,
            "UserQuotaExceeded",
            f"You have no tokens left ({available} available); new jobs are paused until the account is topped up.",
        )


def raw_key(workspace_id: str, sha256: str, container: str) -> str:
    """Media key of an upload's raw bytes: content-addressed inside the workspace, so the same
    bytes are stored once per workspace and never shared across tenants."""
    return f"raw/{workspace_id}/{sha256}{EXTENSION[container]}"


@dataclass(frozen=True)
class Inspected:
    """Bytes that passed the checks: hex ``sha256``, size in ``bytes``, sniffed ``container``."""

    sha256: str
    bytes: int
    container: str

    def media_key(self, workspace_id: str) -> str:
        """Where the bytes are kept: their content key in the workspace (``raw_key``)."""
        return raw_key(workspace_id, self.sha256, self.container)


def check_size(size: int, max_bytes: int) -> None:
    """Raises UploadRejected (413 ``too_large``) when ``size`` passes ``max_bytes``."""
    if size > max_bytes:
        raise UploadRejected(413, "too_large", f"The file is over the {max_bytes / 1e6:.0f} MB upload limit.")


def inspect_stream(stream: BinaryIO, max_bytes: int, sink: BinaryIO | None = None) -> Inspected:
    """Hash, measure and sniff ``stream`` in one pass (``CHUNK`` bytes at a time, so memory
    stays flat), copying it to ``sink`` when given. Every way an upload arrives (multipart,
    presigned PUT, link download) passes through here.

    Raises:
        UploadRejected: 413 ``too_large`` (reading stops there), 400 ``empty_file``, 415
            ``not_a_video``.
    """
    digest, size, head = hashlib.sha256(), 0, b""
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        check_size(size, max_bytes)
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    if size == 0:
        raise UploadRejected(400, "empty_file", "The file is empty: nothing was uploaded.")
    container, reason = sniff(head)
    if container is None:
        raise UploadRejected(415, "not_a_video", reason or "not a video")
    return Inspected(sha256=digest.hexdigest(), bytes=size, container=container)


def accept_upload(
    store: Store,
    media: MediaStore,
    upload: IncomingUpload,
    *,
    max_upload_bytes: int,
    admit: Callable[[dict], None] | None = None,
) -> AcceptedUpload:
    """The checks and the storing of ``receive_upload``, without recording a rejection.

    The bytes are stored before the row is written: a row never points at a missing object.
    If the row cannot be written the object stays under its content key, where the next
    upload of the same bytes in the workspace finds it (it is not an orphan of a row).

    Raises:
        UploadRejected: see ``receive_upload``.
    """
    check_balance(store, upload.user_id)
    content_type = check_content_type(upload.content_type)
    with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
        inspected = inspect_stream(upload.stream, max_upload_bytes, sink=tmp)
        tmp.flush()
        key = inspected.media_key(upload.workspace_id)
        if not media.exists(key):
            media.put_file(key, tmp.name)
    result = store.create_upload(
        upload.user_id,
        filename=upload.filename or "upload",
        content_type=content_type,
        sha256=inspected.sha256,
        bytes_=inspected.bytes,
        media_key=key,
        source=upload.source,
        status="uploaded",
        priorities=upload.priorities,
        description=upload.description,
        admit=admit,
    )
    video_id = result.upload["video_id"]
    log.info("upload_accepted", video_id=video_id, bytes=inspected.bytes, duplicate=result.duplicate)
    return AcceptedUpload(video_id=video_id, duplicate=result.duplicate, bytes=inspected.bytes)


def record_rejection(store: Store, upload: IncomingUpload, exc: UploadRejected) -> None:
    """Record the ``upload_rejections`` row of a refused direct upload (and log it), as every
    way in does (``record_refusal``)."""
    user = {"user_id": upload.user_id, "workspace_id": upload.workspace_id}
    record_refusal(store, user, exc, filename=upload.filename or "", content_type=upload.content_type)


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
    caller's ``user_id``/``workspace_id``) and log it; the store keeps the filename
    sanitized."""
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
    log.warning(
        "upload_rejected",
        code=exc.code,
        reason=exc.reason,
        filename=sanitize_filename(filename) if filename else None,
        event_type="upload_rejected",
        economic_impact_usd=0.0,  # rejected before any compute
        urgency="low",
        operator_action="None unless rejections spike.",
        runbook="docs/runbooks/platform-logs.md#upload_rejected",
    )
