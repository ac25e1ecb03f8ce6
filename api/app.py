"""The intake API (FastAPI): uploads, video status, gallery, media, admin approvals.

Run with ``effectlake api`` (uvicorn). Everything goes through the lake and media resources
built from the same Settings as the Dagster definitions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import polars as pl
import structlog
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from api.sniff import SNIFF_BYTES, sniff
from api.status import gallery, video_status
from resources.ab_tests import ABTestInvalid, ab_test, request_ab_test
from resources.accounts import balance, ensure_welcome_credit, top_up
from resources.approvals import decide, pending_requests
from resources.decisions import DecisionConflict, DecisionNotFound
from resources.manifest_store import ManifestStore
from resources.providers.resource import ProviderRegistryResource
from resources.routing_admin import NoManifest, emergency_override
from resources.recommendation_service import decide_recommendation, recommendations_with_status
from resources.events import stable_id, utcnow
from resources.lake import LakeResource
from resources.media import MediaStore
from resources.schemas import NOTIFICATIONS, UPLOAD_REJECTIONS, UPLOADS
from resources.settings import Settings, get_settings

log = structlog.get_logger("effectlake.api")

ACCEPTED_CONTENT_TYPES = {
    "video/mp4", "video/quicktime", "video/x-msvideo", "video/avi", "video/msvideo",
    "video/webm", "video/x-matroska", "video/mpeg", "video/mp2t", "video/x-flv", "video/ogg",
    "video/x-ms-wmv", "video/3gpp",
    # Many clients (curl -F without type, mobile uploaders) send this for any file; the
    # container sniff decides.
    "application/octet-stream",
}
EXTENSION = {"mp4": ".mp4", "avi": ".avi", "matroska": ".mkv", "mpegts": ".ts",
             "mpegps": ".mpg", "flv": ".flv", "ogg": ".ogv", "asf": ".wmv"}
PUBLIC_MEDIA_PREFIXES = ("proxy/", "outputs/")  # raw uploads stay private
CHUNK = 1 << 20


class UploadRejected(Exception):
    """An upload refused at the door: HTTP status, machine code, readable reason."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


class TopUp(BaseModel):
    """Body of ``POST /v1/admin/users/{user_id}/credits``: ``topup_id`` makes it idempotent
    (e.g. the payment provider's id)."""

    tokens: int
    topup_id: str
    reason: str = "top-up"


class Override(BaseModel):
    """Body of ``POST /v1/admin/routing/override``."""

    effect_type: str
    provider_id: str
    reason: str


class ABTestRequest(BaseModel):
    """Body of ``POST /v1/admin/ab-tests``."""

    video_id: str
    effect_type: str
    providers: list[str]
    admin: str = "admin"


