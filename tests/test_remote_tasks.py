"""Remote (GPU) provider tasks that never block a run: the pure decisions (breaker, retry
classes and Retry-After, admission, deadlines, accounting), then the ComfyUI provider through
the asynchronous path — store, completion-sensor passes, real HTTP to a server speaking
ComfyUI's recorded protocol that really runs the workflow on a real clip."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
import yaml

from assets.execution import remote as remote_tasks
from resources.media import MediaStore
from resources.providers.client import ProviderRegistry
from resources.providers.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    BreakerPolicy,
    Deadlines,
    RetryPolicy,
    Waiting,
    account,
    admit,
    breaker_admit,
    breaker_allows,
    breaker_record,
    breaker_view,
    overdue,
    retry_delay_s,
)
from resources.settings import DATA_DIR
from resources.store import remote
from resources.store.client import Store
from tests.fakes.comfyui_server import FakeComfyUI

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


# --- pure decisions ---------------------------------------------------------------------------


def test_breaker_opens_on_a_streak_half_opens_after_cooldown_and_closes_on_a_probe():
    policy = BreakerPolicy(consecutive_failures=3, min_calls=100, cooldown_s=60, probes=1)
    b = Breaker()
    for i in range(2):
        b = breaker_record(b, policy, False, at(i))
    assert b.state == CLOSED and b.consecutive_failures == 2
    b = breaker_record(b, policy, False, at(2))
    assert b.state == OPEN and b.opened_at == at(2)
    assert not breaker_allows(b, policy, at(61))  # cooldown not over
    assert breaker_view(b, policy, at(62.5)).state == HALF_OPEN
    assert breaker_allows(b, policy, at(63))
    probing = breaker_admit(b, policy, at(63))
    assert probing.probes_in_flight == 1 and not breaker_allows(probing, policy, at(63))  # one probe at a time
    assert breaker_record(probing, policy, False, at(70)).state == OPEN  # failed probe: open again
    closed = breaker_record(probing, policy, True, at(70))
    assert closed.state == CLOSED and closed.consecutive_failures == 0 and closed.outcomes == ()


def test_breaker_opens_on_a_failure_rate_over_the_window():
    policy = BreakerPolicy(consecutive_failures=100, failure_rate=0.5, min_calls=6, window_s=60)
    b = Breaker()
    for i, ok in enumerate([True, False, True, False, True]):
        b = breaker_record(b, policy, ok, at(i))
    assert b.state == CLOSED  # 5 outcomes < min_calls
    assert breaker_record(b, policy, False, at(5)).state == OPEN  # 3 of 6 failed
    # Old outcomes leave the window: two failures alone, long after, are 2 of 2 but < min_calls.
    assert breaker_record(breaker_record(b, policy, False, at(200)), policy, False, at(201)).state == CLOSED


def test_retry_classes_backoff_and_retry_after():
    policy = RetryPolicy(attempts=3, base_s=2, max_s=60)
    assert retry_delay_s(policy, "ComfyUIPromptError", 1) is None  # permanent
    assert retry_delay_s(policy, "Timeout", 1) is None  # a retry would double a too-long task
    assert retry_delay_s(policy, "PromptLost", 3) is None  # attempts used up
    waits = [retry_delay_s(policy, "ProviderUnreachable", n) for n in (1, 2)]
    assert 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 4.0  # 2·2^(n-1) × uniform(0.5, 1)
    assert retry_delay_s(policy, "ProviderBusy", 1, retry_after_s=7.5) == 7.5  # honoured as given
    assert retry_delay_s(policy, "ProviderBusy", 1, retry_after_s=600) is None  # longer than max: fall back


def test_admission_counts_real_concurrency_breakers_and_backoff():
    waiting = [
        Waiting("a", "comfy", at(0)),
        Waiting("b", "comfy", at(1)),
        Waiting("c", "other", at(2), not_before=at(100)),
        Waiting("d", "down", at(3)),
    ]
    open_breaker = Breaker(state=OPEN, opened_at=at(0))
    chosen, _ = admit(
        waiting,
        {"comfy": 0},
        {"comfy": 1, "other": 4, "down": 4},
        {"down": open_breaker},
        {"down": BreakerPolicy(cooldown_s=600)},
        at(10),
    )
    assert chosen == ["a"]  # one prompt per server; c backs off; down's breaker is open
    chosen, after = admit(
        waiting,
        {"comfy": 1},
        {"comfy": 1, "other": 4, "down": 4},
        {"down": open_breaker},
        {"down": BreakerPolicy(cooldown_s=5)},
        at(10),
    )
    assert chosen == ["d"] and after["down"].state == HALF_OPEN and after["down"].probes_in_flight == 1


def test_deadlines_and_accounting():
    d = Deadlines(queue_s=60, run_s=30)
    assert overdue(d, at(0), None, at(59)) is None and overdue(d, at(0), None, at(61)) == "QueueTimeout"
    # The run deadline counts from the provider's start, not from enqueueing.
    assert overdue(d, at(0), at(50), at(79)) is None and overdue(d, at(0), at(50), at(81)) == "Timeout"
    spent = account(1_000, 4_000, 9_500)
    assert (spent.queue_wait_ms, spent.compute_seconds) == (3_000, 5.5)
    assert account(1_000, 4_000, 9_500, reused=True).compute_seconds == 0.0  # charged by its first submit
    assert account(1_000, None, None).compute_seconds == 0.0


# --- the asynchronous path against the ComfyUI-protocol server --------------------------------

PROVIDER = "comfyui-gpu"


def _registry(tmp_path: Path, base_url: str, **comfy) -> ProviderRegistry:
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    doc["providers"] = [p for p in doc["providers"] if p["provider_id"] == PROVIDER]
    doc["providers"][0].update(mode="active", base_url=base_url, **comfy)
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return ProviderRegistry(path=str(path))


@pytest.fixture
def world(tmp_path, short_bikes):
    """(fake server, store, media with the clip stored, registry factory)."""
    with FakeComfyUI(tmp_path / "comfy") as server:
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        media = MediaStore(uri=str(tmp_path / "media"))
        media.put_file("proxies/v1.mp4", str(short_bikes))
        yield server, store, media, lambda **kw: _registry(tmp_path, server.base_url, **kw)
        server.reset_knobs()
        server.node_delay_s = 0
        server.wait_idle(60)
        store.close()


def _enqueue(store: Store, *task_ids: str, levels: int = 6) -> None:
    spec = json.dumps({"input_key": "proxies/v1.mp4", "params": {"levels": levels}, "prompt": ""})
    with store.write() as s:
        for i, tid in enumerate(task_ids):
            remote.enqueue(
                s,
                [
                    {
                        "task_id": tid,
                        "video_id": "v1",
                        "provider_id": PROVIDER,
                        "effect_type": "cartoon",
                        "selection": "ranked",
                        "spec": spec,
                    }
                ],
                datetime.now(UTC) + timedelta(microseconds=i),
            )


def _drive(store, providers, media, until, timeout_s=90.0, events=None):
    """Completion-sensor passes every 0.1 s until ``until(rows by task id)``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        progress = remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
        if events is not None:
            events.extend(progress.events)
        rows = {r["task_id"]: r for r in store.remote_tasks((*remote.OPEN_STATES, "collected"))}
        if until(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"not reached: {rows}")


