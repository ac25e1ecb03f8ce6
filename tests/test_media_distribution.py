"""Published previews and delivered outputs are served from a cache-friendly location: the
local media route answers with a strong ETag (the bytes' sha256), Cache-Control (immutable
for content-addressed keys), 304 on If-None-Match and 206 on Range; on S3 the links are
presigned GET URLs with a long expiry (or a public prefix), fetched here over real HTTP from
the local S3 server, and the API's media route only redirects to them."""

from __future__ import annotations

import hashlib
import re
from typing import ClassVar

import httpx
import pytest

from api.app import create_app
from resources.media import IMMUTABLE_MAX_AGE_S, MediaStore
from resources.media_links import MediaLinks
from resources.s3 import ensure_buckets
from resources.settings import Settings
from tests.s3_server import local_s3_process
from tests.server import serve


@pytest.fixture
def video_bytes(short_carphone) -> bytes:
    return short_carphone.read_bytes()


def test_local_media_route_is_cache_friendly(settings, short_carphone, video_bytes, tmp_path):
    media = MediaStore(uri=settings.media_uri)
    media.put_file("outputs/v1/t1.mp4", str(short_carphone))
    published = media.publish("outputs/v1/t1.mp4")
    digest = hashlib.sha256(video_bytes).hexdigest()
    assert published == f"published/{digest}.mp4"
    assert media.publish("outputs/v1/t1.mp4") == published  # content-addressed: one copy
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as client:
        # A content-addressed key: its name is the ETag, and caches may keep it for a year.
        r = client.get(f"/v1/media/{published}")
        assert r.status_code == 200 and r.content == video_bytes
        assert r.headers["etag"] == f'"{digest}"'
        assert r.headers["cache-control"] == f"public, max-age={IMMUTABLE_MAX_AGE_S}, immutable"
        assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
        not_modified = client.get(f"/v1/media/{published}", headers={"If-None-Match": f'W/"x", "{digest}"'})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == f'"{digest}"' and "immutable" in not_modified.headers["cache-control"]
        assert client.get(f"/v1/media/{published}", headers={"If-None-Match": '"other"'}).status_code == 200

        # Ranges (a player seeking): 206 with exactly the bytes asked for.
        part = client.get(f"/v1/media/{published}", headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == video_bytes[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(video_bytes)}"
        stale = client.get(f"/v1/media/{published}", headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert stale.status_code == 200 and stale.content == video_bytes  # If-Range mismatch: whole file

        # A key that is not content-addressed: the same strong ETag, a short max-age, and a
        # new ETag once its bytes change.
        r = client.get("/v1/media/outputs/v1/t1.mp4")
        assert r.headers["etag"] == f'"{digest}"'
        assert r.headers["cache-control"] == f"public, max-age={settings.media_max_age_s}"
        other = tmp_path / "other.bin"
        other.write_bytes(video_bytes[::-1])
        media.put_file("outputs/v1/t1.mp4", str(other))
        changed = client.get("/v1/media/outputs/v1/t1.mp4", headers={"If-None-Match": f'"{digest}"'})
        assert changed.status_code == 200 and changed.content == video_bytes[::-1]
        assert changed.headers["etag"] == f'"{hashlib.sha256(video_bytes[::-1]).hexdigest()}"'

        assert client.get("/v1/media/published/nothing.mp4").status_code == 404
        assert client.get("/v1/media/raw/anything.mp4").status_code == 404  # raw uploads stay private


def test_links_point_at_the_public_prefix_or_the_api():
    local = MediaLinks(MediaStore(uri="/srv/media"), "https://api.example.com/")
    assert local.url("published/ab.mp4") == "https://api.example.com/v1/media/published/ab.mp4"
    assert local.url(None) is None
    cdn = MediaLinks(MediaStore(uri="/srv/media"), "https://api.example.com", "https://cdn.example.com/m/")
    assert cdn.url("published/ab.mp4") == "https://cdn.example.com/m/published/ab.mp4"
    assert cdn.url("outputs/v/t.mp4") == "https://api.example.com/v1/media/outputs/v/t.mp4"  # not public


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """The local S3 server as its own process; this process's AWS variables point at it."""
    with local_s3_process(tmp_path / "s3.log") as env:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        ensure_buckets(["s3://media/x"], env)
        yield env


class CountingMedia(MediaStore):
    """The S3 media store, counting the URLs it signs."""

    signed: ClassVar[list[str]] = []

    def presigned_get_url(self, key: str, expires_in: int) -> str:
        CountingMedia.signed.append(key)
        return super().presigned_get_url(key, expires_in)


def test_presigned_links_on_s3_are_fetched_over_http_and_reused(s3, short_carphone, video_bytes, tmp_path):
    media = CountingMedia(uri="s3://media/effectlake")
    media.put_file("outputs/v1/t1.mp4", str(short_carphone))
    published = media.publish("outputs/v1/t1.mp4")
    now = [1_000_000.0]
    links = MediaLinks(media, "http://api.invalid", url_ttl_s=7 * 24 * 3600, clock=lambda: now[0])
    url = links.url(published)
    assert url.startswith(s3["AWS_ENDPOINT_URL"] + "/media/effectlake/published/")
    assert re.search(r"X-Amz-Expires=604800\b", url) and "X-Amz-Signature=" in url
    with httpx.Client(timeout=30) as http:
        r = http.get(url)
        assert r.status_code == 200 and r.content == video_bytes
        # The object carries its type and, content-addressed, an immutable Cache-Control.
        assert r.headers["content-type"] == "video/mp4"
        assert r.headers["cache-control"] == f"public, max-age={IMMUTABLE_MAX_AGE_S}, immutable"
        part = http.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == video_bytes[:100]
        # A delivered output (not content-addressed) is reachable the same way.
        assert http.get(links.url("outputs/v1/t1.mp4")).content == video_bytes
    # The same URL while half its lifetime is left (caches keyed by URL keep hitting)…
    CountingMedia.signed.clear()
    now[0] += 3 * 24 * 3600
    assert links.url(published) == url and CountingMedia.signed == []
    # …and a freshly signed one after.
    now[0] += 1 * 24 * 3600
    links.url(published)
    assert CountingMedia.signed == [published]


def test_the_api_on_s3_redirects_media_instead_of_streaming_it(s3, short_carphone, video_bytes, tmp_path):
    settings = Settings(
        LAKE_URI=str(tmp_path / "lake"),
        MEDIA_URI="s3://media/api",
        MANIFEST_URI=str(tmp_path / "manifest.json"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
        EFFECTLAKE_API_URL="http://testserver",
    )
    MediaStore(uri=settings.media_uri).put_file("outputs/v1/t1.mp4", str(short_carphone))
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as client:
        r = client.get("/v1/media/outputs/v1/t1.mp4")
        assert r.status_code == 307 and r.headers["location"].startswith(s3["AWS_ENDPOINT_URL"] + "/media/api/")
        assert "X-Amz-Signature=" in r.headers["location"] and r.headers["cache-control"].startswith("private")
        assert httpx.get(r.headers["location"], timeout=30).content == video_bytes
        assert client.get("/v1/media/outputs/v1/none.mp4").status_code == 404
