"""The orphan-recovery sensor: the pure decisions (what is stuck, what to do), then the sensor
on real runs — a video whose evaluation never ran is re-queued and goes on; one whose re-queued
run never ran either is failed and refunded exactly once, and a late run cannot charge it —,
remote tasks whose sender died between claiming a slot and recording the provider's answer
(the provider has it: followed again; it has not: failed), and runs whose worker died with its
code server (reported failed, so nothing waits on them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import polars as pl
import pytest

from pipelines.recovery.rules import (
    COLLECT,
    END_EVENTS,
    EVALUATE,
    INTAKE,
    PUBLISH,
    RUN,
    Abandon,
    Policy,
    Requeue,
    RunFacts,
    VideoFacts,
    decide,
    decide_run,
    phase,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _intake_until_m6() -> list[dg.AssetKey]:
    """The intake run's assets up to M6: a run that dies before its evaluation steps."""
    from assets.analysis.asset import content_analysis
    from assets.batch.asset import test_batch
    from assets.execution.asset import provider_outputs
    from assets.ingest.asset import ingested_video
    from assets.prompts.asset import prompt_variants

    return [a.key for a in (ingested_video, content_analysis, prompt_variants, test_batch, provider_outputs)]


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


# --- pure decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "facts, expected",
    [
        ({}, INTAKE),  # uploaded, nothing ran
        ({"events": frozenset({"VideoIngested"})}, INTAKE),
        ({"dispatched": frozenset({"a", "b"}), "finished": frozenset({"a"})}, INTAKE),  # M6 died mid-way
        ({"dispatched": frozenset({"a"}), "remote_states": ("submitted",)}, None),  # the remote sensor's
        ({"dispatched": frozenset({"a"}), "remote_states": ("finished",)}, COLLECT),
        ({"dispatched": frozenset({"a"}), "finished": frozenset({"a"})}, EVALUATE),
        ({"best_outcome": "selected"}, EVALUATE),  # charged, never put before an admin
        ({"best_outcome": "selected", "approval_requested": True}, None),  # the admin's turn
        ({"best_outcome": "selected", "approval_requested": True, "decided": True}, PUBLISH),
        ({"approval_requested": True, "decided": True, "revised": True}, None),
        *(({"events": frozenset({e})}, None) for e in sorted(END_EVENTS)),
    ],
)
def test_the_phase_a_video_waits_on(facts, expected):
    assert phase(VideoFacts("v", since=T0, **facts)) == expected


def test_stuck_means_no_live_run_and_nothing_recorded_past_the_deadline():
    policy = Policy(stuck_after_s=60, requeues=2)
    f = VideoFacts("v", since=at(0), last_activity=at(30))
    assert decide(f, policy, at(89)) is None  # quiet 59 s
    assert decide(VideoFacts("v", since=at(0), live_run=True), policy, at(1000)) is None
    first = decide(f, policy, at(91))
    assert first == Requeue("v", INTAKE, "intake_job", 1, 61.0) and first.run_key == "recover:v:intake:1"
    # The next tick sees its own RecoveryRequeued event: recorded now, so nothing for a deadline…
    after = VideoFacts("v", since=at(0), last_activity=at(91), requeued={INTAKE: 1})
    assert decide(after, policy, at(92)) is None
    # …then the second attempt, then the video is given up with a reason the user can read.
    assert decide(after, policy, at(152)) == Requeue("v", INTAKE, "intake_job", 2, 61.0)
    last = decide(VideoFacts("v", since=at(0), last_activity=at(152), requeued={INTAKE: 2}), policy, at(213))
    assert isinstance(last, Abandon) and last.requeues == 2 and "restarting it did not help" in last.reason
    # Attempts count per phase: a video that moved on to its evaluation starts there afresh.
    moved = VideoFacts("v", since=at(0), dispatched=frozenset({"a"}), finished=frozenset({"a"}), requeued={INTAKE: 2})
    assert decide(moved, policy, at(1000)) == Requeue("v", EVALUATE, "evaluation_job", 1, 1000.0)


def test_an_ended_video_gets_its_final_status():
    from pipelines.recovery.rules import settled_status

    assert settled_status(VideoFacts("v", since=T0, events=frozenset({"VideoIngested"}))) is None
    assert settled_status(VideoFacts("v", since=T0, events=frozenset({"VideoRejected"}))) == "rejected"
    assert settled_status(VideoFacts("v", since=T0, events=frozenset({"NoUsableResult"}))) == "done"


