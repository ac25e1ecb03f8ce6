"""The main job end to end: real HTTP uploads → real sensors → Dagster runs on real video →
admin approval over HTTP → EffectPublished, with every event in order under one
correlation id; a corrupt upload in the same batch is rejected without hurting the rest.

The example is a real clip with a warm grade applied (ffmpeg ``colortemperature``): the job
builds that warm grade on the neutral reference clip, and its best result is a warm grade."""

from __future__ import annotations

import httpx
import polars as pl
import pytest

from api.app import create_app
from economics.ledger import job_id
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import LEDGER_ENTRIES, NOTIFICATIONS, PIPELINE_EVENTS, PROVIDER_OUTPUTS, TEST_BATCH
from tests.api_users import ADMIN, new_user
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]


def _upload(client: httpx.Client, path, name: str | None = None) -> httpx.Response:
    with open(path, "rb") as fh:
        return client.post("/v1/uploads", files={"file": (name or path.name, fh, "video/mp4")})


def _event_types(lake: Lake, video_id: str) -> list[str]:
    ev = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == video_id).sort("occurred_at")
    return ev["event_type"].to_list()


@pytest.fixture
def world(settings, instance):
    defs = build_definitions(settings)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        client.headers.update(new_user(client)["headers"])  # the client calls as one user
        yield Driver(defs, instance), client, Lake(uri=settings.lake_uri)


