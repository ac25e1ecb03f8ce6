"""``GET /v1/videos/{video_id}``: where a video is in the pipeline, and everything so far."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, HTTPException

from api.deps import LakeDep, SettingsDep
from api.models import ErrorDetail, VideoStatus
from api.status import video_status
from resources.media import media_url

router = APIRouter(tags=["videos"])


@router.get("/v1/videos/{video_id}", responses={404: {"model": ErrorDetail}})
def get_video(video_id: str, lake: LakeDep, settings: SettingsDep) -> VideoStatus:
    """Stage reached, its events in order, analysis, outputs, result, approval, gallery."""
    status = video_status(lake, video_id, partial(media_url, settings.api_base_url), settings.api_base_url)
    if status is None:
        raise HTTPException(404, f"no upload with video_id {video_id}")
    return VideoStatus.model_validate(status)