def test_a_stuck_effect_run_is_requeued_while_its_work_can_finish_else_failed():
    policy = Policy(stuck_after_s=60, requeues=1)
    started = RunFacts("run_a", "running", since=at(0), deadline=at(600), last_activity=at(10))
    assert decide_run(started, policy, at(69)) is None  # quiet 59 s
    assert decide_run(replace(started, live_run=True), policy, at(500)) is None
    # Its GPU task is with the provider: the remote task sensor follows it (and stops it at
    # the run's deadline), whatever the time.
    for state in ("waiting", "submitting", "submitted", "cancelling"):
        assert decide_run(replace(started, remote_states=(state,)), policy, at(5000)) is None
    first = decide_run(started, policy, at(71))
    assert first == Requeue("run_a", RUN, "effect_run_job", 1, 61.0) and first.run_key == "recover:run_a:run:1"
    # Its one re-queue used: failed, with the reason its owner reads.
    spent = decide_run(replace(started, requeued=1, last_activity=at(100)), policy, at(200))
    assert isinstance(spent, Abandon) and spent.requeues == 1 and "could not be completed in time" in spent.reason
    # Past its deadline with nothing left to collect: failed at once, no re-queue.
    late = decide_run(started, policy, at(601))
    assert isinstance(late, Abandon) and late.requeues == 0
    # Past its deadline, but a finished GPU result waits: the collect may still deliver it.
    assert decide_run(replace(started, remote_states=("finished",)), policy, at(601)) == Requeue(
        "run_a", RUN, "effect_run_job", 1, 591.0
    )
    # Queued and never started (its Dagster run never came): started, whatever the time.
    assert decide_run(RunFacts("run_q", "queued", since=at(0)), policy, at(61)) == Requeue(
        "run_q", RUN, "effect_run_job", 1, 61.0
    )
    # Settled runs need nothing.
    for final in ("delivered", "refunded", "failed"):
        assert decide_run(replace(started, status=final), policy, at(10_000)) is None


# --- the sensor on real runs ------------------------------------------------------------------


def _tick(driver, sensor: str = "recovery_sensor"):
    return driver.tick(sensor)


