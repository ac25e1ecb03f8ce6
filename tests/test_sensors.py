"""Sensors carry on past rows that outlived their Dagster instance: a decision or a finished
task for a video this instance never partitioned is skipped (and logged), the others still
get their runs. Uploads and effect runs start from the transactional store, with no landing
run before them; a presigned upload starts once, when its bytes arrive."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.partitions import effect_runs, videos
from pipelines.definitions import build_definitions
from pipelines.sensors import for_known_videos
from resources.lake import Lake
from resources.media import MediaStore
from resources.schemas import EFFECT_RUNS, INGESTED_VIDEO, UPLOADS
from resources.store.changes import settled_through
from resources.store.client import Store
from resources.store.feed import UploadCursor
from tests.harness import Driver
from tests.store_rows import pending_upload


def test_requests_for_unknown_videos_are_skipped_and_the_rest_kept(instance):
    instance.add_dynamic_partitions(videos.name, ["v_known"])
    context = dg.build_sensor_context(instance=instance)
    requests = [
        dg.RunRequest(partition_key="v_known", run_key="publish:a1"),
        dg.RunRequest(partition_key="v_from_an_older_instance", run_key="publish:a2"),
    ]
    assert [r.run_key for r in for_known_videos(context, requests)] == ["publish:a1"]


# --- uploads and effect runs start from the store, not from their landed rows -------------


@pytest.fixture
def store(settings):
    s = Store(settings.database_url)
    yield s
    s.close()


def _user(store: Store) -> dict:
    user, _ = store.create_user(store.create_workspace("w")["workspace_id"], welcome_tokens=10)
    return user


def _stored_upload(store: Store, media: MediaStore, user_id: str, clip: Path) -> dict:
    """The clip stored as the API stores an upload: its bytes under ``raw/<sha>``, its row."""
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    key = f"raw/{sha}.mp4"
    media.put_file(key, str(clip))
    values = {"filename": clip.name, "content_type": "video/mp4", "sha256": sha, "bytes_": clip.stat().st_size}
    return store.create_upload(user_id, **values, media_key=key).upload


def _landing_runs(instance: dg.DagsterInstance) -> int:
    return len(instance.get_run_records(dg.RunsFilter(job_name="landing_job")))


@pytest.mark.video
def test_an_upload_starts_its_intake_run_before_any_landing(settings, instance, store, short_bikes):
    driver = Driver(build_definitions(settings), instance)
    lake, media = Lake(uri=settings.lake_uri), MediaStore(uri=settings.media_uri)
    user = _user(store)
    upload = _stored_upload(store, media, user["user_id"], short_bikes)
    # An effect run's input is that run's to process, not an example to build from.
    store.create_upload(
        user["user_id"],
        filename="input.mp4",
        content_type="video/mp4",
        sha256="0" * 64,
        bytes_=10,
        media_key="raw/input.mp4",
        source="run",
    )

    [request] = driver.tick("upload_sensor")
    assert (request.partition_key, request.run_key) == (upload["video_id"], upload["video_id"])
    assert driver.partitions() == [upload["video_id"]]
    # Nothing was landed: the request came from the store row alone.
    assert _landing_runs(instance) == 0 and lake.read(UPLOADS).is_empty()

    # M1 reads the upload row from the store too: the video is ingested with no bronze row.
    ingest = driver.defs.resolve_job_def("intake_job").execute_in_process(
        partition_key=upload["video_id"], instance=instance, asset_selection=[dg.AssetKey(["silver", "ingested_video"])]
    )
    assert ingest.success
    [row] = lake.read(INGESTED_VIDEO, pl.col("video_id") == upload["video_id"]).to_dicts()
    assert (row["status"], row["user_id"]) == ("accepted", user["user_id"])
    assert lake.read(UPLOADS).is_empty()

    # Landing then happens on its own, and the upload sensor does not start the video again.
    assert driver.land() == 1
    assert set(lake.read(UPLOADS)["video_id"]) >= {upload["video_id"]}
    assert driver.tick("upload_sensor") == []


def test_a_presigned_upload_starts_once_when_its_bytes_arrive(settings, instance, store):
    sensor = build_definitions(settings).resolve_sensor_def("upload_sensor")
    resources = build_definitions(settings).resources
    user = _user(store)
    presigned = pending_upload(store, user["user_id"], "later.mp4")
    cursors: list[str | None] = [None]

    def tick() -> list[str]:
        result = sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=cursors[-1]))
        if isinstance(result, dg.SkipReason):
            return []
        for req in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        cursors.append(result.cursor)
        return [r.run_key for r in result.run_requests]

    assert tick() == []  # pending: no bytes yet, nothing to ingest
    assert UploadCursor.decode(cursors[-1]) == UploadCursor(presigned["seq"], (presigned["video_id"],))
    assert tick() == []  # still pending: watched, not started
    sha = hashlib.sha256(b"later").hexdigest()
    store.complete_upload(presigned["video_id"], user["user_id"], sha256=sha, bytes_=5, media_key=f"raw/{sha}.mp4")
    # Completed in place (same seq, below the cursor): the watch sees it, and starts it once.
    assert tick() == [presigned["video_id"]]
    assert UploadCursor.decode(cursors[-1]).pending == ()
    assert tick() == []
    assert _landing_runs(instance) == 0


def test_a_presigned_upload_folded_into_an_earlier_one_starts_nothing(settings, instance, store):
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("upload_sensor")
    user = _user(store)
    sha = hashlib.sha256(b"same bytes").hexdigest()
    first = store.create_upload(
        user["user_id"], filename="a.mp4", content_type="video/mp4", sha256=sha, bytes_=10, media_key=f"raw/{sha}.mp4"
    ).upload
    presigned = pending_upload(store, user["user_id"], "again.mp4")
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    assert [r.run_key for r in result.run_requests] == [first["video_id"]]
    instance.add_dynamic_partitions(videos.name, [first["video_id"]])
    # The same bytes again: the pending row is deleted, the user's first upload returned.
    folded = store.complete_upload(
        presigned["video_id"], user["user_id"], sha256=sha, bytes_=10, media_key=f"raw/{sha}.mp4"
    )
    assert not folded.created
    again = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor))
    assert again.run_requests == [] and UploadCursor.decode(again.cursor).pending == ()


def test_the_feed_cursor_stays_before_rows_that_may_not_have_committed():
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    rows = [{"seq": 3, "recorded_at": now - timedelta(seconds=30)}, {"seq": 5, "recorded_at": now}]
    # On PostgreSQL a seq-4 transaction may still commit: the cursor stays at 3, so the next
    # read brings back 5 (skipped by its partition) and 4.
    assert settled_through(rows, 2, now - timedelta(seconds=10)) == 3
    assert settled_through(rows, 2, now) == 5
    assert settled_through(rows[1:], 3, now - timedelta(seconds=10)) == 3
    # A cursor written by the bronze-era sensor (a Delta version) starts over, safely.
    assert UploadCursor.decode("12") == UploadCursor()
    assert UploadCursor.decode(UploadCursor(7, ("v_a",)).encode()) == UploadCursor(7, ("v_a",))


def test_an_effect_run_starts_from_the_store_row_before_any_landing(settings, instance, store):
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("run_sensor")
    user = _user(store)
    run = store.create_run(
        user["user_id"],
        slug="warm-grade",
        revision_id="rev_1",
        content_hash="c" * 64,
        effect_type="color_grade",
        params={},
        video_id="v_input",
        input_sha256="0" * 64,
        input_key="raw/input.mp4",
        revision_price_tokens=0,
    )
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [(run["run_id"], run["run_id"])]
    assert instance.get_dynamic_partitions(effect_runs.name) == [] and result.dynamic_partitions_requests
    assert _landing_runs(instance) == 0 and Lake(uri=settings.lake_uri).read(EFFECT_RUNS).is_empty()
    instance.add_dynamic_partitions(effect_runs.name, [run["run_id"]])
    again = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)  # past the cursor: nothing new