class Decision(BaseModel):
    """Body of ``POST /v1/admin/approvals/{approval_id}``."""

    decision: Literal["approve", "reject"]
    reason: str = ""
    admin: str = "admin"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    lake = LakeResource(uri=settings.lake_uri)
    media = MediaStore(uri=settings.media_uri)
    manifest_store = ManifestStore(uri=settings.manifest_uri)
    registry = ProviderRegistryResource(path=settings.providers_path)
    app = FastAPI(title="effectlake intake API", version="0.1.0")

    def media_url(key: str | None) -> str | None:
        return f"{settings.api_base_url.rstrip('/')}/v1/media/{key}" if key else None

    def require_admin(x_admin_key: Annotated[str | None, Header()] = None) -> None:
        # Constant-time comparison: the key must not leak through response timing.
        if not x_admin_key or not hmac.compare_digest(x_admin_key.encode(), settings.admin_api_key.encode()):
            raise HTTPException(401, "admin key missing or wrong (header X-Admin-Key)")

    @app.exception_handler(UploadRejected)
    async def _rejected(request: Request, exc: UploadRejected):
        return JSONResponse(status_code=exc.status, content={"error": exc.code, "detail": exc.reason})

    # Admin decisions (approvals, recommendations) fail the same two ways everywhere.
    @app.exception_handler(DecisionNotFound)
    async def _not_found(request: Request, exc: DecisionNotFound):
        return JSONResponse(status_code=404, content={"detail": f"nothing to decide with id {exc}"})

    @app.exception_handler(DecisionConflict)
    async def _conflict(request: Request, exc: DecisionConflict):
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/v1/uploads", status_code=202)
    def upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the example video")],
        user_id: Annotated[str, Form()] = "anonymous",
    ) -> dict:
        """Accept a video: 202 with ``video_id`` (sha256 of the bytes) and a status URL.
        The same bytes uploaded twice give the same id and one pipeline run."""
        try:
            return _accept(file, user_id)
        except UploadRejected as exc:
            _record_rejection(file, user_id, exc)
            raise

    def _accept(file: UploadFile, user_id: str) -> dict:
        # Refuse a paused account before reading a byte (DESIGN.md §6: pause at 100%).
        available = ensure_welcome_credit(lake, user_id, settings.welcome_credit_tokens)["available"]
        if available <= 0:
            raise UploadRejected(402, "UserQuotaExceeded",
                                 f"User {user_id} has no tokens left ({available} available); "
                                 "new jobs are paused until the account is topped up.")
        content_type = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise UploadRejected(415, "unsupported_media_type",
                                 f"Content type {content_type} is not a video type we accept.")
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
            head = b""
            while chunk := file.file.read(CHUNK):
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise UploadRejected(
                        413, "too_large",
                        f"The file is over the {settings.max_upload_bytes / 1e6:.0f} MB upload limit.")
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
                lake.append(UPLOADS, pl.DataFrame([{
                    "video_id": video_id, "sha256": sha, "user_id": user_id,
                    "filename": Path(file.filename or "upload").name, "content_type": content_type,
                    "bytes": size, "media_key": key, "source": "api", "uploaded_at": utcnow(),
                }]))
        log.info("upload_accepted", video_id=video_id, bytes=size, duplicate=not existing.is_empty())
        return {"video_id": video_id, "status_url": f"/v1/videos/{video_id}",
                "duplicate": not existing.is_empty(), "bytes": size}

    def _record_rejection(file: UploadFile, user_id: str, exc: UploadRejected) -> None:
        now = utcnow()
        lake.append(UPLOAD_REJECTIONS, pl.DataFrame([{
            "rejection_id": stable_id("upload_rejection", user_id, file.filename, now.isoformat()),
            "user_id": user_id, "filename": file.filename, "content_type": file.content_type,
            "bytes": None, "http_status": exc.status, "code": exc.code, "reason": exc.reason,
            "rejected_at": now,
        }]))
        log.warning("upload_rejected", code=exc.code, reason=exc.reason, filename=file.filename,
                    economic_impact="none: rejected before any compute",
                    operator_action="none unless rejections spike")

    @app.get("/v1/videos/{video_id}")
    def get_video(video_id: str) -> dict:
        """Stage reached, its events in order, analysis, outputs, result, approval, gallery."""
        status = video_status(lake, video_id, media_url, settings.api_base_url)
        if status is None:
            raise HTTPException(404, f"no upload with video_id {video_id}")
        return status

    @app.get("/v1/users/{user_id}/notifications")
    def notifications(user_id: str) -> list[dict]:
        """In-app notifications of a user, newest first."""
        return lake.read(NOTIFICATIONS, pl.col("user_id") == user_id).sort(
            "created_at", descending=True).to_dicts()

    @app.get("/v1/users/{user_id}/balance")
    def get_balance(user_id: str) -> dict:
        """The user's token balance: credited, reserved, consumed, refunded, available."""
        return balance(lake, user_id)

    @app.post("/v1/admin/users/{user_id}/credits", status_code=201, dependencies=[Depends(require_admin)])
    def credit_user(user_id: str, body: TopUp) -> dict:
        """Top up a user's tokens (once per ``topup_id``); a paused user can upload again."""
        try:
            return top_up(lake, user_id, body.tokens, body.topup_id, body.reason)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post("/v1/admin/routing/override", status_code=201, dependencies=[Depends(require_admin)])
    def override_routing(body: Override) -> dict:
        """Emergency override: route every job of an effect type to one provider, now."""
        try:
            m = emergency_override(lake, manifest_store, body.effect_type, body.provider_id, body.reason)
        except NoManifest as exc:
            raise HTTPException(409, str(exc)) from None
        except (KeyError, ValueError) as exc:
            raise HTTPException(422, str(exc).strip("'\"")) from None
        return {"version": m["version"], "base_version": m["base_version"], "overrides": m["overrides"]}

    @app.post("/v1/admin/ab-tests", status_code=202, dependencies=[Depends(require_admin)])
    def create_ab_test(body: ABTestRequest) -> dict:
        """Run one uploaded video on several providers side by side (the A/B sensor starts it)."""
        try:
            row = request_ab_test(lake, registry, body.video_id, body.effect_type, body.providers, body.admin)
        except ABTestInvalid as exc:
            raise HTTPException(422, str(exc)) from None
        return {"experiment_id": row["experiment_id"], "status_url": f"/v1/admin/ab-tests/{row['experiment_id']}"}

    @app.get("/v1/admin/ab-tests/{experiment_id}", dependencies=[Depends(require_admin)])
    def get_ab_test(experiment_id: str) -> dict:
        """The request and, once run, every provider's quality, time and cost."""
        found = ab_test(lake, experiment_id)
        if found is None:
            raise HTTPException(404, f"no A/B test {experiment_id}")
        return found

    @app.get("/v1/effects")
    def list_effects() -> list[dict]:
        """The gallery: published effects."""
        return [_effect(r) for r in gallery(lake).iter_rows(named=True)]

    @app.get("/v1/effects/{slug}")
    def get_effect(slug: str) -> dict:
        """One published effect by slug (its current pinned revision)."""
        rows = gallery(lake).filter(pl.col("slug") == slug)
        if rows.is_empty():
            raise HTTPException(404, f"no published effect {slug!r}")
        return _effect(rows.row(0, named=True))

    def _effect(r: dict) -> dict:
        return {"slug": r["slug"], "revision_id": r["revision_id"], "content_hash": r["content_hash"],
                "effect_type": r["effect_type"], "provider_id": r["provider_id"],
                "published_at": r["published_at"], "preview_url": media_url(r["output_key"]),
                "snapshot": json.loads(r["snapshot"])}

    @app.get("/v1/media/{key:path}")
    def get_media(key: str):
        """Stream a proxy or output video (raw uploads are not served)."""
        if not key.startswith(PUBLIC_MEDIA_PREFIXES) or ".." in key:
            raise HTTPException(404, "no such media")
        try:
            stream = media.open(key)
        except FileNotFoundError:
            raise HTTPException(404, "no such media") from None
        return StreamingResponse(stream, media_type="video/mp4")

    @app.get("/v1/admin/approvals", dependencies=[Depends(require_admin)])
    def list_approvals() -> list[dict]:
        """Pending approval requests with their side-by-side comparison."""
        return [{**r, "comparison": json.loads(r["comparison"])}
                for r in pending_requests(lake).iter_rows(named=True)]

    @app.post("/v1/admin/approvals/{approval_id}", status_code=202,
              dependencies=[Depends(require_admin)])
    def decide_approval(approval_id: str, body: Decision) -> dict:
        """Approve (publish) or reject (refund and notify) a pending effect."""
        row = decide(lake, approval_id, body.decision, body.admin, body.reason)
        return {"approval_id": approval_id, "video_id": row["video_id"], "decision": row["decision"]}

    @app.get("/v1/admin/recommendations", dependencies=[Depends(require_admin)])
    def list_recommendations(status: str | None = None) -> list[dict]:
        """Economic recommendations of the latest cycle with their decision status."""
        recs = recommendations_with_status(lake)
        if status:
            recs = recs.filter(pl.col("status") == status)
        return [{**r, "action": json.loads(r["action"])} for r in recs.iter_rows(named=True)]

    @app.post("/v1/admin/recommendations/{recommendation_id}", status_code=202,
              dependencies=[Depends(require_admin)])
    def decide_on_recommendation(recommendation_id: str, body: Decision) -> dict:
        """Approve or reject a recommendation; the decision is recorded once."""
        row = decide_recommendation(lake, recommendation_id, body.decision, body.admin, body.reason)
        return {"recommendation_id": recommendation_id, "decision": row["decision"]}

    return app