@pytest.mark.slow
@pytest.mark.video
def test_stuck_videos_are_requeued_then_failed_and_refunded_exactly_once(settings, instance, warm_bikes, warm_carphone):
    from api.app import create_app
    from economics.ledger import job_id
    from pipelines.definitions import build_definitions
    from resources.lake import Lake
    from resources.schemas import PIPELINE_EVENTS
    from resources.store.client import Store
    from tests.api_users import new_user
    from tests.harness import Driver
    from tests.server import serve

    # The deadline must outlast two sensor ticks in a row (a requeue, then a tick that must see
    # it as recent): 3 s, not 1, so a busy machine's slow tick cannot make it look stuck again.
    stuck_s = 3.0
    settings = settings.model_copy(update={"recovery_stuck_after_s": stuck_s, "recovery_requeues": 1})
    driver = Driver(build_definitions(settings), instance)
    lake, store = Lake(uri=settings.lake_uri), Store(settings.database_url)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        client.headers.update(new_user(client)["headers"])
        ids = []
        for clip in (warm_bikes, warm_carphone):
            r = client.post("/v1/uploads", files={"file": (clip.name, clip.read_bytes(), "video/mp4")})
            ids.append(r.json()["video_id"])
        ok, lost = ids
        # Both videos' tasks are done, but their evaluation never runs (as if the run's worker
        # died between M6 and M7, and the daemon before the completion sensor's tick): both
        # wait on a run nobody will start.
        for request in driver.tick("upload_sensor"):
            until_m6 = dg.RunRequest(
                partition_key=request.partition_key, run_key=request.run_key, asset_selection=_intake_until_m6()
            )
            assert driver.run("upload_sensor", until_m6).success
        assert _tick(driver) == []  # the first tick after an outage: a full deadline of grace
        time.sleep(stuck_s + 0.2)
        requests = _tick(driver)
        assert sorted((r.job_name, r.partition_key, r.run_key) for r in requests) == sorted(
            ("evaluation_job", v, f"recover:{v}:evaluate:1") for v in ids
        )
        assert _tick(driver) == []  # a second tick does nothing: the requeue is recorded
        # The first video's run runs and it goes on to its admin; the second's is lost too.
        assert driver.run("recovery_sensor", next(r for r in requests if r.partition_key == ok)).success
        assert client.get(f"/v1/videos/{ok}").json()["stage"] == "awaiting_approval"
        time.sleep(stuck_s + 0.2)
        assert _tick(driver) == []  # the lost video's second chance is over: failed, not re-queued
        assert _tick(driver) == []
        driver.land()

        status = client.get(f"/v1/videos/{lost}").json()
        assert status["stage"] == "failed"
        [note] = [n for n in status["notifications"] if n["kind"] == "processing_failed"]
        assert "could not be scored" in note["body"] and "tokens were given back" in note["body"]
        assert store.upload(lost)["status"] == "done"
        events = lake.read(PIPELINE_EVENTS, pl.col("stage") == "recovery")
        counts = dict(
            events.group_by("correlation_id", "event_type")
            .len()
            .select(pl.concat_str("correlation_id", "event_type", separator=":"), "len")
            .iter_rows()
        )
        assert counts == {
            f"{ok}:RecoveryRequeued": 1,
            f"{lost}:RecoveryRequeued": 1,
            f"{lost}:VideoAbandoned": 1,
            f"{lost}:UserNotified": 1,
        }
        abandoned = json.loads(events.filter(pl.col("event_type") == "VideoAbandoned")["payload"][0])
        assert abandoned["phase"] == EVALUATE and abandoned["refunded_tokens"] > 0

        # The ledger: the delivered job charged once, the lost one refunded once, nothing else.
        def kinds(v):
            with store.read() as s:
                from resources.store.models import LedgerEntry

                return sorted(e.kind for e in s.query(LedgerEntry).filter(LedgerEntry.task_id == job_id(v)))

        assert kinds(ok) == ["consume", "reserve"] and kinds(lost) == ["refund", "reserve"]
        # A late run of the given-up video (the completion sensor's, after a restart) cannot
        # charge a refunded job: its best-result step fails, the ledger is unchanged.
        late = driver.step("completion_sensor")
        assert [r.success for r in late if r.dagster_run.tags.get("dagster/partition") == lost] in ([], [False])
        assert kinds(lost) == ["refund", "reserve"]
    store.close()


# --- remote tasks whose sender died -----------------------------------------------------------


@pytest.fixture
def comfy_world(tmp_path, short_bikes):
    import shutil

    import yaml

    from resources.media import MediaStore
    from resources.providers.client import ProviderRegistry
    from resources.settings import DATA_DIR
    from resources.store.client import Store
    from tests.fakes.comfyui_server import FakeComfyUI

    with FakeComfyUI(tmp_path / "comfy") as server:
        for name in ("effects.yaml", "rate_card.yaml"):
            shutil.copyfile(DATA_DIR / name, tmp_path / name)
        doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
        doc["providers"] = [p for p in doc["providers"] if p["provider_id"] == "comfyui-gpu"]
        doc["providers"][0].update(mode="active", base_url=server.base_url)
        (tmp_path / "providers.yaml").write_text(yaml.safe_dump(doc))
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        media = MediaStore(uri=str(tmp_path / "media"))
        media.put_file("proxies/v1.mp4", str(short_bikes))
        yield server, store, media, ProviderRegistry(path=str(tmp_path / "providers.yaml"))
        server.wait_idle(60)
        store.close()


def _claim(store, task_id: str) -> dict:
    from resources.store import remote

    spec = json.dumps({"input_key": "proxies/v1.mp4", "params": {"levels": 6}, "prompt": ""})
    now = datetime.now(UTC)
    with store.write() as s:
        remote.enqueue(
            s,
            [
                {
                    "task_id": task_id,
                    "video_id": "v1",
                    "provider_id": "comfyui-gpu",
                    "effect_type": "cartoon",
                    "selection": "ranked",
                    "spec": spec,
                }
            ],
            now,
        )
        [row], _ = remote.claim(s, {"comfyui-gpu": 1}, {}, now)
    return row


