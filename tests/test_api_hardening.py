"""The API's hardening: production refuses a weak admin key, every response says nosniff,
``/v1/media`` answers 404 (never 500) to keys that are not stored files, and client
filenames are stored sanitized."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.hardening import InsecureSettings, safe_media_key
from resources.media import MediaStore
from resources.services.uploads import IncomingUpload, UploadRejected, receive_upload
from resources.store import Store
from resources.store.keys import new_key, prefix_of
from tests.api_users import new_user, upload
from tests.server import serve

MP4_HEAD = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200  # sniffs as mp4; never decoded here
HOSTILE_NAME = "../../etc/pa\x00ss\nwd.mp4"


@pytest.fixture
def client(settings):
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


# -- production refuses a weak admin key ---------------------------------------------------


@pytest.mark.parametrize("key", ["dev-admin-key", "short-but-not-default", "x" * 64, "elk_short_key"])
def test_an_admin_key_that_is_not_a_store_key_is_refused_everywhere(settings, key, deployment):
    with pytest.raises(InsecureSettings, match="EFFECTLAKE_ADMIN_KEY"):
        create_app(settings.model_copy(update={"deployment": deployment, "admin_api_key": key}))


@pytest.fixture(params=["prod", "local"])
def deployment(request):
    return request.param


def test_prod_refuses_to_start_without_an_admin(settings):
    with pytest.raises(InsecureSettings, match="no admin"):
        create_app(settings.model_copy(update={"deployment": "prod", "admin_api_key": None}))


def test_prod_refuses_unsigned_local_uploads_and_link_test_hosts(settings):
    # (prod also keeps its rate-limit counters in Redis: tests/test_api_ratelimit.py)
    prod = settings.model_copy(
        update={"deployment": "prod", "admin_api_key": new_key()[1], "redis_url": "redis://127.0.0.1:6379/0"}
    )
    with pytest.raises(InsecureSettings, match="EFFECTLAKE_UPLOAD_SIGNING_SECRET"):
        create_app(prod)
    create_app(prod.model_copy(update={"media_uri": "s3://bucket/media"}))  # S3 signs its own URLs
    with pytest.raises(InsecureSettings, match="EFFECTLAKE_LINK_TEST_HOSTS"):
        create_app(prod.model_copy(update={"upload_signing_secret": "s" * 43, "link_test_hosts": "127.0.0.1:1"}))


def test_prod_starts_with_a_store_key_and_local_makes_a_one_off_key(settings, capsys):
    create_app(
        settings.model_copy(
            update={
                "deployment": "prod",
                "admin_api_key": new_key()[1],
                "upload_signing_secret": "s" * 43,
                "redis_url": "redis://127.0.0.1:6379/0",
            }
        )
    )
    app = create_app(settings.model_copy(update={"deployment": "local", "admin_api_key": None}))
    printed = capsys.readouterr().err
    key = printed.strip().rsplit(" ", 1)[-1]
    assert "one-off admin key" in printed and prefix_of(key)
    # The printed key is an admin key of the store.
    assert app.state.clients.store.authenticate(key)["role"] == "admin"


def test_prod_refusal_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFECTLAKE_DEPLOYMENT", "prod")
    monkeypatch.delenv("EFFECTLAKE_ADMIN_KEY", raising=False)
    monkeypatch.setenv("LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDIA_URI", str(tmp_path / "media"))
    monkeypatch.setenv("MANIFEST_URI", str(tmp_path / "manifest.json"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(InsecureSettings, match="EFFECTLAKE_ADMIN_KEY"):
        create_app()


# -- nosniff ---------------------------------------------------------------------------------


def test_every_response_says_nosniff(client, settings):
    media_root = Path(settings.media_uri)
    (media_root / "proxy").mkdir(parents=True)
    (media_root / "proxy" / "ok.mp4").write_bytes(MP4_HEAD)
    user = new_user(client)
    for path, status in [("/healthz", 200), ("/v1/videos/nope", 404), ("/v1/media/proxy/ok.mp4", 200), ("/v1/me", 401)]:
        r = client.get(path, headers=user["headers"] if path.startswith("/v1/videos") else None)
        assert r.status_code == status, path
        assert r.headers["x-content-type-options"] == "nosniff", path
    refused = upload(client, user, b"plain text", "a.mp4")
    assert refused.status_code == 415 and refused.headers["x-content-type-options"] == "nosniff"


# -- /v1/media keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        "/v1/media/proxy/somedir",  # a directory
        "/v1/media/proxy/somedir/",  # a directory, trailing slash
        "/v1/media/proxy/",  # the prefix itself
        "/v1/media/proxy/ok.mp4/inside",  # a file used as a directory
        "/v1/media/proxy/a%00.mp4",  # NUL
        "/v1/media/proxy/a%0A.mp4",  # newline
        "/v1/media/proxy/%2E%2E/raw/secret.mp4",  # traversal, encoded so no client folds it
        "/v1/media/outputs/..%2F..%2Fraw%2Fsecret.mp4",
        "/v1/media/proxy/..%5Craw%5Csecret.mp4",  # backslashes
        "/v1/media/proxy/a%5Cb.mp4",
        "/v1/media/proxy/" + "a" * 256 + ".mp4",  # one segment over 255 bytes
        "/v1/media/proxy/" + "/".join(["abcdefgh"] * 120) + ".mp4",  # over 1024 bytes in all
    ],
)
def test_media_keys_that_are_not_stored_files_are_404(client, settings, raw_path):
    media_root = Path(settings.media_uri)
    (media_root / "proxy" / "somedir").mkdir(parents=True, exist_ok=True)
    (media_root / "proxy" / "ok.mp4").write_bytes(MP4_HEAD)
    (media_root / "raw").mkdir(exist_ok=True)
    (media_root / "raw" / "secret.mp4").write_bytes(MP4_HEAD)
    r = client.get(httpx.URL(client.base_url.join("/")).copy_with(raw_path=raw_path.encode()))
    assert r.status_code == 404, (raw_path, r.status_code, r.text[:200])
    # A newline never matches the route at all (Starlette's own 404); the rest reach the route.
    assert r.headers["content-type"] == "application/problem+json" and r.json()["code"] == "not_found"
    assert r.json()["detail"] == ("Not Found" if "%0A" in raw_path else "no such media")


def test_safe_media_key():
    assert safe_media_key("proxy/abc.mp4") and safe_media_key("outputs/run/x.mp4")
    assert safe_media_key("proxy/" + "a" * 251 + ".mp4")  # a 255-byte segment is allowed
    for bad in ["proxy/../x", "proxy\\x", "proxy/a\x00", "proxy//x", "proxy/./x", "proxy/", "proxy/" + "é" * 128]:
        assert not safe_media_key(bad), bad


# -- sanitized filenames -------------------------------------------------------------------


def _receive(settings, user: dict, data: bytes, filename: str | None, content_type: str = "video/mp4"):
    return receive_upload(
        Store(settings.database_url),
        MediaStore(uri=settings.media_uri),
        IncomingUpload(_Stream(data), filename, content_type, user["user_id"], user["workspace_id"]),
        max_upload_bytes=settings.max_upload_bytes,
    )


class _Stream:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, n: int = -1) -> bytes:
        out, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        return out


def test_filenames_are_stored_sanitized_in_uploads_and_rejections(settings, client):
    user = new_user(client)
    _receive(settings, user, MP4_HEAD, HOSTILE_NAME)
    with pytest.raises(UploadRejected):
        _receive(settings, user, b"plain text", HOSTILE_NAME)
    with pytest.raises(UploadRejected):
        _receive(settings, user, b"plain text", None)
    store = Store(settings.database_url)
    assert [u["filename"] for u in store.uploads(user["user_id"])] == ["passwd.mp4"]
    rejected = store.changes_since("upload_rejections", 0)[0]
    assert sorted(r["filename"] for r in rejected) == ["passwd.mp4", "upload"]  # no name → a label


def test_filenames_through_http_keep_no_path(client, settings):
    user = new_user(client)
    r = upload(client, user, MP4_HEAD, "..\\..\\etc/evil.mp4")
    assert r.status_code == 202, r.text
    assert [u["filename"] for u in Store(settings.database_url).uploads(user["user_id"])] == ["evil.mp4"]
