"""Presigned and link uploads over the real API (uvicorn on 127.0.0.1) with the real store:
the happy paths end as upload rows of the caller; every refusal says why and is recorded."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from api.app import create_app
from api.routers.upload_flows import incoming_key, link_resolver
from resources.intake.signing import SignedGrant, sign
from tests.intake_server import platform_app
from tests.server import serve

pytestmark = pytest.mark.video  # uploads and downloads a real video

SECRET = "test-upload-signing-secret"


@pytest.fixture
def video(samples_dir) -> bytes:
    return (samples_dir / "carphone_pristine.mp4").read_bytes()


@pytest.fixture(scope="module")
def platform(samples_dir):
    with serve(platform_app(samples_dir / "carphone_pristine.mp4")) as base:
        yield base


@pytest.fixture
def app(settings, platform):
    return create_app(
        settings.model_copy(
            update={"upload_signing_secret": SECRET, "link_test_hosts": platform.removeprefix("http://")}
        )
    )


@pytest.fixture
def api(app, store):
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield client


@pytest.fixture
def store(app):
    store = app.state.clients.store
    store.upgrade()  # the API's store connects lazily; a test's database starts empty
    return store


@pytest.fixture
def media(app):
    return app.state.clients.media


@pytest.fixture
def new_user(store):
    workspace = store.create_workspace("intake tests")

    def make(tokens: int = 100) -> dict:
        user, key = store.create_user(workspace["workspace_id"], welcome_tokens=tokens)
        return user | {"auth": {"Authorization": f"Bearer {key}"}}

    return make


def _relative(url: str) -> str:
    """The path and query of an upload URL (the API signs with its public base URL)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _presign(api, user, data: bytes, content_type: str = "video/mp4", filename: str = "clip.mp4", **extra):
    return api.post(
        "/v1/uploads/presign",
        json={"filename": filename, "content_type": content_type, "bytes": len(data), **extra},
        headers=user["auth"],
    )


def _rejections(store, user_id: str) -> list[dict]:
    rows, _ = store.changes_since("upload_rejections", 0, 10_000)
    return [r for r in rows if r["user_id"] == user_id]


# -- presigned ---------------------------------------------------------------------------


def test_presign_put_complete_makes_an_upload_of_the_caller(api, store, media, new_user, video):
    user = new_user()
    presigned = _presign(api, user, video, description="a warm grade")
    assert presigned.status_code == 201, presigned.text
    body = presigned.json()
    video_id = body["video_id"]
    assert body["method"] == "PUT" and body["headers"] == {"Content-Type": "video/mp4"}
    assert body["upload_url"].startswith(f"http://testserver/v1/uploads/{video_id}/content?")
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert 800 < (expires_at - datetime.now(UTC)).total_seconds() <= 900
    pending = store.upload(video_id, user["user_id"])
    assert (pending["status"], pending["source"], pending["sha256"]) == ("pending", "presign", None)
    assert pending["description"] == "a warm grade"

    put = api.put(_relative(body["upload_url"]), content=video, headers=body["headers"])
    assert put.status_code == 200 and put.json() == {"video_id": video_id, "bytes": len(video)}

    done = api.post(f"/v1/uploads/{video_id}/complete", headers=user["auth"])
    assert done.status_code == 202, done.text
    assert done.json() == {
        "video_id": video_id,
        "status_url": f"/v1/videos/{video_id}",
        "duplicate": False,
        "bytes": len(video),
    }
    sha = hashlib.sha256(video).hexdigest()
    row = store.upload(video_id, user["user_id"])
    assert (row["status"], row["sha256"], row["bytes"], row["media_key"]) == (
        "uploaded",
        sha,
        len(video),
        f"raw/{user['workspace_id']}/{sha}.mp4",
    )
    with media.local_file(row["media_key"]) as path:
        assert Path(path).read_bytes() == video
    assert not media.exists(incoming_key(video_id))
    # Completing again (a client retry) answers the same; another caller learns nothing.
    again = api.post(f"/v1/uploads/{video_id}/complete", headers=user["auth"])
    assert again.status_code == 202 and again.json()["video_id"] == video_id
    assert api.post(f"/v1/uploads/{video_id}/complete", headers=new_user()["auth"]).status_code == 404
    assert api.post(f"/v1/uploads/{video_id}/complete").status_code == 401
    # The same bytes presigned again by the same user fold into the first upload.
    second = _presign(api, user, video).json()
    api.put(_relative(second["upload_url"]), content=video, headers=second["headers"])
    folded = api.post(f"/v1/uploads/{second['video_id']}/complete", headers=user["auth"])
    assert folded.status_code == 202 and folded.json()["video_id"] == video_id and folded.json()["duplicate"]
    assert [u["video_id"] for u in store.uploads(user["user_id"])] == [video_id]
    assert not media.exists(incoming_key(second["video_id"]))