@pytest.mark.video
@pytest.mark.slow
def test_an_orphaned_send_is_followed_again_if_the_provider_has_it_else_failed(comfy_world):
    from assets.execution import remote as remote_tasks
    from resources.providers.base import ProviderTask

    server, store, media, providers = comfy_world
    registry = providers.registry()
    # 1. The sender died after the provider accepted the prompt, before recording it.
    row = _claim(store, "sent")
    adapter = providers.adapter("comfyui-gpu")
    with media.local_file("proxies/v1.mp4") as proxy:
        adapter.submit(ProviderTask("sent", "v1", "cartoon", "comfyui-gpu", proxy, "", {"levels": 6}, "", 1))
    assert store.remote_tasks(("submitting",))[0]["task_id"] == "sent"
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert remote_tasks.recover_orphaned_sends(store, registry, providers.adapter, datetime.now(UTC), 300) == []
    [resumed] = remote_tasks.recover_orphaned_sends(store, registry, providers.adapter, later, 300)
    assert resumed["event_type"] == "RemoteTaskRequeued" and resumed["stage"] == "recovery"
    assert remote_tasks.recover_orphaned_sends(store, registry, providers.adapter, later, 300) == []  # once
    deadline = time.monotonic() + 90
    while store.remote_tasks(("finished",)) == [] and time.monotonic() < deadline:
        remote_tasks.advance(store, registry, providers.adapter, media, datetime.now(UTC))
        time.sleep(0.2)
    [done] = store.remote_tasks(("finished",))
    assert json.loads(done["result"])["status"] == "succeeded"
    assert len(server.accepted) == 1  # the one prompt, followed to its end: nothing sent twice
    assert row["task_id"] == "sent"

    # 2. The sender died before the provider got anything: the task fails, once, with why.
    _claim(store, "never")
    later = datetime.now(UTC) + timedelta(seconds=301)
    [orphaned] = remote_tasks.recover_orphaned_sends(store, registry, providers.adapter, later, 300)
    assert orphaned["event_type"] == "RemoteTaskOrphaned"
    assert remote_tasks.recover_orphaned_sends(store, registry, providers.adapter, later, 300) == []
    [failed] = [r for r in store.remote_tasks(("finished",)) if r["task_id"] == "never"]
    result = json.loads(failed["result"])
    assert result["status"] == "failed" and result["error_class"] == "Orphaned"
    assert "never received it" in result["error_message"]
    assert store.breakers()["comfyui-gpu"]["consecutive_failures"] == 0  # not the provider's fault
    # 3. A provider that does not answer: no news, nothing decided.
    _claim(store, "unknown")
    server.stop()
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert remote_tasks.recover_orphaned_sends(store, registry, providers.adapter, later, 300) == []
    assert [r["task_id"] for r in store.remote_tasks(("submitting",))] == ["unknown"]


# --- runs whose worker died with its code server -----------------------------------------------


def _started_in(instance: dg.DagsterInstance, run: dg.DagsterRun, pid: int) -> None:
    """Record ``run`` as started by a worker process ``pid``: the engine event a run worker
    logs with its pid, then RUN_START (the run is STARTED)."""
    from dagster._core.events import EngineEventData

    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level="DEBUG",
            user_message="",
            run_id=run.run_id,
            timestamp=time.time(),
            dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, run.job_name),
        )
    )


def test_a_started_run_whose_worker_is_gone_is_reported_failed(tmp_path):

    from pipelines.recovery.runs import reap_dead_runs, worker_gone

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:

        @dg.op
        def noop():
            return None

        @dg.job
        def job():
            noop()

        runs = {}
        for name, pid in (("dead", dead.pid), ("alive", os.getpid())):
            run = instance.create_run_for_job(job)
            _started_in(instance, run, pid)
            runs[name] = run.run_id
        records = {n: instance.get_run_record_by_id(r) for n, r in runs.items()}
        assert all(r.dagster_run.status == dg.DagsterRunStatus.STARTED for r in records.values())
        assert worker_gone(instance, records["dead"]) and not worker_gone(instance, records["alive"])
        assert reap_dead_runs(instance) == [runs["dead"]]
        assert instance.get_run_by_id(runs["dead"]).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(runs["alive"]).status == dg.DagsterRunStatus.STARTED
        assert reap_dead_runs(instance) == []


