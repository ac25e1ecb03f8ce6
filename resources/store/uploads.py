"""Uploads and upload rejections.

``video_id`` is random (``v_…``), never derived from the bytes. The content hash ``sha256``
de-duplicates within a workspace only — another workspace's file is never found, so nothing
tells one tenant about another's uploads:

* the same user sends the same bytes again → their existing upload is returned
  (``created=False``) — unless it came as an effect run's input (source ``run``) and now
  comes as an example: then the same video becomes an example upload (``_promote``,
  ``created=True``) and its creation job starts;
* another user of the same workspace sends them → a new upload of their own, pointing at the
  workspace's first one in ``duplicate_of`` and reusing its ``media_key`` (one media object);
* another workspace → an independent upload.

Presigned uploads are created ``pending`` without a hash and get one in ``complete_upload``.
Two unique keys back this under concurrency: (workspace, user, sha256), and (workspace,
sha256) among originals; a racing insert is skipped (``insert_ignore``) and resolved by
re-reading the row that won.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from resources.filenames import sanitize_filename
from resources.store import admission
from resources.store.errors import Conflict, InvalidInput, UnknownUser, UploadNotFound
from resources.store.models import (
    MAX_DESCRIPTION_CHARS,
    RUN_SOURCE,
    UPLOAD_SOURCES,
    UPLOAD_STATUSES,
    Upload,
    UploadRejection,
    User,
)
from resources.store.sql import as_dict, insert_ignore, new_id, utcnow

SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What an example upload of bytes first sent with a run takes from the new request (``_promote``).
PROMOTED = ("filename", "content_type", "source", "status", "priorities", "description", "uploaded_at")


@dataclass(frozen=True)
class UploadResult:
    """``upload``: the row that stands for this request; ``created``: a new row was written
    (False: the user had already uploaded these bytes)."""

    upload: dict
    created: bool

    @property
    def duplicate(self) -> bool:
        """The bytes were already in the workspace (this user's or a colleague's upload)."""
        return not self.created or self.upload["duplicate_of"] is not None


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(f"no user {user_id!r}")
    return user


def _check_sha(sha256: str | None) -> None:
    if sha256 is not None and not (isinstance(sha256, str) and SHA256.match(sha256)):
        raise InvalidInput("sha256 must be 64 lowercase hex characters")


def _by_content(session: Session, workspace_id: str, sha256: str, user_id: str | None = None) -> Upload | None:
    query = select(Upload).where(Upload.workspace_id == workspace_id, Upload.sha256 == sha256)
    query = query.where(Upload.user_id == user_id) if user_id else query.where(Upload.duplicate_of.is_(None))
    return session.scalars(query).one_or_none()


def create_upload(
    session: Session,
    user_id: str,
    *,
    filename: str,
    content_type: str,
    sha256: str | None,
    bytes_: int | None,
    media_key: str | None,
    source: str = "upload",
    status: str = "uploaded",
    priorities: str | None = None,
    description: str | None = None,
    at: datetime | None = None,
    admit: Callable[[dict], None] | None = None,
) -> UploadResult:
    """Record an upload of ``user_id`` (in the user's workspace); de-duplication: module doc.

    Args:
        sha256: hex digest of the bytes (None for a presigned upload not yet received).
        bytes_: size in bytes (None when unknown yet).
        media_key: where the bytes are; ignored for a duplicate of a colleague's upload
            (the original's key is used).
        priorities: the user's priority weights as JSON (validated by the caller), None =
            balanced.
        description: the user's words for the effect they want (at most
            MAX_DESCRIPTION_CHARS), None = none given.
        admit: GPU admission of a new job: called with the workspace's ``admission.gpu_load``
            (workspace row locked) just before a new row is inserted, in the same
            transaction, so the count it sees cannot change before the insert; it raises to
            refuse (nothing is inserted). Not called when the user already has these bytes.
    Raises:
        UnknownUser; InvalidInput: bad hash, size, source, status or a description over
            MAX_DESCRIPTION_CHARS; whatever ``admit`` raises.
    """
    _check_sha(sha256)
    if source not in UPLOAD_SOURCES or status not in UPLOAD_STATUSES:
        raise InvalidInput(f"source must be one of {UPLOAD_SOURCES}, status one of {UPLOAD_STATUSES}")
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION_CHARS} characters")
    if bytes_ is not None and (isinstance(bytes_, bool) or not isinstance(bytes_, int) or bytes_ < 0):
        raise InvalidInput("bytes must be a non-negative integer")
    workspace_id = _user(session, user_id).workspace_id
    row = {
        "workspace_id": workspace_id,
        "user_id": user_id,
        "sha256": sha256,
        "filename": sanitize_filename(filename),
        "content_type": str(content_type)[:255],
        "bytes": bytes_,
        "media_key": media_key,
        "source": source,
        "status": status,
        "priorities": priorities,
        "description": description,
        "uploaded_at": at or utcnow(),
    }
    if sha256 is None:
        if admit is not None:
            admit(admission.gpu_load(session, workspace_id, lock=True))
        return UploadResult(_insert(session, row), True)
    for attempt in range(3):  # each pass either returns or lost a race that a re-read resolves
        if (mine := _by_content(session, workspace_id, sha256, user_id)) is not None:
            if mine.source == RUN_SOURCE and source != RUN_SOURCE:
                # Sent before as a run's input, now as an example: a new creation job.
                if admit is not None:
                    admit(admission.gpu_load(session, workspace_id, lock=True))
                return UploadResult(_promote(session, mine, row), True)
            return UploadResult(as_dict(mine), False)
        if admit is not None and attempt == 0:  # a new job: admitted once, the lock then held
            admit(admission.gpu_load(session, workspace_id, lock=True))
        original = _by_content(session, workspace_id, sha256)
        if original is not None:
            row |= {"duplicate_of": original.video_id, "media_key": original.media_key}
        inserted = _insert(session, row, ignore_conflicts=True)
        if inserted is not None:
            return UploadResult(inserted, True)
    raise RuntimeError("upload de-duplication did not converge")  # unreachable by the unique keys


def _promote(session: Session, run_input: Upload, fields: dict) -> dict:
    """The user's upload first sent with an effect run (source ``run``), now sent as an
    example: the same video (``video_id``, bytes, media key) becomes an example upload with
    ``fields`` (filename, content_type, source, status, priorities, description,
    uploaded_at). It is re-inserted under a new ``seq``, so the seq cursors bring it back:
    the uploads landing's upsert replaces the landed row, and the upload sensor (which reads
    this table past its seq cursor) starts its creation job (an update in place would keep
    the old seq, which both cursors have passed)."""
    values = as_dict(run_input) | {k: fields[k] for k in PROMOTED if k in fields}
    del values["seq"], values["recorded_at"]
    # The new row is inserted while the old one still holds the largest seq: SQLite gives an
    # INTEGER PRIMARY KEY the largest rowid + 1, so deleting first could hand the same seq back.
    # The old row steps off the unique keys (video id, content) for the moment in between.
    run_input.video_id, run_input.sha256 = f"{run_input.video_id}~", None
    session.flush()
    session.add(Upload(**values))
    session.flush()
    session.delete(run_input)
    session.flush()
    return as_dict(session.scalars(select(Upload).where(Upload.video_id == values["video_id"])).one())


def _insert(session: Session, row: dict, ignore_conflicts: bool = False) -> dict | None:
    video_id = new_id("v", 16)
    values = {"duplicate_of": None} | row | {"video_id": video_id}
    if ignore_conflicts:
        if not insert_ignore(session, Upload, values):
            return None
    else:
        session.add(Upload(**values))
        session.flush()
    return as_dict(session.scalars(select(Upload).where(Upload.video_id == video_id)).one())


def complete_upload(
    session: Session, video_id: str, user_id: str, *, sha256: str, bytes_: int, media_key: str
) -> UploadResult:
    """Attach the received bytes to a ``pending`` (presigned) upload of ``user_id``.

    When the user already has an upload of these bytes, the pending row is deleted and the
    existing upload returned (``created=False``); the caller then drops its new object.
    Otherwise the row becomes ``uploaded`` (a duplicate of a colleague's upload when the
    workspace has the bytes already).

    Raises:
        UploadNotFound: no pending upload ``video_id`` of this user.
        Conflict: the same bytes were stored by a concurrent request (retry).
    """
    _check_sha(sha256)
    upload = session.scalars(
        select(Upload).where(Upload.video_id == video_id, Upload.user_id == user_id).with_for_update()
    ).one_or_none()
    if upload is None or upload.status != "pending":
        raise UploadNotFound(f"no pending upload {video_id!r}")
    if (mine := _by_content(session, upload.workspace_id, sha256, user_id)) is not None:
        promoted = None
        if mine.source == RUN_SOURCE:  # sent before as a run's input, now as an example
            fields = {
                k: getattr(upload, k) for k in ("filename", "content_type", "source", "priorities", "description")
            }
            promoted = _promote(session, mine, fields | {"status": "uploaded", "uploaded_at": utcnow()})
        session.delete(upload)
        session.flush()
        return UploadResult(promoted, True) if promoted else UploadResult(as_dict(mine), False)
    original = _by_content(session, upload.workspace_id, sha256)
    upload.sha256, upload.bytes, upload.status = sha256, bytes_, "uploaded"
    upload.media_key = original.media_key if original is not None else media_key
    upload.duplicate_of = original.video_id if original is not None else None
    try:
        session.flush()
    except IntegrityError as exc:
        # The same bytes were completed concurrently (this user's other upload, or the
        # workspace's first original): a retry finds that row and folds into it.
        raise Conflict("the same content was stored concurrently; retry") from exc
    return UploadResult(as_dict(upload), True)


def get_upload(session: Session, video_id: str, user_id: str | None = None) -> dict:
    """The upload ``video_id``; with ``user_id``, only if it is that user's.

    Raises:
        UploadNotFound: no such upload, or not the user's (the same error: ids leak nothing).
    """
    query = select(Upload).where(Upload.video_id == video_id)
    if user_id is not None:
        query = query.where(Upload.user_id == user_id)
    upload = session.scalars(query).one_or_none()
    if upload is None:
        raise UploadNotFound(f"no upload {video_id!r}")
    return as_dict(upload)


def by_ids(session: Session, video_ids: list[str]) -> list[dict]:
    """The uploads among ``video_ids`` that exist (one query on the unique ``video_id``)."""
    if not video_ids:
        return []
    return [as_dict(u) for u in session.scalars(select(Upload).where(Upload.video_id.in_(video_ids)))]


def list_uploads(session: Session, user_id: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
    """The user's uploads in ``seq`` order after the cursor ``after_seq`` (cursor paging)."""
    query = select(Upload).where(Upload.user_id == user_id, Upload.seq > after_seq).order_by(Upload.seq).limit(limit)
    return [as_dict(u) for u in session.scalars(query)]


