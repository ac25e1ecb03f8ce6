"""Real tenants at the API: users and API keys made by an admin, Bearer authentication, the
admin role, isolation (another user's ids are 404s), random video ids with de-duplication
inside a workspace only, the welcome credit once at user creation, strict token amounts and
Idempotency-Key replays."""

from __future__ import annotations

import json

import httpx
import pytest

from api.app import create_app
from resources.store import Store
from tests.api_users import ADMIN, bearer, new_user, new_workspace, upload
from tests.server import serve

MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200  # sniffs as mp4; never decoded here


@pytest.fixture
def client(settings):
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


def test_keys_authenticate_and_the_admin_role_gates_admin_routes(client, settings):
    alice = new_user(client, name="alice")
    me = client.get("/v1/me", headers=alice["headers"])
    assert me.status_code == 200 and me.json()["user_id"] == alice["user_id"] and me.json()["role"] == "user"
    assert alice["api_key"].startswith("elk_") and alice["balance"]["available"] == settings.welcome_credit_tokens
    for headers in (None, bearer("elk_000000000000_" + "x" * 43), bearer("not-a-key"), {"Authorization": "Basic x"}):
        r = client.get("/v1/me", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
    assert client.get("/v1/admin/approvals", headers=alice["headers"]).status_code == 403
    assert client.get("/v1/admin/approvals").status_code == 401
    # An admin made by the bootstrap admin is an admin too.
    boss = new_user(client, role="admin")
    assert client.get("/v1/admin/approvals", headers=boss["headers"]).status_code == 200


def test_a_user_sees_only_their_own(client):
    workspace = new_workspace(client, "acme")
    alice, colleague = new_user(client, workspace), new_user(client, workspace)
    mallory = new_user(client)  # another workspace
    mine = upload(client, alice, MP4, "mine.mp4").json()
    vid = mine["video_id"]
    assert vid.startswith("v_") and not mine["duplicate"]
    assert client.get(f"/v1/videos/{vid}", headers=alice["headers"]).status_code == 200
    for other in (colleague, mallory):
        for path in (f"/v1/videos/{vid}", f"/v1/users/{alice['user_id']}/balance"):
            r = client.get(path, headers=other["headers"])
            assert r.status_code == 404, (path, r.text)
        r = client.get(f"/v1/users/{alice['user_id']}/notifications", headers=other["headers"])
        assert r.status_code == 404
    # The same bytes: the same user gets their upload back; a colleague gets their own row
    # (told it is a duplicate within the workspace); another tenant learns nothing.
    again = upload(client, alice, MP4, "again.mp4").json()
    assert again["video_id"] == vid and again["duplicate"]
    theirs = upload(client, colleague, MP4, "theirs.mp4").json()
    assert theirs["video_id"] != vid and theirs["duplicate"]
    other_tenant = upload(client, mallory, MP4, "x.mp4").json()
    assert other_tenant["video_id"] not in (vid, theirs["video_id"]) and not other_tenant["duplicate"]
    seen = client.get(f"/v1/videos/{theirs['video_id']}", headers=colleague["headers"]).json()
    assert seen["upload"]["user_id"] == colleague["user_id"] and seen["upload"]["filename"] == "theirs.mp4"
    # Admins read anyone's.
    assert client.get(f"/v1/videos/{vid}", headers=ADMIN).status_code == 200
    assert client.get(f"/v1/users/{alice['user_id']}/balance", headers=ADMIN).status_code == 200


def test_the_welcome_credit_comes_once_with_the_user_not_with_uploads(client, settings):
    user = new_user(client)
    for i in range(5):
        assert upload(client, user, b"just text", f"t{i}.mp4").status_code == 415
    balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
    assert balance["credited"] == settings.welcome_credit_tokens


@pytest.mark.parametrize("tokens", ["5", 5.5, True, 0, -1, 10**9 + 1, None])
def test_top_up_amounts_must_be_positive_integers(client, tokens):
    user = new_user(client)
    r = client.post(
        f"/v1/admin/users/{user['user_id']}/credits", headers=ADMIN, json={"tokens": tokens, "topup_id": "p1"}
    )
    assert r.status_code == 422, r.text


def test_a_top_up_that_would_overflow_is_422_and_unknown_users_404(client, monkeypatch):
    # The lifetime bound is 10^15 (a million top-ups of the maximum); lowered here so the
    # API's answer to an overflow can be seen in three requests.
    monkeypatch.setattr("resources.store.tokens.MAX_BALANCE", 2 * 10**9 + 200)
    user = new_user(client)
    path = f"/v1/admin/users/{user['user_id']}/credits"
    for i in range(2):
        assert client.post(path, headers=ADMIN, json={"tokens": 10**9, "topup_id": f"p{i}"}).status_code == 201
    over = client.post(path, headers=ADMIN, json={"tokens": 10**9, "topup_id": "p2"})
    assert over.status_code == 422 and over.json()["code"] == "balance_overflow"
    unknown = client.post("/v1/admin/users/u_nobody/credits", headers=ADMIN, json={"tokens": 1, "topup_id": "x"})
    assert unknown.status_code == 404


def test_idempotency_key_replays_and_refuses_another_body(client):
    workspace = new_workspace(client)
    body = {"workspace_id": workspace, "role": "user", "name": "retry"}
    key = {"Idempotency-Key": "create-retry-user"}
    first = client.post("/v1/admin/users", headers=ADMIN | key, json=body)
    second = client.post("/v1/admin/users", headers=ADMIN | key, json=body)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    other = client.post("/v1/admin/users", headers=ADMIN | key, json=body | {"name": "someone else"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    user = first.json() | {"headers": bearer(first.json()["api_key"])}
    h = user["headers"] | {"Idempotency-Key": "up-1"}
    a = client.post("/v1/uploads", headers=h, files={"file": ("a.mp4", MP4, "video/mp4")})
    b = client.post("/v1/uploads", headers=h, files={"file": ("a.mp4", MP4, "video/mp4")})
    assert a.status_code == b.status_code == 202 and a.json() == b.json()
    c = client.post("/v1/uploads", headers=h, files={"file": ("a.mp4", MP4 + b"\x00", "video/mp4")})
    assert c.status_code == 422
    # Keys are per user: another user's same key is theirs alone.
    other_user = new_user(client, workspace)
    d = client.post(
        "/v1/uploads",
        headers=other_user["headers"] | {"Idempotency-Key": "up-1"},
        files={"file": ("a.mp4", MP4, "video/mp4")},
    )
    assert d.status_code == 202 and d.json()["video_id"] != a.json()["video_id"]


def test_priorities_are_validated_and_stored_normalised(client, settings):
    user = new_user(client)
    files = {"file": ("p.mp4", MP4, "video/mp4")}
    for bad in ('{"quality": -1}', '{"quality": 0, "cost": 0}', "not json", '{"beauty": 1}', '{"cost": "1"}'):
        r = client.post("/v1/uploads", headers=user["headers"], files=files, data={"priorities": bad})
        assert r.status_code == 422, (bad, r.text)
    ok = client.post(
        "/v1/uploads", headers=user["headers"], files=files, data={"priorities": '{"cost": 3, "speed": 1}'}
    )
    assert ok.status_code == 202, ok.text
    stored = Store(settings.database_url).upload(ok.json()["video_id"], user["user_id"])
    assert json.loads(stored["priorities"]) == {"quality": 0.0, "cost": 0.75, "speed": 0.25}


def test_a_users_uploads_and_notifications_page_with_a_cursor(client, settings):
    user = new_user(client)
    other = new_user(client)
    ids = [upload(client, user, MP4 + bytes([i]), f"c{i}.mp4").json()["video_id"] for i in range(5)]
    upload(client, other, MP4, "theirs.mp4")
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/uploads", headers=user["headers"], params=params).json()
        assert len(page["items"]) <= 2
        seen += [u["video_id"] for u in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ids  # oldest first, each once, none of another user's
    store = Store(settings.database_url)
    for i in range(3):
        store.notify(user["user_id"], "test", f"note {i}")
    first = client.get(f"/v1/users/{user['user_id']}/notifications", headers=user["headers"], params={"limit": 2})
    rest = client.get(
        f"/v1/users/{user['user_id']}/notifications",
        headers=user["headers"],
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    titles = [n["title"] for n in first.json()["items"] + rest.json()["items"]]
    assert titles == ["note 0", "note 1", "note 2"] and rest.json()["next_cursor"] is None
    bad = client.get("/v1/uploads", headers=user["headers"], params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"
