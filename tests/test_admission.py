"""GPU admission per workspace: the pure decision, the store's count of unfinished jobs (on
SQLite and PostgreSQL, with the statuses of migration 0003), and the 429 at the door."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from api.admission import AdmissionDep
from api.app import create_app
from resources.services.admission import ADMIT, QUEUE, REFUSE, decide
from resources.store.errors import InvalidInput
from resources.store.models import UPLOAD_STATUSES
from tests.api_users import new_user, new_workspace
from tests.load import burst, distinct_clips
from tests.server import serve

pytest_plugins = ["tests.store_fixtures"]


@pytest.mark.parametrize(
    "active, slots, per_slot, expected, retry",
    [
        (0, 2, 2, ADMIT, None),
        (1, 2, 2, ADMIT, None),
        (2, 2, 2, QUEUE, None),  # both slots busy: waits
        (5, 2, 2, QUEUE, None),  # the last of 2 + 2x2 places
        (6, 2, 2, REFUSE, 60),  # full: one job's time until a place frees
        (9, 2, 2, REFUSE, 120),  # 4 beyond capacity, 2 slots: two rounds
        (2, 2, 0, REFUSE, 60),  # no queue at all
        (0, 0, 2, REFUSE, None),  # no GPU quota: retrying cannot help
    ],
)
def test_decide(active, slots, per_slot, expected, retry):
    admission = decide(active, slots, per_slot, job_seconds=60)
    assert (admission.decision, admission.retry_after_s) == (expected, retry)
    assert admission.capacity == slots * (1 + per_slot)


def test_decide_refuses_nonsense():
    with pytest.raises(ValueError, match="≥"):
        decide(-1, 2, 2, 60)
    with pytest.raises(ValueError, match="≥"):
        decide(0, 2, 2, 0)


def _upload(store, user_id: str, n: int, status: str) -> str:
    result = store.create_upload(
        user_id,
        filename=f"{n}.mp4",
        content_type="video/mp4",
        sha256=f"{n:064x}",
        bytes_=100,
        media_key=f"raw/{n}.mp4",
    )
    store.set_upload_status(result.upload["video_id"], status)
    return result.upload["video_id"]


def test_gpu_load_counts_unfinished_uploads_of_the_workspace_only(store, new_user):
    assert {"processing", "done"} <= set(UPLOAD_STATUSES)
    me, colleague = new_user(), new_user()
    elsewhere = new_user(workspace_id=store.create_workspace("other")["workspace_id"])
    for n, status in enumerate(["uploaded", "accepted", "processing", "done", "rejected", "pending"]):
        _upload(store, me["user_id"], n, status)
    _upload(store, colleague["user_id"], 10, "processing")
    _upload(store, elsewhere["user_id"], 11, "processing")
    load = store.gpu_load(me["workspace_id"])
    assert load == {"workspace_id": me["workspace_id"], "max_concurrent_gpu_jobs": 2, "active": 4}
    with pytest.raises(InvalidInput):
        store.set_upload_status(_upload(store, me["user_id"], 12, "done"), "bogus")


def _admission_probe() -> APIRouter:
    # The upload routes declare AdmissionDep; this route stands for them.
    router = APIRouter()

    @router.post("/probe/admission", tags=["uploads"])
    def probe(admission: AdmissionDep) -> dict:
        return {"decision": admission.decision}

    return router


def test_the_door_admits_queues_then_refuses_with_retry_after(settings):
    settings = settings.model_copy(update={"gpu_queue_per_slot": 1, "gpu_job_seconds": 45})
    app = create_app(settings)
    app.include_router(_admission_probe())
    store = app.state.clients.store
    store.upgrade()
    workspace = store.create_workspace("small", max_concurrent_gpu_jobs=1)
    user, key = store.create_user(workspace["workspace_id"])
    _, zero_key = store.create_user(store.create_workspace("none", max_concurrent_gpu_jobs=0)["workspace_id"])
    auth = {"Authorization": f"Bearer {key}"}
    with serve(app) as base, httpx.Client(base_url=base) as c:
        decisions = []
        for n in range(2):
            decisions.append(c.post("/probe/admission", headers=auth).json()["decision"])
            _upload(store, user["user_id"], n, "accepted")
        assert decisions == [ADMIT, QUEUE]
        refused = c.post("/probe/admission", headers=auth)
        assert refused.status_code == 429 and refused.json()["code"] == "gpu_queue_full"
        assert refused.headers["retry-after"] == "45"
        store.set_upload_status(store.uploads(user["user_id"])[0]["video_id"], "done")
        assert c.post("/probe/admission", headers=auth).json()["decision"] == QUEUE
        none = c.post("/probe/admission", headers={"Authorization": f"Bearer {zero_key}"})
        assert none.status_code == 403 and none.json()["code"] == "gpu_quota_zero"
        assert c.post("/probe/admission").status_code == 401
        text = c.get("/metrics").text
    for decision, count in ((ADMIT, 1), (QUEUE, 2), (REFUSE, 2)):
        assert f'effectlake_admission_decisions_total{{decision="{decision}"}} {count}.0' in text


@pytest.mark.slow
@pytest.mark.video
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_uploads_never_take_more_places_than_the_workspace_has(
    settings, short_bikes, tmp_path, empty_database, backend
):
    # One slot and one queue place: of 12 distinct uploads sent at once, exactly 2 become
    # jobs and the rest are refused with Retry-After — the count is taken at the insert, with
    # the workspace row locked, not only at the door.
    settings = settings.model_copy(update={"database_url": empty_database(backend), "gpu_queue_per_slot": 1})
    clips = distinct_clips(short_bikes, tmp_path, 12)
    app = create_app(settings)
    with serve(app) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            user = new_user(c, new_workspace(c, "tight", max_concurrent_gpu_jobs=1))
        answers, _ = burst(base, [(user["headers"], f"c{i}.mp4", clip) for i, clip in enumerate(clips)])
    statuses = sorted(a.status for a in answers)
    assert statuses == [202, 202] + [429] * 10, statuses
    assert len(app.state.clients.store.uploads(user["user_id"])) == 2