def _finished(*ids):
    return lambda rows: all(rows[i]["state"] == "finished" for i in ids)


@pytest.mark.video
@pytest.mark.slow
def test_one_prompt_at_a_time_queue_time_apart_from_compute(world):
    server, store, media, registry = world
    providers = registry()
    _enqueue(store, "t1", "t2")
    server.pause()
    remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
    states = {r["task_id"]: r["state"] for r in store.remote_tasks()}
    assert states == {"t1": "submitted", "t2": "waiting"} and len(server.accepted) == 1  # servers × 1
    time.sleep(0.5)
    server.resume()
    rows = _drive(store, providers, media, _finished("t1", "t2"))
    r1, r2 = (json.loads(rows[t]["result"]) for t in ("t1", "t2"))
    assert r1["status"] == r2["status"] == "succeeded"
    assert r1["queue_wait_ms"] >= 500  # it waited on the paused server: queue, not compute
    assert 0 < r1["compute_seconds"] < 30 and 0 < r2["compute_seconds"] < 30
    assert r2["queue_wait_ms"] >= r1["compute_seconds"] * 1000 * 0.5  # t2 waited for t1's slot with us


@pytest.mark.video
@pytest.mark.slow
def test_timeout_interrupts_and_accounts_the_compute_the_server_spent(world):
    server, store, media, registry = world
    server.node_delay_s = 0.4  # 7 nodes: ~2.8 s of work; an interrupt lands between nodes
    providers = registry(timeout_seconds=0.5)
    _enqueue(store, "slow")
    events = []
    rows = _drive(store, providers, media, _finished("slow"), events=events)
    r = json.loads(rows["slow"]["result"])
    assert r["status"] == "failed" and r["error_class"] == "Timeout"
    assert r["compute_seconds"] >= 0.5  # the server worked past the deadline until the interrupt landed
    assert r["compute_seconds"] < 2.8  # …and stopped before finishing
    assert any(e["event_type"] == "TaskDeadlinePassed" for e in events)
    # No retry joined the dying prompt: a timeout is final, one prompt was ever queued.
    assert len(server.accepted) == 1