def test_upload_to_published_through_sensors(world, warm_bikes, tmp_path):
    driver, client, lake = world
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(warm_bikes.read_bytes()[: warm_bikes.stat().st_size // 3])

    good = _upload(client, warm_bikes)
    bad = _upload(client, truncated)
    assert good.status_code == 202 and bad.status_code == 202
    vid, bad_vid = good.json()["video_id"], bad.json()["video_id"]
    assert client.get(f"/v1/videos/{vid}").json()["stage"] == "uploaded"

    # The upload sensor adds both partitions and requests one intake run each.
    intake = driver.step("upload_sensor")
    assert sorted(driver.partitions()) == sorted([vid, bad_vid])
    assert len(intake) == 2 and all(r.success for r in intake)
    assert driver.step("upload_sensor") == []  # nothing new: no run twice

    bad_status = client.get(f"/v1/videos/{bad_vid}").json()
    assert bad_status["stage"] == "rejected"
    assert bad_status["video"]["reject_reason"]
    assert [n["kind"] for n in bad_status["notifications"]] == ["video_rejected"]

    # Every task ran inline: the intake run evaluated the video itself (M7, M5, M9), so the
    # completion sensor has nothing to start.
    assert driver.step("completion_sensor") == []
    assert {
        ev.asset_key.path[-1] for run in intake for ev in run.get_asset_materialization_events() if ev.asset_key
    } >= {
        "quality_scores",
        "best_result",
        "approval_requests",
    }

    status = client.get(f"/v1/videos/{vid}").json()
    assert status["stage"] == "awaiting_approval"
    assert status["result"]["outcome"] == "selected"
    # The example shows a warm grade: the job builds it (on the reference clip, not on the
    # example) and the best result is a warm grade that looks like the example.
    assert status["analysis"]["target_effect_types"] == ["warm_grade"]
    assert {o["effect_type"] for o in status["outputs"]} == {"warm_grade"}
    assert status["result"]["effect_type"] == "warm_grade"
    [input_key] = lake.read(TEST_BATCH, pl.col("video_id") == vid)["input_key"].unique().to_list()
    assert input_key.startswith("reference/") and input_key != status["video"]["proxy_key"]
    best = next(o for o in status["outputs"] if o["task_id"] == status["result"]["task_id"])
    # A warm look, nearer the example's temperature than the ungraded reference (~130 mired away).
    assert best["measurements"]["look_color_temperature_out"] < 4500
    assert best["style_adherence"] > 0 and best["measurements"]["look_mired_distance"] < 100
    assert {o["status"] for o in status["outputs"]} <= {"scored", "unknown"}
    approval_id = status["approval"]["approval_id"]
    pending = client.get("/v1/admin/approvals", headers=ADMIN).json()["items"]
    assert [p["approval_id"] for p in pending] == [approval_id]
    assert len(pending[0]["comparison"]["outputs"]) == len(status["outputs"])

    assert client.post(f"/v1/admin/approvals/{approval_id}", json={"decision": "approve"}).status_code == 403
    decided = client.post(
        f"/v1/admin/approvals/{approval_id}", headers=ADMIN, json={"decision": "approve", "admin": "alice"}
    )
    assert decided.status_code == 202
    published = driver.step("approval_sensor")
    assert [r.success for r in published] == [True]

    final = client.get(f"/v1/videos/{vid}").json()
    assert final["stage"] == "published"
    slug = final["gallery"]["slug"]
    effect = client.get(f"/v1/effects/{slug}").json()
    assert effect["snapshot"]["source_video_id"] == vid
    # Side by side: the example, the reference clip and the effect applied to it.
    assert effect["snapshot"]["example_key"] == status["video"]["proxy_key"]
    assert effect["snapshot"]["reference_key"] == input_key
    assert effect["example_url"] and effect["reference_url"] and effect["preview_url"]
    assert client.get(effect["preview_url"].replace("http://testserver", "")).content[4:8] == b"ftyp"
    assert [e["slug"] for e in client.get("/v1/effects").json()["items"]] == [slug]

    # The whole trace, in order, under one correlation id.
    tasks = lake.read(TEST_BATCH, pl.col("video_id") == vid).height
    types = _event_types(lake, vid)
    task_events = [t for t in types if t in ("TaskSucceeded", "TaskFailed")]
    assert len(task_events) == tasks
    assert [t for t in types if t not in ("TaskSucceeded", "TaskFailed")] == [
        "VideoIngested",
        "ContentAnalyzed",
        "PromptsGenerated",
        "TestBatchDispatched",
        "QualityEvaluated",
        "BestResultSelected",
        "ApprovalRequested",
        "UserNotified",
        "EffectPublished",
        "UserNotified",
    ]
    first_task = types.index(task_events[0])
    assert types[first_task - 1] == "TestBatchDispatched"
    assert types[first_task + tasks] == "QualityEvaluated"

    # Tokens: the job reserved once and was charged once on delivery, however many tasks ran;
    # the store's ledger is landed into the lake as it is.
    driver.land()
    ledger = lake.read(LEDGER_ENTRIES, pl.col("correlation_id") == vid).sort("seq")
    assert lake.read(TEST_BATCH, pl.col("video_id") == vid).filter(pl.col("selection") != "shadow").height > 1
    assert ledger["kind"].to_list() == ["reserve", "consume"]
    assert set(ledger["task_id"]) == {job_id(vid)} and ledger["tokens"].n_unique() == 1
    user_id = final["upload"]["user_id"]
    assert client.get(f"/v1/users/{user_id}/balance").json()["spent"] == ledger["tokens"][0]
    notes = lake.read(NOTIFICATIONS, pl.col("correlation_id") == vid)
    assert sorted(notes["kind"]) == ["effect_published", "preview_ready"]


def test_same_bytes_twice_is_one_video_and_one_run(world, warm_bikes):
    driver, client, _lake = world
    first, second = _upload(client, warm_bikes).json(), _upload(client, warm_bikes, "again.mp4").json()
    assert first["video_id"] == second["video_id"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    requests = driver.tick("upload_sensor")
    assert [r.partition_key for r in requests] == [first["video_id"]]
    assert driver.tick("upload_sensor") == []


def test_rerunning_a_stage_never_duplicates_events_or_ledger_entries(world, warm_bikes):
    driver, client, lake = world
    vid = _upload(client, warm_bikes).json()["video_id"]
    [request] = driver.tick("upload_sensor")
    assert driver.run("upload_sensor", request).success
    before = (lake.read(PIPELINE_EVENTS).height, lake.read(LEDGER_ENTRIES).height)
    assert driver.run("upload_sensor", request).success  # re-execution of the same partition
    assert (lake.read(PIPELINE_EVENTS).height, lake.read(LEDGER_ENTRIES).height) == before
    assert (
        lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == vid).height
        == lake.read(TEST_BATCH, pl.col("video_id") == vid).height
    )


def test_a_stage_is_reported_only_once_its_output_is_readable(settings):
    """ApprovalRequested is recorded before the approval row is written: until the row
    exists, the API must not announce a request nobody can approve."""
    from api.status import video_status
    from resources.events import event, record_pipeline_events

    lake = Lake(uri=settings.lake_uri)
    record_pipeline_events(
        lake, [event("BestResultSelected", "v1", "M5", {}), event("ApprovalRequested", "v1", "M9", {})]
    )
    upload = {"video_id": "v1", "user_id": "u", "filename": "f.mp4", "media_key": "raw/x.mp4", "bytes": 1}
    status = video_status(lake, upload, lambda approval_id: None, [], lambda key: key)
    assert (status["stage"], status["approval"]) == ("selected", None)
