"""``POST /v1/uploads``: upload intake (``resources.services.uploads`` does the work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from api.deps import LakeDep, MediaDep, SettingsDep
from api.models import UploadAccepted, UploadError
from resources.services.uploads import IncomingUpload, receive_upload

router = APIRouter(tags=["uploads"])

# A refused upload answers with its own status (see resources.services.uploads).
REFUSED = {status: {"model": UploadError} for status in (400, 402, 413, 415)}


@router.post("/v1/uploads", status_code=202, responses=REFUSED)
def upload(
    lake: LakeDep,
    media: MediaDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the example video")],
    user_id: Annotated[str, Form()] = "anonymous",
) -> UploadAccepted:
    """Accept a video: 202 with ``video_id`` (sha256 of the bytes) and a status URL.
    The same bytes uploaded twice give the same id and one pipeline run."""
    accepted = receive_upload(
        lake,
        media,
        IncomingUpload(file.file, file.filename, file.content_type, user_id),
        max_upload_bytes=settings.max_upload_bytes,
        welcome_credit_tokens=settings.welcome_credit_tokens,
    )
    return UploadAccepted(
        video_id=accepted.video_id,
        status_url=f"/v1/videos/{accepted.video_id}",
        duplicate=accepted.duplicate,
        bytes=accepted.bytes,
    )
