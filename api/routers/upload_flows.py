"""Uploads the way mobile and web clients send them, besides ``POST /v1/uploads``:

- ``POST /v1/uploads/presign`` → a ``pending`` upload and a URL to ``PUT`` the bytes to
  (S3's own presigned URL, or ``PUT /v1/uploads/{video_id}/content`` signed by the API for
  a local media store); then ``POST /v1/uploads/{video_id}/complete`` checks the object and
  accepts it.
- ``POST /v1/uploads/link`` → the video behind a TikTok / Instagram / YouTube Shorts link,
  downloaded through the SSRF guard (``resources.intake.link``).

Every route but the signed ``PUT`` (whose signature is its credential) takes the caller's
API key and works on the caller's uploads only. The checks and the rows are
``resources.intake.acceptance``'s.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode, urlsplit

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.admission import AdmissionDep, exact_admission
from api.deps import Caller, CallerDep, MediaDep, SettingsDep, StoreDep
from api.idempotency import IdempotencyKey, body_fingerprint, respond
from api.models import UploadAccepted, UploadError
from resources.filenames import sanitize_filename
from resources.intake import acceptance
from resources.intake.fetch import LinkTimedOut, LinkTooLarge
from resources.intake.link import LinkFailed, LinkRequest, download_link
from resources.intake.signing import InvalidSignature, SignedGrant, sign, signing_secret, verify
from resources.intake.ssrf import LinkPolicy, LinkRefused, Resolver, system_resolver
from resources.media import MediaStore
from resources.services.uploads import UploadRejected, check_balance, check_content_type, check_size, record_refusal
from resources.settings import Settings
from resources.store.client import Store
from resources.store.models import MAX_DESCRIPTION_CHARS
from resources.store.uploads import UploadResult

router = APIRouter(tags=["uploads"])

REFUSED = {status: {"model": UploadError} for status in (400, 402, 413, 415)}
PRESIGN_SOURCE, LINK_SOURCE = "presign", "link"


def incoming_key(video_id: str) -> str:
    """Media key a presigned upload's bytes are PUT to, before they are checked."""
    return f"incoming/{video_id}"


def link_resolver() -> Resolver:
    """DNS for the link guard (a dependency so tests can inject a resolver)."""
    return system_resolver


ResolverDep = Annotated[Resolver, Depends(link_resolver)]


def _accepted(result: UploadResult) -> UploadAccepted:
    row = result.upload
    return UploadAccepted(
        video_id=row["video_id"],
        status_url=f"/v1/videos/{row['video_id']}",
        duplicate=result.duplicate,
        bytes=row["bytes"],
    )


# -- presigned uploads -------------------------------------------------------------------


class PresignRequest(BaseModel):
    """What the client is about to upload: its file name, MIME type and size in bytes, and
    (optional) what effect it shows, in words."""

    filename: str = Field(max_length=1024)
    content_type: str = Field(max_length=255)
    bytes: int = Field(gt=0)
    description: str | None = Field(
        default=None,
        max_length=MAX_DESCRIPTION_CHARS,
        description="the effect you want, in your words (e.g. 'make it look like a cartoon')",
    )


class PresignedUpload(BaseModel):
    """Where to send the bytes: ``method`` to ``upload_url`` with ``headers`` (exactly these),
    before ``expires_at``; then ``POST /v1/uploads/{video_id}/complete``."""

    video_id: str
    upload_url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_at: datetime


def _grant(video_id: str, expires: int, max_bytes: int) -> SignedGrant:
    return SignedGrant("PUT", incoming_key(video_id), expires, max_bytes)


def _secret(settings: Settings) -> bytes:
    return signing_secret(settings.upload_signing_secret, settings.data_dir)


