"""``POST /v1/effects/{slug}/runs``, ``GET /v1/runs[/{id}]`` over real HTTP: parameters checked
against the effect's declared ranges with a readable reason, the video named one way, the
price reserved once per Idempotency-Key, runs only their owner (or an admin) sees, paged.

A published effect is a ``gallery_revisions`` row as M10 writes it (``tests.published``);
nothing here runs Dagster (the runs stay queued: tests/test_effect_runs.py runs them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from api.app import create_app
from economics.ledger import job_id
from resources.lake import Lake
from resources.services.gallery import pinned_revision
from resources.store import parameters
from resources.store.client import Store
from tests.api_users import ADMIN, new_user, new_workspace
from tests.published import SLUG, publish
from tests.server import serve

PRICE = 2  # data/effects.yaml warm_grade


@pytest.fixture
def api(settings):
    app = create_app(settings)
    publish(app.state.clients.store)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, app.state.clients.store


def _upload(store, user: dict, n: int = 1) -> str:
    """An upload of ``user`` whose bytes are stored (a store row, as the intake writes it)."""
    fields = {"filename": "a.mp4", "content_type": "video/mp4", "sha256": f"{n:064x}", "bytes_": 10, "media_key": "k"}
    return store.create_upload(user["user_id"], **fields).upload["video_id"]


def _run(client, user, slug: str = SLUG, key: str | None = None, **form):
    headers = user["headers"] | ({"Idempotency-Key": key} if key else {})
    files = {"file": form.pop("file")} if "file" in form else None
    return client.post(f"/v1/effects/{slug}/runs", headers=headers, data=form, files=files)


def test_a_run_uses_the_pinned_revision_priced_as_published(settings):
    store = Store(settings.database_url)
    lake = Lake(uri=settings.lake_uri)
    assert pinned_revision(store, lake, SLUG) is None
    publish(store, strength=0.3, at=datetime(2026, 1, 1, tzinfo=UTC))
    newer = publish(store, strength=0.7, at=datetime(2026, 2, 1, tzinfo=UTC))
    revision = pinned_revision(store, lake, SLUG)
    assert revision is not None
    assert (revision.revision_id, revision.effect_type, revision.params, revision.price_tokens) == (
        newer,
        "warm_grade",
        {"strength": 0.7},
        PRICE,
    )


def test_a_run_is_queued_with_its_price_reserved(api):
    client, store = api
    user = new_user(client)
    video = _upload(store, user)
    r = _run(client, user, video_id=video, params=json.dumps({"strength": 0.9}))
    assert r.status_code == 202, r.text
    run = r.json()
    pinned = pinned_revision(store, None, SLUG)
    assert pinned is not None
    assert (run["status"], run["tokens_reserved"], run["revision_id"]) == ("queued", PRICE, pinned.revision_id)
    assert run["params"] == {"strength": 0.9} and run["status_url"] == f"/v1/runs/{run['run_id']}"
    balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
    assert balance["reserved_outstanding"] == PRICE
    [entry] = [e for e in store.entries(user["user_id"]) if e["kind"] == "reserve"]
    assert (entry["task_id"], entry["correlation_id"]) == (job_id(run["run_id"]), run["run_id"])
    status = client.get(run["status_url"], headers=user["headers"]).json()
    assert (status["status"], status["progress"], status["tokens_charged"], status["output_url"]) == (
        "queued",
        0.0,
        0,
        None,
    )
    assert status["routing"] is None  # admins only
    # No params: the revision's own.
    assert _run(client, user, video_id=video).json()["params"] == {"strength": 0.45}


def test_a_run_reserves_the_price_in_force_when_it_is_accepted(api):
    """An effect type's runtime price parameter (an applied price revision) prices its runs
    from the moment it is set, over the revision's price; a queued run keeps the price it was
    accepted at; a rollback restores the revision's price."""
    client, store = api
    user = new_user(client)
    video = _upload(store, user)
    before = _run(client, user, video_id=video).json()
    assert before["price"] == {"tokens": PRICE, "revision_price_tokens": PRICE, "source": "revision", "change_id": None}
    with store.write() as s:
        change = parameters.apply(
            s, "effect", "warm_grade", "price_tokens", 5, source="recommendation", actor="admin", reason="margin"
        )
    raised = _run(client, user, video_id=video).json()
    assert raised["tokens_reserved"] == 5
    priced = {"tokens": 5, "revision_price_tokens": PRICE, "source": "runtime_parameter"}
    assert raised["price"] == priced | {"change_id": change["change_id"]}
    status = client.get(raised["status_url"], headers=user["headers"]).json()
    assert status["price"] == raised["price"] and status["tokens_reserved"] == 5
    # The reservation is the price in force, and the earlier run kept its own.
    balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
    assert balance["reserved_outstanding"] == PRICE + 5
    assert client.get(before["status_url"], headers=user["headers"]).json()["price"]["tokens"] == PRICE
    # An effect type's parameter prices only its own runs; a rollback restores the revision's.
    with store.write() as s:
        parameters.apply(s, "effect", "cartoon", "price_tokens", 9, source="recommendation", actor="a", reason="r")
        parameters.rollback(s, change["change_id"], actor="admin", reason="undo")
    after = _run(client, user, video_id=video).json()
    assert (after["tokens_reserved"], after["price"]["source"]) == (PRICE, "revision")


