"""``GET /v1/media/{key}``: proxies and outputs, streamed (raw uploads stay private)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from api.deps import MediaDep
from api.hardening import safe_media_key
from api.problems import problem_responses

router = APIRouter(tags=["media"])

PUBLIC_MEDIA_PREFIXES = ("proxy/", "outputs/")  # raw uploads stay private


@router.get(
    "/v1/media/{key:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}, "description": "the video's bytes"}} | problem_responses(404),
)
def get_media(key: str, media: MediaDep) -> StreamingResponse:
    """Stream a proxy or output video (raw uploads are not served). Any key that is not a
    stored file (a directory, a traversal, a name no filesystem holds) is a 404."""
    if not key.startswith(PUBLIC_MEDIA_PREFIXES) or not safe_media_key(key):
        raise HTTPException(404, "no such media")
    try:
        stream = media.open(key)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise HTTPException(404, "no such media") from None
    return StreamingResponse(stream, media_type="video/mp4")