# --- effect runs whose run died ---------------------------------------------------------------


def _dead_run_of_partition(instance: dg.DagsterInstance, partition: str) -> str:
    """A Dagster run of ``partition``, STARTED, whose worker process is gone (it logged the
    pid of a process that has exited: a kill -9 of the worker with its code server)."""

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()

    @dg.op
    def noop():
        return None

    @dg.job
    def effect_run_job():
        noop()

    run = instance.create_run_for_job(effect_run_job, tags={"dagster/partition": partition})
    _started_in(instance, run, dead.pid)
    return run.run_id


@pytest.mark.slow
@pytest.mark.video
def test_an_effect_run_whose_worker_died_past_its_deadline_is_failed_and_refunded_exactly_once(
    settings, instance, short_carphone
):
    from api.app import create_app
    from economics.ledger import job_id
    from pipelines.definitions import build_definitions
    from pipelines.recovery.sensor import abandon_run
    from resources.lake import Lake
    from resources.schemas import NOTIFICATIONS, PIPELINE_EVENTS
    from resources.store.client import Store
    from resources.store.models import LedgerEntry
    from tests.api_users import new_user
    from tests.harness import Driver
    from tests.published import PRICES, SLUG, publish
    from tests.server import serve

    settings = settings.model_copy(
        update={"recovery_stuck_after_s": 1.0, "recovery_requeues": 1, "run_deadline_s": 1.0}
    )
    store, lake = Store(settings.database_url), Lake(uri=settings.lake_uri)
    publish(store)
    driver = Driver(build_definitions(settings), instance)

    def kinds(run_id):
        with store.read() as s:
            return sorted(e.kind for e in s.query(LedgerEntry).filter(LedgerEntry.task_id == job_id(run_id)))

    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        r = client.post(
            f"/v1/effects/{SLUG}/runs", headers=user["headers"], files={"file": ("c.mp4", short_carphone.read_bytes())}
        )
        run_id = r.json()["run_id"]
        # The run sensor starts the run; its worker marks it running and is killed (with its
        # code server) before anything else: the run holds its reservation, its Dagster run
        # stays STARTED with no worker, and the sensor's run key is spent.
        [request] = driver.tick("run_sensor")
        assert request.partition_key == run_id
        store.start_run(run_id)
        dead = _dead_run_of_partition(instance, run_id)
        assert driver.tick("recovery_sensor") == []  # the first tick after an outage: a deadline of grace
        assert store.effect_run(run_id)["status"] == "running"
        time.sleep(1.2)
        # The dead run is reported failed; the run is past its deadline with nothing to
        # collect: failed and refunded, not re-queued. (Its input, an upload that no creation
        # job runs on, is not taken for a stuck video either.)
        assert driver.tick("recovery_sensor") == []
        assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
        status = client.get(f"/v1/runs/{run_id}", headers=user["headers"]).json()
        assert (status["status"], status["tokens_charged"]) == ("failed", 0)
        assert (
            status["error"] == "making your video stopped before it was finished, and it could not be completed in time"
        )
        balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
        assert (balance["spent"], balance["reserved_outstanding"], balance["refunded"]) == (0, 0, PRICES["warm_grade"])
        # Exactly once: another tick, a second abandon racing it, a late run of the partition
        # and a late delivery all change nothing.
        assert driver.tick("recovery_sensor") == []
        assert abandon_run(store, lake, Abandon(run_id, RUN, 0, 2.0), store.effect_run(run_id)) is None
        assert driver.run("run_sensor", request).success
        assert store.settle_run(run_id, "delivered", "late delivery") is None
        assert kinds(run_id) == ["refund", "reserve"]
    events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == run_id)
    recovery = events.filter(pl.col("stage") == "recovery")["event_type"].to_list()
    assert sorted(recovery) == ["RunAbandoned", "UserNotified"]
    [abandoned] = events.filter(pl.col("event_type") == "RunAbandoned")["payload"].to_list()
    assert json.loads(abandoned)["refunded_tokens"] == PRICES["warm_grade"]
    assert "RunDelivered" not in events["event_type"].to_list()
    driver.land()
    assert lake.read(NOTIFICATIONS, pl.col("correlation_id") == run_id)["kind"].to_list() == ["run_failed"]
    store.close()
