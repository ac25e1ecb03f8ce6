"""``GET /v1/videos/{video_id}``: where one of the caller's videos is in the pipeline, and
everything so far. Another user's video is a 404, as is one that does not exist."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, HTTPException

from api.deps import CallerDep, LakeDep, LinksDep, SettingsDep, StoreDep
from api.models import ErrorDetail, VideoStatus
from api.status import video_status
from resources.services.gallery import video_revision
from resources.store.client import Store
from resources.store.errors import NotFound

router = APIRouter(tags=["videos"])

# A video gets a handful of notifications; the cap only bounds the read.
MAX_NOTIFICATIONS = 1000


@router.get("/v1/videos/{video_id}", responses={401: {"model": ErrorDetail}, 404: {"model": ErrorDetail}})
def get_video(
    video_id: str, caller: CallerDep, lake: LakeDep, store: StoreDep, settings: SettingsDep, links: LinksDep
) -> VideoStatus:
    """Stage reached, its events in order, analysis, outputs, result, approval, gallery.
    Admins may read any video."""
    try:
        upload = store.upload(video_id, None if caller.is_admin else caller.user_id)
    except NotFound:
        raise HTTPException(404, f"no upload with video_id {video_id}") from None
    notes = store.notifications(upload["user_id"], limit=MAX_NOTIFICATIONS, correlation_id=video_id)
    status = video_status(
        lake,
        upload,
        partial(_decision, store),
        notes,
        links.url,
        settings.api_base_url,
        partial(video_revision, store),
    )
    return VideoStatus.model_validate(status)


def _decision(store: Store, approval_id: str) -> dict | None:
    try:
        return store.decision("approval", approval_id)
    except NotFound:
        return None