def test_signed_urls_refuse_forgery_changes_expiry_and_excess(api, new_user, video):
    user = new_user()
    body = _presign(api, user, video).json()
    url = _relative(body["upload_url"])
    path, query = url.split("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}

    def put(q: dict, content=video, headers=None):
        return api.put(f"{path}?{urlencode(q)}", content=content, headers=headers or body["headers"])

    forged = put(params | {"signature": "A" * 43})
    assert forged.status_code == 403 and "signature" in forged.text
    assert put(params | {"max_bytes": str(len(video) * 2)}).status_code == 403  # more room than signed
    assert put(params | {"expires": str(int(params["expires"]) + 3600)}).status_code == 403
    other = new_user()
    theirs = _presign(api, other, video).json()["video_id"]
    assert api.put(f"/v1/uploads/{theirs}/content?{query}", content=video).status_code == 403  # another key
    # A correctly signed but expired URL.
    expired = int(time.time()) - 1
    grant = SignedGrant("PUT", incoming_key(body["video_id"]), expired, len(video))
    late = put({"expires": expired, "max_bytes": len(video), "signature": sign(SECRET.encode(), grant)})
    assert late.status_code == 403 and "expired" in late.text
    # More bytes than signed: refused on the declared length, and while reading a chunked body.
    assert put(params, content=video + b"x").status_code == 413
    chunked = put(params, content=iter([video, b"extra"]))
    assert chunked.status_code == 413
    assert put(params).status_code == 200  # the URL itself still works


def test_complete_checks_what_arrived(api, store, media, new_user, video):
    user = new_user()
    early = _presign(api, user, video).json()
    waiting = api.post(f"/v1/uploads/{early['video_id']}/complete", headers=user["auth"])
    assert waiting.status_code == 409
    text = b"not a video at all, just text\n" * 100
    body = _presign(api, user, text, filename="notes.mp4").json()
    assert api.put(_relative(body["upload_url"]), content=text, headers=body["headers"]).status_code == 200
    refused = api.post(f"/v1/uploads/{body['video_id']}/complete", headers=user["auth"])
    assert refused.status_code == 415 and refused.json()["code"] == "not_a_video"
    assert store.upload(body["video_id"], user["user_id"])["status"] == "rejected"
    assert not media.exists(incoming_key(body["video_id"]))
    # Fewer bytes than announced.
    short = _presign(api, user, video + b"\0" * 10).json()
    grant_query = parse_qs(urlsplit(short["upload_url"]).query)
    assert int(grant_query["max_bytes"][0]) == len(video) + 10
    assert api.put(_relative(short["upload_url"]), content=video, headers=short["headers"]).status_code == 200
    mismatch = api.post(f"/v1/uploads/{short['video_id']}/complete", headers=user["auth"])
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "size_mismatch"
    codes = sorted(r["code"] for r in _rejections(store, user["user_id"]))
    assert codes == ["not_a_video", "size_mismatch"]


def test_presign_refuses_before_any_url(api, store, settings, new_user, video):
    user = new_user()
    wrong_type = _presign(api, user, video, content_type="application/x-msdownload")
    assert wrong_type.status_code == 415
    too_big = api.post(
        "/v1/uploads/presign",
        json={"filename": "big.mp4", "content_type": "video/mp4", "bytes": settings.max_upload_bytes + 1},
        headers=user["auth"],
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "too_large"
    broke = new_user(tokens=0)
    paused = _presign(api, broke, video)
    assert paused.status_code == 402 and paused.json()["code"] == "UserQuotaExceeded"
    assert _presign(api, {"auth": {}}, video).status_code == 401
    assert sorted(r["code"] for r in _rejections(store, user["user_id"])) == ["too_large", "unsupported_media_type"]
    assert [r["code"] for r in _rejections(store, broke["user_id"])] == ["UserQuotaExceeded"]


# -- links -----------------------------------------------------------------------------------


def test_a_link_becomes_an_upload_of_the_caller(api, store, platform, new_user, video):
    user = new_user()
    body = {"url": f"{platform}/video.mp4", "description": "  make it look like a cartoon "}
    accepted = api.post("/v1/uploads/link", json=body, headers=user["auth"])
    assert accepted.status_code == 202, accepted.text
    row = store.upload(accepted.json()["video_id"], user["user_id"])
    assert row["description"] == "make it look like a cartoon"  # the user's words travel with the link
    assert (row["source"], row["status"], row["sha256"], row["filename"], row["content_type"]) == (
        "link",
        "uploaded",
        hashlib.sha256(video).hexdigest(),
        "video.mp4",
        "video/mp4",
    )
    # The same video again: the caller's existing upload.
    again = api.post("/v1/uploads/link", json={"url": f"{platform}/redirect?to=/video.mp4"}, headers=user["auth"])
    assert again.status_code == 202 and again.json()["video_id"] == row["video_id"] and again.json()["duplicate"]


@pytest.mark.parametrize(
    "url, status, code",
    [
        ("{platform}/redirect?to=http://169.254.169.254/latest/meta-data/", 422, "link_refused"),
        ("{platform}/redirect?to=http://10.0.0.1/video.mp4", 422, "link_refused"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", 422, "link_refused"),
        ("file:///etc/passwd", 422, "link_refused"),
        ("{platform}/big?bytes=30000000&declare=1", 413, "too_large"),
        ("{platform}/nothing-here", 502, "link_failed"),
    ],
)
def test_bad_links_are_refused_and_recorded(api, store, platform, new_user, url, status, code):
    user = new_user()
    refused = api.post("/v1/uploads/link", json={"url": url.format(platform=platform)}, headers=user["auth"])
    assert refused.status_code == status and refused.json()["code"] == code, refused.text
    assert [r["code"] for r in _rejections(store, user["user_id"])] == [code]
    assert store.uploads(user["user_id"]) == []


def test_a_platform_name_on_a_private_address_is_refused(app, api, new_user):
    asked = []

    def private_dns(host, port):
        asked.append(host)
        return ["10.9.8.7"]

    app.dependency_overrides[link_resolver] = lambda: private_dns
    user = new_user()
    refused = api.post(
        "/v1/uploads/link", json={"url": "https://www.tiktok.com/@x/video/7312345678901234567"}, headers=user["auth"]
    )
    assert refused.status_code == 422 and re.search(r"10\.9\.8\.7", refused.json()["detail"])
    assert asked and set(asked) == {"www.tiktok.com"}


def test_an_s3_media_store_hands_out_s3_presigned_urls(settings, monkeypatch, video):
    # boto3 signs offline: no request leaves the machine.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEFFECTLAKETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x" * 40)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    app = create_app(settings.model_copy(update={"media_uri": "s3://media-bucket/prod"}))
    store = app.state.clients.store
    store.upgrade()
    _, key = store.create_user(store.create_workspace("s3")["workspace_id"], welcome_tokens=10)
    with serve(app) as base, httpx.Client(base_url=base) as api:
        body = _presign(api, {"auth": {"Authorization": f"Bearer {key}"}}, video).json()
        own_route = api.put(f"/v1/uploads/{body['video_id']}/content?expires=1&max_bytes=1&signature=x", content=b"")
    url = urlsplit(body["upload_url"])
    query = parse_qs(url.query)
    assert url.scheme == "https" and "media-bucket" in url.netloc
    assert url.path.endswith(f"/prod/incoming/{body['video_id']}")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert body["headers"] == {"Content-Type": "video/mp4", "Content-Length": str(len(video))}
    assert own_route.status_code == 404  # the API's own PUT route serves local stores only