def set_upload_status(session: Session, video_id: str, status: str) -> dict:
    """Set an upload's status (``UPLOAD_STATUSES``). Raises ``UploadNotFound``/``InvalidInput``."""
    if status not in UPLOAD_STATUSES:
        raise InvalidInput(f"status must be one of {UPLOAD_STATUSES}")
    upload = session.scalars(select(Upload).where(Upload.video_id == video_id)).one_or_none()
    if upload is None:
        raise UploadNotFound(f"no upload {video_id!r}")
    upload.status = status
    session.flush()
    return as_dict(upload)


def record_rejection(
    session: Session,
    *,
    user_id: str | None,
    workspace_id: str | None,
    filename: str,
    content_type: str,
    bytes_: int | None,
    http_status: int,
    code: str,
    reason: str,
    rejection_id: str | None = None,
    at: datetime | None = None,
) -> dict:
    """Record a refused upload (idempotent by ``rejection_id``, random when not given);
    returns the stored row."""
    rejection_id = rejection_id or new_id("rej", 16)
    insert_ignore(
        session,
        UploadRejection,
        {
            "rejection_id": rejection_id,
            "user_id": user_id,
            "workspace_id": workspace_id,
            "filename": sanitize_filename(filename),
            "content_type": str(content_type)[:255],
            "bytes": bytes_,
            "http_status": int(http_status),
            "code": str(code)[:64],
            "reason": str(reason)[:1000],
            "rejected_at": at or utcnow(),
        },
    )
    return as_dict(session.scalars(select(UploadRejection).where(UploadRejection.rejection_id == rejection_id)).one())