def test_a_run_the_price_in_force_cannot_cover_is_refused_before_anything_is_written(api):
    client, store = api
    user = new_user(client)
    video = _upload(store, user)
    with store.write() as s:
        parameters.apply(
            s, "effect", "warm_grade", "price_tokens", 10_000, source="recommendation", actor="a", reason="r"
        )
    r = _run(client, user, video_id=video)
    assert r.status_code == 402, r.text
    assert client.get("/v1/runs", headers=user["headers"]).json()["items"] == []


@pytest.mark.parametrize(
    ("form", "status", "code", "reason"),
    [
        ({"params": '{"strength": 1.5}'}, 422, "parameter_out_of_range", "strength = 1.5 is outside its range [0.0, 1"),
        ({"params": '{"strength": -0.1}'}, 422, "parameter_out_of_range", "[0.0, 1.0]"),
        ({"params": '{"factor": 2}'}, 422, "unknown_parameter", "settable: strength [0.0, 1.0]"),
        ({"params": '{"strength": "high"}'}, 422, "invalid_parameter", "must be a number"),
        ({"params": '{"strength": true}'}, 422, "invalid_parameter", "must be a number"),
        ({"params": "[0.5]"}, 422, "invalid_params", "JSON object"),
        ({"params": "{strength"}, 422, "invalid_params", "JSON object"),
        ({}, 422, "video_required", "Name your video"),
    ],
)
def test_invalid_runs_are_readable_problems_and_reserve_nothing(api, form, status, code, reason):
    client, store = api
    user = new_user(client)
    if form.get("params") or form == {}:
        form = form | ({"video_id": _upload(store, user)} if form else {})
    r = _run(client, user, **form)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code and reason in r.json()["detail"]
    assert [e["kind"] for e in store.entries(user["user_id"])] == ["credit"]
    assert client.get("/v1/runs", headers=user["headers"]).json()["items"] == []


def test_an_integer_range_takes_whole_numbers(api, settings):
    client, store = api
    publish(store, slug="toon", effect_type="cartoon", params={"levels": 6})
    user = new_user(client)
    video = _upload(store, user)
    bad = _run(client, user, slug="toon", video_id=video, params='{"levels": 4.5}')
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_parameter")
    assert "whole number" in bad.json()["detail"]
    ok = _run(client, user, slug="toon", video_id=video, params='{"levels": 4.0}')
    assert ok.status_code == 202 and ok.json()["params"] == {"levels": 4}
    assert ok.json()["tokens_reserved"] == 4  # the cartoon's price


