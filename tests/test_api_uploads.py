"""Bad input at the door: each gets a clear 4xx, is recorded, and loses nothing else."""

from __future__ import annotations

import cv2
import httpx
import numpy as np
import pytest

from api.app import create_app
from resources.services.sniff import sniff
from resources.store import Store
from tests.api_users import new_user, upload
from tests.server import serve

pytestmark = pytest.mark.video


@pytest.fixture
def client(settings):
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


@pytest.fixture
def user(client):
    return new_user(client)


def _post(client, user, name: str, data: bytes, content_type: str = "video/mp4"):
    return upload(client, user, data, name, content_type)


def test_bad_uploads_get_readable_4xx_and_are_recorded(client, user, settings, tmp_path, short_bikes):
    png = tmp_path / "still.png"
    cv2.imwrite(str(png), np.full((64, 64, 3), 128, np.uint8))
    cases = [
        ("empty.mp4", b"", "video/mp4", 400, "empty_file", "empty"),
        (
            "notes.mp4",
            b"this is just some text pretending to be a video\n" * 20,
            "video/mp4",
            415,
            "not_a_video",
            "text file",
        ),
        ("still.mp4", png.read_bytes(), "video/mp4", 415, "not_a_video", "PNG still image"),
        (
            "clip.exe",
            short_bikes.read_bytes(),
            "application/x-msdownload",
            415,
            "unsupported_media_type",
            "not a video type",
        ),
    ]
    for name, data, ctype, status, code, phrase in cases:
        r = _post(client, user, name, data, ctype)
        assert r.status_code == status, name
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == code and phrase in r.json()["detail"], r.json()
    # A good upload in between is unaffected.
    ok = _post(client, user, "bikes.mp4", short_bikes.read_bytes())
    assert ok.status_code == 202
    store = Store(settings.database_url)
    rejections = store.changes_since("upload_rejections", 0)[0]
    assert sorted(r["code"] for r in rejections) == sorted(c[4] for c in cases)
    assert {r["user_id"] for r in rejections} == {user["user_id"]}
    assert [u["video_id"] for u in store.uploads(user["user_id"])] == [ok.json()["video_id"]]


def test_over_the_size_limit_is_413(settings, short_bikes):
    small = settings.model_copy(update={"max_upload_bytes": 10_000})
    with serve(create_app(small)) as base, httpx.Client(base_url=base) as c:
        r = _post(c, new_user(c), "bikes.mp4", short_bikes.read_bytes())
    assert r.status_code == 413 and r.json()["code"] == "too_large" and "limit" in r.json()["detail"]
    assert Store(settings.database_url).changes_since("uploads", 0)[0] == []


def test_unknown_video_and_media_are_404(client, user):
    assert client.get("/v1/videos/nope", headers=user["headers"]).status_code == 404
    assert client.get("/v1/media/raw/anything.mp4").status_code == 404  # raw uploads are private
    assert client.get("/v1/effects/nope").status_code == 404


@pytest.mark.parametrize(
    "head,expected",
    [
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100, "mp4"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "matroska"),
        (b"GIF89a\x01\x00", None),
        (b"Good morning, this is text", None),
    ],
)
def test_sniff_recognizes_containers(head, expected):
    assert sniff(head)[0] == expected
