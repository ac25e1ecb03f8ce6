"""``GET /v1/media/{key}``: public media (proxies, outputs, published gallery copies; raw
uploads stay private), served so caches do the work (docs/gallery.md, "Distribution").

* A local media store: the file itself (``FileResponse``: ``Range`` requests answered 206,
  ``If-Range`` honoured) with a strong ``ETag`` — the sha256 of the bytes, read from the name
  of a content-addressed key, else computed once per file version — and ``Cache-Control``:
  ``public, max-age=<1 year>, immutable`` for content-addressed keys (``published/``),
  ``public, max-age=<EFFECTLAKE_MEDIA_MAX_AGE_S>`` for the others; ``If-None-Match`` with the
  current ETag is a 304 with no body.
* An S3 media store: a 307 redirect to the key's public URL (a presigned ``GET`` or the
  public prefix, ``resources.media_links``): the bytes never flow through the API process.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.deps import LinksDep, MediaDep, SettingsDep
from api.hardening import safe_media_key
from api.problems import problem_responses
from resources.hashing import cached_file_sha256
from resources.media import PUBLISHED_PREFIX, cache_control, content_type, is_content_addressed

router = APIRouter(tags=["media"])

PUBLIC_MEDIA_PREFIXES = ("proxy/", "outputs/", PUBLISHED_PREFIX)  # raw uploads stay private
SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")
# Longest a client may keep the redirect to an S3 URL, seconds: far inside the half-life for
# which MediaLinks hands out the same presigned URL (the URL stays valid at least that long).
REDIRECT_MAX_AGE_S = 3600

_MEDIA_RESPONSES = {
    200: {"content": {"video/mp4": {}}, "description": "the video's bytes"},
    206: {"description": "the requested byte range (`Range: bytes=…`)"},
    304: {"description": "not modified: `If-None-Match` names the current ETag"},
    307: {"description": "on an S3 media store: the key's public or presigned URL"},
}


def strong_etag(key: str, path: Path) -> str:
    """The ETag of a stored file: its bytes' sha256, quoted (a strong validator, RFC 9110
    §8.8.3). A content-addressed key names it; any other file is hashed once per version
    (``resources.hashing.cached_file_sha256``)."""
    stem = Path(key).stem
    if is_content_addressed(key) and SHA256_NAME.match(stem):
        return f'"{stem}"'
    return f'"{cached_file_sha256(path)}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (``*``, or a listed tag by the weak
    comparison RFC 9110 §13.1.2 prescribes for it: a ``W/`` prefix is ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in {t.removeprefix("W/") for t in tags}


@router.get("/v1/media/{key:path}", response_class=FileResponse, responses=_MEDIA_RESPONSES | problem_responses(404))
def get_media(key: str, request: Request, media: MediaDep, links: LinksDep, settings: SettingsDep) -> Response:
    """A proxy, output or published video (raw uploads are not served). Any key that is not a
    stored file (a directory, a traversal, a name no filesystem holds) is a 404."""
    if not key.startswith(PUBLIC_MEDIA_PREFIXES) or not safe_media_key(key):
        raise HTTPException(404, "no such media")
    if media.is_s3:
        if not media.exists(key):
            raise HTTPException(404, "no such media")
        url = links.url(key)
        assert url is not None
        max_age = min(REDIRECT_MAX_AGE_S, links.url_ttl_s // 2)
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": f"private, max-age={max_age}"})
    path = media.path(key)
    try:
        stat = path.stat()
    except (OSError, ValueError):  # missing, a file used as a directory, a name too long
        raise HTTPException(404, "no such media") from None
    if not path.is_file():
        raise HTTPException(404, "no such media")
    etag = strong_etag(key, path)
    headers = {"ETag": etag, "Cache-Control": cache_control(key, settings.media_max_age_s)}
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=content_type(key), headers=headers, stat_result=stat)