@router.post("/v1/uploads/presign", status_code=201, response_model=PresignedUpload, responses=REFUSED)
def presign(
    request: Request,
    body: PresignRequest,
    caller: CallerDep,
    store: StoreDep,
    media: MediaDep,
    settings: SettingsDep,
    admission: AdmissionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a ``pending`` upload and a URL to PUT its bytes to (S3's presigned URL on an
    S3 media store, else one signed by this API), valid ``Settings.upload_url_ttl_s``."""
    fingerprint = body_fingerprint(body)
    work = partial(_presign, body, caller, store, media, settings, exact_admission(request, settings))
    return respond(store, caller, "POST /v1/uploads/presign", idempotency_key, fingerprint, work)


def _presign(
    body: PresignRequest,
    caller: Caller,
    store: Store,
    media: MediaStore,
    settings: Settings,
    admit: Callable[[dict], None],
) -> tuple[int, PresignedUpload]:
    user = {"user_id": caller.user_id, "workspace_id": caller.workspace_id}
    try:
        check_balance(store, caller.user_id)
        content_type = check_content_type(body.content_type)
        check_size(body.bytes, settings.max_upload_bytes)
    except UploadRejected as exc:
        record_refusal(store, user, exc, filename=body.filename, content_type=body.content_type)
        raise
    row = store.create_upload(
        caller.user_id,
        filename=body.filename,
        content_type=content_type,
        sha256=None,
        bytes_=body.bytes,
        media_key=None,
        source=PRESIGN_SOURCE,
        status="pending",
        description=(body.description or "").strip() or None,
        admit=admit,
    ).upload
    video_id = row["video_id"]
    expires = int(time.time()) + settings.upload_url_ttl_s
    headers = {"Content-Type": content_type}
    if media.is_s3:
        url = media.presigned_put_url(
            incoming_key(video_id),
            content_type=content_type,
            content_length=body.bytes,
            expires_in=settings.upload_url_ttl_s,
        )
        headers["Content-Length"] = str(body.bytes)
    else:
        grant = _grant(video_id, expires, body.bytes)
        query = urlencode({"expires": expires, "max_bytes": body.bytes, "signature": sign(_secret(settings), grant)})
        url = f"{settings.api_base_url.rstrip('/')}/v1/uploads/{video_id}/content?{query}"
    return 201, PresignedUpload(
        video_id=video_id, upload_url=url, headers=headers, expires_at=datetime.fromtimestamp(expires, UTC)
    )


class ObjectReceived(BaseModel):
    """``PUT /v1/uploads/{video_id}/content``: the bytes were stored (not yet checked)."""

    video_id: str
    bytes: int


@router.put("/v1/uploads/{video_id}/content", responses={403: {}, 404: {}, 413: {}})
async def put_content(
    video_id: str,
    request: Request,
    store: StoreDep,
    media: MediaDep,
    settings: SettingsDep,
    expires: Annotated[int, Query()],
    max_bytes: Annotated[int, Query(gt=0)],
    signature: Annotated[str, Query(max_length=128)],
) -> ObjectReceived:
    """Receive a presigned upload's bytes (local media store only). The signature, not an
    API key, is the credential: 403 when it is forged, altered or expired; 413 past the
    signed size (checked on the declared length first, then while reading); 404 when the
    upload is no longer pending."""
    if media.is_s3:
        raise HTTPException(404, "uploads go to the S3 URL returned by /v1/uploads/presign")
    try:
        verify(_secret(settings), _grant(video_id, expires, max_bytes), signature, time.time())
    except InvalidSignature as exc:
        raise HTTPException(403, str(exc)) from None
    row = await anyio.to_thread.run_sync(lambda: store.upload(video_id))
    if row["status"] != "pending":
        raise HTTPException(404, f"no pending upload {video_id!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"the upload is over its signed size of {max_bytes} bytes")
    received = 0
    with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise HTTPException(413, f"the upload is over its signed size of {max_bytes} bytes")
            await anyio.to_thread.run_sync(tmp.write, chunk)
        await anyio.to_thread.run_sync(tmp.flush)
        await anyio.to_thread.run_sync(media.put_file, incoming_key(video_id), tmp.name)
    return ObjectReceived(video_id=video_id, bytes=received)


@router.post("/v1/uploads/{video_id}/complete", status_code=202, responses=REFUSED | {404: {}, 409: {}})
def complete(
    video_id: str, caller: CallerDep, store: StoreDep, media: MediaDep, settings: SettingsDep
) -> UploadAccepted:
    """Check the bytes PUT for a presigned upload (size as announced, a video container,
    sha256) and accept them: 202 as ``POST /v1/uploads``. 404 for another user's upload;
    409 while nothing was PUT yet. Completing again answers the same 202."""
    row = store.upload(video_id, caller.user_id)
    if row["source"] != PRESIGN_SOURCE:
        raise HTTPException(404, f"no presigned upload {video_id!r}")
    if row["status"] != "pending":
        if row["sha256"] is None:
            raise HTTPException(409, f"upload {video_id} was {row['status']}")
        return _accepted(UploadResult(row, created=False))
    key = incoming_key(video_id)
    if not media.exists(key):
        raise HTTPException(409, "nothing was uploaded to the presigned URL yet")
    user = {"user_id": caller.user_id, "workspace_id": caller.workspace_id}
    with media.local_file(key) as path:
        try:
            inspected = acceptance.inspect_file(path, min(row["bytes"], settings.max_upload_bytes))
            if inspected.bytes != row["bytes"]:
                raise UploadRejected(
                    400, "size_mismatch", f"{inspected.bytes} bytes arrived, {row['bytes']} were announced."
                )
        except UploadRejected as exc:
            record_refusal(
                store, user, exc, filename=row["filename"], content_type=row["content_type"], bytes_=row["bytes"]
            )
            store.set_upload_status(video_id, "rejected")
            media.delete(key)
            raise
        final_key = inspected.media_key(caller.workspace_id)
        acceptance.store_bytes(media, path, final_key)
    result = store.complete_upload(
        video_id,
        caller.user_id,
        sha256=inspected.sha256,
        bytes_=inspected.bytes,
        media_key=final_key,
    )
    media.delete(key)
    return _accepted(result)


# -- links ---------------------------------------------------------------------------------


class LinkUpload(BaseModel):
    """A link to a TikTok, Instagram or YouTube Shorts video, and (optional) what effect it
    shows, in words."""

    url: str = Field(max_length=2048)
    description: str | None = Field(
        default=None,
        max_length=MAX_DESCRIPTION_CHARS,
        description="the effect you want, in your words (e.g. 'make it look like a cartoon')",
    )


# What each failure of a link download answers: status and code.
LINK_REFUSALS = {
    LinkRefused: (422, "link_refused"),
    LinkTooLarge: (413, "too_large"),
    LinkTimedOut: (504, "link_timeout"),
    LinkFailed: (502, "link_failed"),
}


def _link_filename(url: str, path: Path) -> str:
    name = Path(urlsplit(url).path).name or "link"
    return sanitize_filename(name if Path(name).suffix else f"{name}{path.suffix}")


@router.post(
    "/v1/uploads/link",
    status_code=202,
    response_model=UploadAccepted,
    responses=REFUSED | {422: {"model": UploadError}, 502: {"model": UploadError}, 504: {"model": UploadError}},
)
def upload_link(
    request: Request,
    body: LinkUpload,
    caller: CallerDep,
    store: StoreDep,
    media: MediaDep,
    settings: SettingsDep,
    resolver: ResolverDep,
    admission: AdmissionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Download the video behind a TikTok / Instagram / YouTube Shorts link (at most
    ``Settings.max_upload_bytes`` within ``Settings.link_timeout_s``) and accept it as a
    direct upload would be: 202. Refused: 422 ``link_refused`` (not a supported link, or it
    leads to a private address), 413, 504 ``link_timeout``, 502 ``link_failed``."""
    work = partial(_upload_link, body, caller, store, media, settings, resolver, exact_admission(request, settings))
    return respond(store, caller, "POST /v1/uploads/link", idempotency_key, body_fingerprint(body), work)


def _upload_link(
    body: LinkUpload,
    caller: Caller,
    store: Store,
    media: MediaStore,
    settings: Settings,
    resolver: Resolver,
    admit: Callable[[dict], None],
) -> tuple[int, UploadAccepted]:
    user = {"user_id": caller.user_id, "workspace_id": caller.workspace_id}
    filename = body.url
    try:
        check_balance(store, caller.user_id)
        policy = LinkPolicy.from_settings_value(settings.link_test_hosts, production=settings.deployment == "prod")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = download_link(
                    LinkRequest(body.url, settings.max_upload_bytes, settings.link_timeout_s),
                    Path(tmp),
                    policy,
                    resolver,
                )
            except tuple(LINK_REFUSALS) as exc:
                status, code = LINK_REFUSALS[type(exc)]
                raise UploadRejected(status, code, str(exc)) from exc
            filename = _link_filename(body.url, path)
            result = acceptance.accept_file(
                store,
                media,
                user,
                path,
                filename=filename,
                source=LINK_SOURCE,
                max_bytes=settings.max_upload_bytes,
                description=(body.description or "").strip() or None,
                admit=admit,
            )
    except UploadRejected as exc:
        record_refusal(store, user, exc, filename=filename, content_type=None)
        raise
    return 202, _accepted(result)
