"""Landing the store's rows into the lake (assets/landing, landing_sensor): one run for the
tables with new rows, nothing started when there are none, and exactly once — a crash
between the Delta commit and the cursor update lands nothing twice and skips nothing."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import dagster as dg
import polars as pl
import pytest

from assets.landing.asset import landing_cursor, stored_cursor
from assets.landing.rows import BY_TARGET, LANDINGS, to_bronze
from assets.lineage import table_key
from pipelines import definitions
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import (
    APPROVAL_DECISIONS,
    LEDGER_ENTRIES,
    NOTIFICATIONS,
    RECOMMENDATION_DECISIONS,
    UPLOAD_REJECTIONS,
    UPLOADS,
)
from resources.store.client import Store
from tests.harness import Driver
from tests.store_rows import pending_upload


@pytest.fixture
def store(settings):
    s = Store(settings.database_url)
    yield s
    s.close()


@pytest.fixture
def driver(settings, instance):
    return Driver(build_definitions(settings), instance)


def _user(store: Store, tokens: int = 10) -> dict:
    ws = store.create_workspace("w")
    user, _ = store.create_user(ws["workspace_id"], welcome_tokens=tokens)
    return user


def _upload(store: Store, user_id: str, content: bytes = b"video") -> dict:
    sha = hashlib.sha256(content).hexdigest()
    return store.create_upload(
        user_id,
        filename="clip.mp4",
        content_type="video/mp4",
        sha256=sha,
        bytes_=len(content),
        media_key=f"raw/{sha}.mp4",
        priorities='{"quality": 0.7, "cost": 0.15, "speed": 0.15}',
    ).upload


def _landed(driver: Driver) -> list[dg.AssetKey]:
    """Tick the landing sensor and run what it requests; the assets it selected."""
    [request] = driver.tick("landing_sensor")
    assert driver.run("landing_sensor", request).success
    return sorted(request.asset_selection, key=lambda k: k.to_user_string())


def test_store_rows_become_bronze_rows():
    rows = [
        {"seq": 3, "subject_kind": "approval", "subject_id": "a1", "correlation_id": "v1", "decision": "approve"},
        {"seq": 4, "subject_kind": "recommendation", "subject_id": "r1", "correlation_id": None, "decision": "reject"},
    ]
    approvals = to_bronze(BY_TARGET["approval_decisions"], rows)
    assert approvals.select("approval_id", "video_id", "seq").rows() == [("a1", "v1", 3)]
    recs = to_bronze(BY_TARGET["recommendation_decisions"], rows)
    assert recs.select("recommendation_id", "decision", "seq").rows() == [("r1", "reject", 4)]
    assert to_bronze(BY_TARGET["uploads"], []).schema == UPLOADS.schema
    with pytest.raises(ValueError, match="approval_id"):
        to_bronze(BY_TARGET["approval_decisions"], [{"subject_kind": "approval", "seq": 5}])
    assert {x.source for x in LANDINGS} == {
        "uploads",
        "upload_rejections",
        "ledger_entries",
        "notifications",
        "decisions",
        "effect_revisions",
        "effect_pin_events",
        "effect_runs",
    }


def test_idle_ticks_start_nothing_and_new_rows_start_one_run(settings, store, driver):
    assert driver.tick("landing_sensor") == []
    user = _user(store)
    upload = _upload(store, user["user_id"])
    # Only the tables with new rows: the upload and the welcome credit.
    assert _landed(driver) == [table_key(LEDGER_ENTRIES), table_key(UPLOADS)]
    assert driver.tick("landing_sensor") == []

    lake = Lake(uri=settings.lake_uri)
    [row] = lake.read(UPLOADS).to_dicts()
    assert row["video_id"] == upload["video_id"] and row["workspace_id"] == user["workspace_id"]
    assert row["priorities"] == upload["priorities"] and row["status"] == "uploaded" and row["seq"] == upload["seq"]
    [credit] = lake.read(LEDGER_ENTRIES).to_dicts()
    assert (credit["kind"], credit["tokens"], credit["user_id"]) == ("credit", 10, user["user_id"])

    # The next rows: a rejection, a notification, decisions of both kinds.
    store.record_rejection(
        rejection_id="rej-1",
        user_id=user["user_id"],
        workspace_id=user["workspace_id"],
        filename="x.exe",
        content_type="application/x",
        bytes_=3,
        http_status=415,
        code="unsupported_media_type",
        reason="not a video",
    )
    store.notify(user["user_id"], "hello", "Hi", correlation_id=upload["video_id"], notification_id="n-1")
    store.record_decision("approval", "ap-1", "approve", "alice", correlation_id=upload["video_id"])
    store.record_decision("recommendation", "rec-1", "reject", "bob", reason="not now")
    assert _landed(driver) == [
        table_key(APPROVAL_DECISIONS),
        table_key(NOTIFICATIONS),
        table_key(RECOMMENDATION_DECISIONS),
        table_key(UPLOAD_REJECTIONS),
    ]
    assert driver.tick("landing_sensor") == []
    assert lake.read(UPLOAD_REJECTIONS)["code"].to_list() == ["unsupported_media_type"]
    assert lake.read(NOTIFICATIONS)["notification_id"].to_list() == ["n-1"]
    assert lake.read(APPROVAL_DECISIONS).select("approval_id", "video_id").rows() == [("ap-1", upload["video_id"])]
    assert lake.read(RECOMMENDATION_DECISIONS).select("recommendation_id", "reason").rows() == [("rec-1", "not now")]


def test_a_presigned_upload_is_landed_pending_then_completed_in_place(settings, store, driver):
    user = _user(store)
    # A presigned upload whose bytes have not arrived lands too (pending).
    presigned = pending_upload(store, user["user_id"], "later.mp4")
    assert table_key(UPLOADS) in _landed(driver)  # with the user's welcome credit
    lake = Lake(uri=settings.lake_uri)
    assert lake.read(UPLOADS)["status"].to_list() == ["pending"]
    assert driver.tick("landing_sensor") == []

    # Its bytes arrive: the row changes in place (same seq), and the landing still sees it.
    sha = hashlib.sha256(b"later").hexdigest()
    store.complete_upload(presigned["video_id"], user["user_id"], sha256=sha, bytes_=5, media_key=f"raw/{sha}.mp4")
    assert _landed(driver) == [table_key(UPLOADS)]
    [row] = lake.read(UPLOADS, pl.col("video_id") == presigned["video_id"]).to_dicts()
    assert (row["status"], row["media_key"], row["seq"]) == ("uploaded", f"raw/{sha}.mp4", presigned["seq"])
    assert driver.tick("landing_sensor") == []


class CrashAfterCommit(Lake):
    """A lake whose next append commits and then fails, as a process killed between the
    Delta commit and the end of the step would."""

    crashes: ClassVar[int] = 0

    @staticmethod
    def _maybe_crash() -> None:
        if CrashAfterCommit.crashes > 0:
            CrashAfterCommit.crashes -= 1
            raise RuntimeError("killed after the commit")

    def append(self, spec, df):
        inserted = super().append(spec, df)
        self._maybe_crash()
        return inserted

    def upsert(self, spec, df, recent=None):
        metrics = super().upsert(spec, df, recent)
        self._maybe_crash()
        return metrics


def test_a_crash_between_commit_and_cursor_lands_nothing_twice(settings, instance, store, monkeypatch):
    build = definitions.build_resources
    monkeypatch.setattr(
        definitions, "build_resources", lambda s: {**build(s), "lake": CrashAfterCommit(uri=s.lake_uri)}
    )
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    user = _user(store)
    for i in range(3):
        _upload(store, user["user_id"], f"video {i}".encode())

    CrashAfterCommit.crashes = 1
    [request] = driver.tick("landing_sensor")
    [uploads] = [k for k in request.asset_selection if k == table_key(UPLOADS)]
    assert not driver.run("landing_sensor", dg.RunRequest(asset_selection=[uploads])).success
    # The batch is in the lake, but no materialization recorded its cursor.
    assert lake.read(UPLOADS).height == 3
    landing = BY_TARGET["uploads"]
    assert stored_cursor(instance, landing) == 0
    # The lake's own record is a safe cursor: every row up to its largest seq is landed.
    assert landing_cursor(instance, lake, landing) == lake.read(UPLOADS)["seq"].max()

    # The next tick retries (no run key forbids it); the retry inserts nothing twice.
    fourth = _upload(store, user["user_id"], b"video 3")
    [retry] = driver.tick("landing_sensor")
    assert table_key(UPLOADS) in retry.asset_selection
    assert driver.run("landing_sensor", retry).success
    landed = lake.read(UPLOADS)
    assert landed.height == 4 and landed["video_id"].n_unique() == 4
    assert stored_cursor(instance, landing) == fourth["seq"]
    assert driver.tick("landing_sensor") == []


def test_no_landing_run_is_requested_while_one_is_in_flight(store, driver, instance):
    _upload(store, _user(store)["user_id"])
    job = driver.defs.resolve_job_def("landing_job")
    run = instance.create_run_for_job(job, run_config={})  # NOT_STARTED, as a queued run is
    assert driver.tick("landing_sensor") == []
    instance.report_run_canceled(run)
    assert len(driver.tick("landing_sensor")) == 1


def test_a_table_whose_kind_is_rare_still_advances_past_the_other_kind(settings, store, driver, instance):
    from assets.landing import asset as landing_asset

    user = _user(store)
    video = _upload(store, user["user_id"])["video_id"]
    store.record_decision("approval", "ap-1", "approve", "alice", correlation_id=video)
    for i in range(4):
        store.record_decision("recommendation", f"rec-{i}", "approve", "bob")
    # Batches of two rows: the approval table's cursor follows what it examined, not only
    # the approvals it landed, so it is not stuck behind the recommendations.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(landing_asset, "BATCH", 2)
        for _ in range(3):
            _landed(driver)
    lake = Lake(uri=settings.lake_uri)
    assert lake.read(RECOMMENDATION_DECISIONS).height == 4
    last = store.changes_since("decisions", 0, 100)[1]
    assert stored_cursor(instance, BY_TARGET["approval_decisions"]) == last
    assert driver.tick("landing_sensor") == []
    assert lake.read(APPROVAL_DECISIONS).height == 1
