"""``POST /v1/uploads``: upload intake for the calling user (``resources.services.uploads``
does the work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import Response

from api.admission import AdmissionDep, exact_admission
from api.deps import CallerDep, MediaDep, SettingsDep, StoreDep
from api.idempotency import IdempotencyKey, form_fingerprint, respond
from api.models import ErrorDetail, UploadAccepted, UploadError, UploadRow
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, seq_page
from api.problems import problem_responses
from resources.priorities import EXAMPLE, parse_priorities
from resources.services.uploads import IncomingUpload, receive_upload
from resources.store.models import MAX_DESCRIPTION_CHARS

router = APIRouter(tags=["uploads"])

# A refused upload answers with its own status (see resources.services.uploads).
REFUSED = {status: {"model": UploadError} for status in (400, 402, 413, 415)} | {
    401: {"model": ErrorDetail},
    422: {
        "model": ErrorDetail,
        "description": "malformed priorities, a description over 1,000 characters, "
        "or an Idempotency-Key reused with another body",
    },
}
ROUTE = "POST /v1/uploads"


@router.get("/v1/uploads", responses=problem_responses(400))
def list_uploads(
    caller: CallerDep, store: StoreDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[UploadRow]:
    """The caller's uploads, oldest first (a page; ``next_cursor`` continues)."""
    rows, next_cursor = seq_page(lambda after, n: store.uploads(caller.user_id, after, n), cursor, limit)
    return Page[UploadRow](items=[UploadRow.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/v1/uploads", status_code=202, response_model=UploadAccepted, responses=REFUSED)
def upload(
    request: Request,
    caller: CallerDep,
    admission: AdmissionDep,
    store: StoreDep,
    media: MediaDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the example video")],
    priorities: Annotated[
        str | None,
        Form(
            description="how the best result is chosen: JSON weights, e.g. " + EXAMPLE + " (default balanced)",
            max_length=500,
        ),
    ] = None,
    description: Annotated[
        str | None,
        Form(
            description="the effect you want, in your words (e.g. 'make it look like a cartoon'); "
            "read with the example video to choose what is made",
            max_length=MAX_DESCRIPTION_CHARS,
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accept a video of the calling user: 202 with a random ``video_id`` and a status URL.
    The same user sending the same bytes again gets their existing upload back
    (``duplicate: true``) and one pipeline run. ``priorities`` (quality / cost / speed
    weights) steer which provider's output is chosen; a malformed value is a 422.
    ``description`` says in words what effect the example shows (at most 1,000 characters)."""
    wanted = description.strip() or None if description else None
    try:
        weights = None if priorities is None or not priorities.strip() else parse_priorities(priorities).to_json()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None

    def work() -> tuple[int, UploadAccepted]:
        accepted = receive_upload(
            store,
            media,
            IncomingUpload(
                file.file, file.filename, file.content_type, caller.user_id, caller.workspace_id, weights, wanted
            ),
            max_upload_bytes=settings.max_upload_bytes,
            admit=exact_admission(request, settings),
        )
        return 202, UploadAccepted(
            video_id=accepted.video_id,
            status_url=f"/v1/videos/{accepted.video_id}",
            duplicate=accepted.duplicate,
            bytes=accepted.bytes,
        )

    fingerprint = form_fingerprint(file, file.filename, file.content_type, weights, wanted) if idempotency_key else ""
    return respond(store, caller, ROUTE, idempotency_key, fingerprint, work)