@pytest.mark.video
@pytest.mark.slow
def test_server_restart_loses_the_prompt_and_the_retry_runs_a_fresh_one(world):
    server, store, media, registry = world
    providers = registry(retry={"attempts": 3, "base_seconds": 0.1, "max_seconds": 1})
    _enqueue(store, "lost")
    server.pause()
    remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
    first = store.remote_tasks()[0]["provider_job_id"]
    server.restart()
    server.resume()
    events = []
    rows = _drive(store, providers, media, _finished("lost"), events=events)
    r = json.loads(rows["lost"]["result"])
    assert r["status"] == "succeeded" and r["attempts"] == 2
    retry = [e for e in events if e["event_type"] == "TaskRetryScheduled"]
    assert len(retry) == 1 and json.loads(retry[0]["payload"])["error_class"] == "PromptLost"
    assert rows["lost"]["provider_job_id"] != first


@pytest.mark.video
@pytest.mark.slow
def test_retry_after_is_honoured(world):
    server, store, media, registry = world
    providers = registry()
    server.refuse_next(503, retry_after_s=1.5)
    _enqueue(store, "busy")
    now = datetime.now(UTC)
    progress = remote_tasks.advance(store, providers.registry(), providers.adapter, media, now)
    [retry] = [e for e in progress.events if e["event_type"] == "TaskRetryScheduled"]
    payload = json.loads(retry["payload"])
    assert payload["error_class"] == "ProviderBusy" and payload["wait_s"] == 1.5 and payload["retry_after_s"] == 1.5
    [row] = store.remote_tasks()
    assert row["state"] == "waiting" and row["not_before"] == now + timedelta(seconds=1.5)
    remote_tasks.advance(store, providers.registry(), providers.adapter, media, now + timedelta(seconds=1))
    assert store.remote_tasks()[0]["state"] == "waiting"  # not before the server said
    rows = _drive(store, providers, media, _finished("busy"))
    assert json.loads(rows["busy"]["result"])["status"] == "succeeded"


@pytest.mark.video
@pytest.mark.slow
def test_resubmission_is_not_charged_twice_and_cleanup_frees_the_server(world, tmp_path):
    server, store, media, registry = world
    providers = registry()
    _enqueue(store, "once")
    rows = _drive(store, providers, media, _finished("once"))
    r = json.loads(rows["once"]["result"])
    assert r["compute_seconds"] > 0
    # The same task enqueued again (a re-run of M6) is left as it is: no second prompt.
    _enqueue(store, "once")
    remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
    assert len(server.accepted) == 1
    # The adapter asked again for a task whose prompt already succeeded reports no compute.
    adapter = providers.adapter(PROVIDER)
    from resources.providers.base import ProviderTask

    task = ProviderTask("once", "v1", "cartoon", PROVIDER, str(tmp_path / "in.mp4"), str(tmp_path / "o.mp4"))
    again = adapter.execute(task)
    assert again.status == "succeeded" and again.compute_seconds == 0.0 and again.partner_cost_usd == 0.0
    assert len(server.accepted) == 1
    # Collect and clean up as M6 does: the output downloaded, then input, output and history freed.
    size = adapter.fetch(r["handle"], r["output"], str(tmp_path / "out.mp4"))
    assert size > 1000
    adapter.cleanup(r["handle"], r["output"])
    handle = json.loads(r["handle"])
    assert (server.dirs["input"] / handle["input"]["filename"]).stat().st_size == 0
    out = server.dirs["output"] / r["output"]["subfolder"] / r["output"]["filename"]
    assert out.stat().st_size == 0
    assert httpx.get(f"{server.base_url}/history/{handle['prompt_id']}").json() == {}


@pytest.mark.video
@pytest.mark.slow
def test_breaker_opens_then_a_probe_closes_it(world):
    server, store, media, registry = world
    providers = registry(breaker={"consecutive_failures": 2, "cooldown_seconds": 0.5, "min_calls": 50})
    events = []
    for tid in ("f1", "f2"):
        server.fail_next(class_type="ImageQuantize", exception_type="RuntimeError", exception_message="broken node")
        _enqueue(store, tid)
        _drive(store, providers, media, _finished(tid), events=events)
    assert store.breakers()[PROVIDER]["state"] == OPEN
    _enqueue(store, "probe")
    remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
    assert {r["task_id"]: r["state"] for r in store.remote_tasks()}["probe"] == "waiting"  # refused while open
    time.sleep(0.6)
    _drive(store, providers, media, _finished("probe"), events=events)
    assert store.breakers()[PROVIDER]["state"] == CLOSED
    changes = [json.loads(e["payload"]) for e in events if e["event_type"] == "ProviderBreakerChanged"]
    assert [(c["from"], c["to"]) for c in changes] == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


