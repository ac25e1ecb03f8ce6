"""The malformed-file corpus (tests/fixtures/malformed.py) through the real intake: the API
upload, then M1 ingest for what the door lets in. Every file ends with a 4xx and a readable
reason, a VideoRejected with a readable reason, or (a real video under a hostile name or with
trailing bytes) accepted and ingested; stored file names are sanitized; nothing else is lost."""

from __future__ import annotations

import re
import unicodedata

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from assets.ingest import VideoRejected, probe_video, validate
from assets.ingest.asset import ingest_limits
from resources.media import MediaStore
from resources.store import Store
from tests.api_users import new_user, new_workspace
from tests.fixtures.malformed import corpus

pytestmark = [pytest.mark.slow, pytest.mark.video]


BOUNDARY = "effectlake-malformed-7f3a9c"


def upload(client: TestClient, user: dict, name: str, data: bytes, content_type: str):
    """``POST /v1/uploads`` of one file as a hostile client of ``user`` (``tests.api_users.new_user``)
    sends it; returns the response.

    The multipart body is written by hand so the file name goes out byte for byte: HTTP
    clients percent-encode control characters in it, an attacker's tool does not."""
    part = f'Content-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'
    body = b"".join(
        [
            f"--{BOUNDARY}\r\n{part}".encode(),
            data,
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ]
    )
    headers = user["headers"] | {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return client.post("/v1/uploads", content=body, headers=headers)


# Signs of an internal error leaking to a user: a traceback, an exception's repr, a path on
# the server.
LEAKS = re.compile(r"Traceback|File \"|Error\(|Exception|/(tmp|dev|work|home|usr|var|etc|root|proc|opt)/")


def _readable(reason: str | None, *server_paths: str) -> None:
    assert reason and reason.strip(), "empty reason"
    assert reason[0].isupper() and reason.rstrip().endswith("."), reason
    assert "\n" not in reason and not LEAKS.search(reason), reason
    assert not any(p in reason for p in server_paths), reason


def _sanitized(name: str) -> None:
    assert name and "/" not in name and "\\" not in name and not name.startswith("."), repr(name)
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name), repr(name)
    assert len(name.encode("utf-8")) <= 255, len(name)


def test_every_malformed_upload_ends_with_a_readable_reason(settings, tmp_path):
    cases = corpus(tmp_path / "corpus")
    assert len(cases) >= 25 and len({c.name for c in cases}) == len(cases)
    server_paths = (str(tmp_path), settings.lake_uri, settings.media_uri)
    store, media = Store(settings.database_url), MediaStore(uri=settings.media_uri)
    limits = ingest_limits(settings)
    outcomes: dict[str, tuple[str, object]] = {}

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        # A quota above the corpus: every file reaches the intake's checks, not the GPU admission.
        user = new_user(client, new_workspace(client, "corpus", max_concurrent_gpu_jobs=100))
        responses = {c.name: upload(client, user, c.filename, c.data, c.content_type) for c in cases}

    for case in cases:
        r = responses[case.name]
        assert r.status_code < 500, f"{case.name}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            body = r.json()
            _readable(body["detail"], *server_paths)
            outcomes[case.name] = ("door", f"{r.status_code} {body.get('code')}")
            continue
        assert r.status_code == 202, case.name
        row = store.upload(r.json()["video_id"])
        _sanitized(row["filename"])
        with media.local_file(row["media_key"]) as path:
            try:
                validate(probe_video(path, limits), limits)
            except VideoRejected as rejected:
                _readable(rejected.reason, *server_paths, path)
                outcomes[case.name] = ("m1", rejected.code)
                continue
        outcomes[case.name] = ("accepted", None)

    rejections = store.changes_since("upload_rejections", 0)[0]
    # The intake's refusals are recorded; a request the web framework could not parse (a raw CR
    # in a multipart header) never reached the intake, so it has nothing to record.
    recorded = {"empty_file", "not_a_video", "unsupported_media_type", "too_large", "UserQuotaExceeded"}
    refused = [detail for stage, detail in outcomes.values() if stage == "door"]
    assert len(rejections) == sum(detail.split()[1] in recorded for detail in refused)
    for rejection in rejections:
        _sanitized(rejection["filename"])
        _readable(rejection["reason"], *server_paths)

    expected = {}
    for c in cases:
        if c.stage == "door":
            expected[c.name] = ("door", f"{c.expect} {c.code}")
        elif c.stage == "m1":
            got = outcomes[c.name]
            expected[c.name] = ("m1", got[1] if got[0] == "m1" and got[1] in c.expect else c.expect)
        else:
            expected[c.name] = ("accepted", None)
    assert outcomes == expected
    # Each accepted upload is its own video: nothing was merged away or lost.
    accepted = [c for c in cases if c.stage != "door"]
    assert len(store.uploads(user["user_id"], limit=1000)) == len(accepted)