def test_unknown_effect_foreign_video_and_no_tokens(api, settings):
    client, store = api
    user, other = new_user(client), new_user(client)
    video = _upload(store, user)
    missing = _run(client, user, slug="no-such-effect", video_id=video)
    assert (missing.status_code, missing.json()["code"]) == (404, "effect_not_found")
    foreign = _run(client, other, video_id=video)  # someone else's video: as if it did not exist
    assert (foreign.status_code, foreign.json()["code"]) == (404, "upload_not_found")
    poor_workspace = new_workspace(client)
    poor, key = store.create_user(poor_workspace, welcome_tokens=1)
    poor_user = {"user_id": poor["user_id"], "headers": {"Authorization": f"Bearer {key}"}}
    r = _run(client, poor_user, video_id=_upload(store, poor_user))
    assert (r.status_code, r.json()["code"]) == (402, "insufficient_tokens")
    assert store.balance(poor["user_id"])["reserved_outstanding"] == 0


def test_a_new_file_goes_through_the_upload_intake_and_starts_no_creation_job(api, short_bikes):
    client, store = api
    user = new_user(client)
    refused = _run(client, user, file=("notes.mp4", b"not a video, just text\n" * 20, "video/mp4"))
    assert (refused.status_code, refused.json()["code"]) == (415, "not_a_video")
    run = _run(client, user, file=("mine.mp4", short_bikes.read_bytes(), "video/mp4")).json()
    upload = store.upload(run["video_id"], user["user_id"])
    assert (upload["source"], upload["status"], upload["media_key"].startswith("raw/")) == ("run", "uploaded", True)
    # The run holds the workspace's GPU slot and is the user's job; its input upload is neither.
    assert store.gpu_load(user["workspace_id"])["active"] == 1
    assert client.get("/v1/usage", headers=user["headers"]).json()["jobs"] == 1
    # Sent again as an example, the same video becomes an example upload (a creation job).
    again = client.post(
        "/v1/uploads", headers=user["headers"], files={"file": ("ex.mp4", short_bikes.read_bytes(), "video/mp4")}
    ).json()
    assert again["video_id"] == run["video_id"] and not again["duplicate"]
    assert store.upload(run["video_id"])["source"] == "upload"
    assert store.gpu_load(user["workspace_id"])["active"] == 2


def test_the_same_idempotency_key_replays_one_run_and_another_body_is_refused(api):
    client, store = api
    user = new_user(client)
    video = _upload(store, user)
    first = _run(client, user, key="k1", video_id=video, params='{"strength": 0.2}')
    replay = _run(client, user, key="k1", video_id=video, params='{"strength": 0.2}')
    assert first.status_code == replay.status_code == 202 and first.json() == replay.json()
    assert [e["kind"] for e in store.entries(user["user_id"])].count("reserve") == 1
    other = _run(client, user, key="k1", video_id=video, params='{"strength": 0.3}')
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    # The key is per route: the same key on another effect is another request.
    assert len(client.get("/v1/runs", headers=user["headers"]).json()["items"]) == 1


def test_only_the_owner_or_an_admin_sees_a_run_and_lists_page(api):
    client, store = api
    user, other = new_user(client), new_user(client)
    video = _upload(store, user)
    ids = [_run(client, user, video_id=video).json()["run_id"] for _ in range(3)]
    run_id = ids[0]
    assert client.get(f"/v1/runs/{run_id}", headers=other["headers"]).status_code == 404
    assert client.get(f"/v1/runs/{run_id}").status_code == 401
    admin_view = client.get(f"/v1/runs/{run_id}", headers=ADMIN).json()
    assert admin_view["routing"] == {
        "provider_id": None,
        "provider_version": None,
        "decision": None,
        "propensity": None,
        "attempts": 0,
    }
    assert client.get("/v1/runs", headers=other["headers"]).json() == {"items": [], "next_cursor": None}
    page = client.get("/v1/runs", headers=user["headers"], params={"limit": 2}).json()
    assert [r["run_id"] for r in page["items"]] == ids[:2] and page["next_cursor"]
    rest = client.get("/v1/runs", headers=user["headers"], params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["run_id"] for r in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    bad = client.get("/v1/runs", headers=user["headers"], params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")


def test_runs_count_in_the_workspace_gpu_admission(api):
    client, store = api
    workspace = new_workspace(client, max_concurrent_gpu_jobs=0)
    user = new_user(client, workspace_id=workspace)
    r = _run(client, user, video_id=_upload(store, user))
    assert (r.status_code, r.json()["code"]) == (403, "gpu_quota_zero")
