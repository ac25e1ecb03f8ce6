"""``GET /v1/usage`` shows the caller their own jobs, compute, storage and tokens; every
lake list pages with an opaque cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

from api.app import create_app
from api.pagination import MAX_LIMIT, decode_cursor, encode_cursor, frame_page, seq_page
from api.problems import ProblemError
from resources.lake import Lake
from resources.schemas import APPROVAL_REQUESTS, EXECUTION_EVENTS
from tests.api_users import ADMIN
from tests.server import serve
from tests.store_rows import pending_upload

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _task_event(video_id: str, task: str, selection: str, seconds: float, out_bytes: int, minute: int) -> dict:
    return {
        "event_id": f"e-{task}-{minute}",
        "event_type": "TaskSucceeded",
        "correlation_id": video_id,
        "stage": "M6",
        "occurred_at": T0 + timedelta(minutes=minute),
        "payload": "{}",
        "task_id": task,
        "provider_id": "opencv-cartoon",
        "effect_type": "cartoon",
        "status": "succeeded",
        "compute_seconds": seconds,
        "selection": selection,
        "source": "real",
        "output_bytes": out_bytes,
    }


def test_usage_is_the_callers_own(settings):
    app = create_app(settings)
    store = app.state.clients.store
    store.upgrade()
    workspace = store.create_workspace("w")["workspace_id"]
    me, my_key = store.create_user(workspace, welcome_tokens=70)
    colleague, their_key = store.create_user(workspace, welcome_tokens=5)

    def upload(user: dict, n: int, size: int) -> str:
        sha = f"{n:064x}"
        fields = {"filename": "a.mp4", "content_type": "video/mp4", "sha256": sha, "bytes_": size, "media_key": "k"}
        return store.create_upload(user["user_id"], **fields).upload["video_id"]

    mine = [upload(me, 1, 1000), upload(me, 2, 500)]
    shared = upload(colleague, 1, 1000)  # the same bytes as my first: their row, my object
    pending_upload(store, me["user_id"], "p.mp4")  # never received: not a job
    Lake(uri=settings.lake_uri).append(
        EXECUTION_EVENTS,
        pl.DataFrame(
            [
                _task_event(mine[0], "t1", "ranked", 10.0, 300, 1),
                _task_event(mine[0], "t1", "ranked", 12.5, 400, 2),  # re-executed: the latest counts
                _task_event(mine[1], "t2", "exploration", 2.5, 100, 3),
                _task_event(mine[1], "t3", "shadow", 99.0, 999, 4),  # the platform's own run
                _task_event(shared, "t4", "ranked", 7.0, 50, 5),  # the colleague's
            ]
        ),
    )
    store.reserve(me["user_id"], "job-1", 20)
    with serve(app) as base, httpx.Client(base_url=base) as c:
        r = c.get("/v1/usage", headers={"Authorization": f"Bearer {my_key}"})
        theirs = c.get("/v1/usage", headers={"Authorization": f"Bearer {their_key}"}).json()
        assert c.get("/v1/usage", params={"user_id": colleague["user_id"]}).status_code == 401
    assert r.status_code == 200, r.text
    usage = r.json()
    assert (usage["user_id"], usage["jobs"], usage["compute_seconds"]) == (me["user_id"], 2, 15.0)
    assert usage["storage_bytes"] == {"uploads": 1500, "outputs": 500, "total": 2000}
    assert (usage["tokens"]["credited"], usage["tokens"]["available"]) == (70, 50)
    assert (theirs["jobs"], theirs["compute_seconds"], theirs["storage_bytes"]["uploads"]) == (1, 7.0, 0)


def test_cursor_round_trip_and_refusals():
    assert decode_cursor(encode_cursor({"seq": 7})) == {"seq": 7}
    for bad in ("not base64!", encode_cursor({"seq": 7})[:-3] + "@@", "W10"):  # "W10" is [] (not an object)
        with pytest.raises(ProblemError) as info:
            decode_cursor(bad)
        assert (info.value.status_code, info.value.code) == (400, "invalid_cursor")
    with pytest.raises(ProblemError):
        seq_page(lambda after, n: [], encode_cursor({"seq": "x"}), 10)


def test_seq_pages_cover_a_store_list_once():
    rows = [{"seq": s} for s in (3, 5, 8, 9, 12)]

    def fetch(after: int, n: int) -> list[dict]:
        return [r for r in rows if r["seq"] > after][:n]

    seen, cursor = [], None
    while True:
        page, cursor = seq_page(fetch, cursor, 2)
        seen += [r["seq"] for r in page]
        if cursor is None:
            break
    assert seen == [3, 5, 8, 9, 12]


def test_frame_pages_follow_the_order_through_ties_and_skip_nothing_when_rows_go():
    df = pl.DataFrame(
        {
            "at": [T0, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1), T0 + timedelta(hours=2)],
            "id": ["b", "a", "d", "c", "e"],
        }
    )
    order = [("at", True), ("id", False)]  # newest first, ties by id
    page, cursor = frame_page(df, order, None, 2)
    assert [r["id"] for r in page] == ["e", "c"]
    # A row served already disappears (decided): the next page starts where it should.
    page, cursor = frame_page(df.filter(pl.col("id") != "c"), order, cursor, 2)
    assert [r["id"] for r in page] == ["d", "a"]
    page, cursor = frame_page(df, order, cursor, 2)
    assert [r["id"] for r in page] == ["b"] and cursor is None
    with pytest.raises(ProblemError):
        frame_page(df, order, encode_cursor({"k": ["not a time", "a"]}), 2)
    with pytest.raises(ProblemError):
        frame_page(df, order, encode_cursor({"k": ["a"]}), 2)


def test_admin_approvals_page_over_http(settings):
    lake = Lake(uri=settings.lake_uri)
    lake.append(
        APPROVAL_REQUESTS,
        pl.DataFrame(
            {
                "video_id": [f"v{i}" for i in range(5)],
                "approval_id": [f"ap{i}" for i in range(5)],
                "comparison": [json.dumps({"i": i}) for i in range(5)],
                "requested_at": [T0 + timedelta(minutes=i % 3) for i in range(5)],
            }
        ),
    )
    admin = ADMIN
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, headers=admin) as c:
        ids, cursor = [], None
        while True:
            body = c.get("/v1/admin/approvals", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
            assert len(body["items"]) <= 2
            ids += [a["approval_id"] for a in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert ids == ["ap0", "ap3", "ap1", "ap4", "ap2"]  # oldest first, ties by id
        assert c.get("/v1/admin/approvals", params={"limit": MAX_LIMIT + 1}).status_code == 422
        bad = c.get("/v1/admin/approvals", params={"cursor": "garbage"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"
        assert c.get("/v1/effects", params={"limit": 1}).json() == {"items": [], "next_cursor": None}