# --- the pipeline: a ranked provider fails for good → the manifest's next one (remote) -------


def _fallback_registry(tmp_path: Path, base_url: str) -> str:
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    keep = {"ffmpeg-posterize": 0, "opencv-cartoon": 1, PROVIDER: 2}
    doc["providers"] = sorted(
        (p for p in doc["providers"] if p["provider_id"] in keep), key=lambda p: keep[p["provider_id"]]
    )
    for p in doc["providers"]:
        if p["provider_id"] == "ffmpeg-posterize":
            p["workflow"]["graph"] = "nosuchfilter=1"  # ffmpeg refuses it: a permanent failure
        if p["provider_id"] == PROVIDER:
            p.update(mode="active", base_url=base_url)
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.video
@pytest.mark.slow
def test_fallback_to_the_next_ranked_provider_runs_remote_and_charges_the_job_once(
    settings, instance, short_bikes, tmp_path
):
    from api.app import create_app
    from pipelines.definitions import build_definitions
    from resources.lake import Lake
    from resources.schemas import BEST_RESULT, LEDGER_ENTRIES, PIPELINE_EVENTS, PROVIDER_OUTPUTS
    from tests.api_users import new_user_at
    from tests.harness import Driver
    from tests.server import serve

    with FakeComfyUI(tmp_path / "comfy") as comfy:
        # No exploration: with probability epsilon the batch would take the remote provider in
        # as an exploration slot (seeded by the random video id), and it would not be the
        # ranked fallback this test follows.
        registry = _fallback_registry(tmp_path, comfy.base_url)
        settings = settings.model_copy(update={"providers_path": registry, "exploration_rate": 0.0})
        driver = Driver(build_definitions(settings), instance)
        lake = Lake(uri=settings.lake_uri)
        with serve(create_app(settings)) as base:
            headers = new_user_at(base)["headers"]
            r = httpx.post(
                f"{base}/v1/uploads",
                headers=headers,
                files={"file": ("bikes.mp4", short_bikes.read_bytes(), "video/mp4")},
                data={"description": "make it look like a cartoon"},  # the cartoon job that falls back
            )
            vid = r.json()["video_id"]
            started = time.monotonic()
            runs = driver.step("upload_sensor")
            for run in runs:
                for ev in run.all_events:
                    if ev.is_failure:
                        sys.stdout.write(str(ev.event_specific_data) + "\n")
            assert all(run.success for run in runs)
            intake_s = time.monotonic() - started
            outputs = lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == vid)
            by_provider = dict(zip(outputs["provider_id"], outputs["status"], strict=True))
            # The intake run returned with the remote fallback still pending: nothing waited on it.
            assert by_provider == {"ffmpeg-posterize": "failed", "opencv-cartoon": "succeeded", PROVIDER: "pending"}
            assert driver.step("completion_sensor") == []  # the fallback is not finished
            deadline = time.monotonic() + 120
            collect = []
            while not collect and time.monotonic() < deadline:
                collect = driver.step("remote_task_sensor")
                time.sleep(0.2)
            remote_s = time.monotonic() - started
            assert [run.success for run in collect] == [True]
            assert all(run.success for run in driver.step("completion_sensor"))
            driver.land()  # the store's ledger entries into bronze

    outputs = lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == vid)
    fallback = outputs.filter(pl.col("provider_id") == PROVIDER).row(0, named=True)
    assert (fallback["status"], fallback["selection"]) == ("succeeded", "ranked") and fallback["compute_seconds"] > 0
    events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == vid)
    [fell] = events.filter(pl.col("event_type") == "TaskFellBack")["payload"].to_list()
    assert json.loads(fell)["fallback_provider_id"] == PROVIDER
    assert json.loads(fell)["reason"] == "FFmpegError"
    # Charged once: one reservation, one consume, for the job — the fallback added none.
    kinds = sorted(lake.read(LEDGER_ENTRIES, pl.col("correlation_id") == vid)["kind"].to_list())
    assert kinds == ["consume", "reserve"]
    assert lake.read(BEST_RESULT, pl.col("video_id") == vid).height == 1
    # How long the intake run held vs when the remote task's result was in (-s shows it).
    sys.stdout.write(f"\nintake run {intake_s:.1f} s; remote fallback collected after {remote_s:.1f} s\n")
