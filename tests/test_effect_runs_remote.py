"""Effect runs on a remote (ComfyUI) provider, end to end through the real sensors: a user's
run of a published cartoon effect is routed to the GPU provider, its task is sent through the
asynchronous path (``remote_tasks``, admission, retries, breaker) and the run's Dagster run
ends with the run still ``running``; the remote task sensor follows the task on a server that
speaks ComfyUI's recorded HTTP protocol and really runs the workflow on the user's real clip,
then starts the run's job again, which collects the output, gates it and delivers it (charged
once) — or falls back to the next ranked provider, or refunds it at the run's deadline.

- the GPU provider delivers: charged once, costed as a run's execution;
- the GPU prompt fails for good: the next ranked (local) provider delivers, charged once;
- the run's deadline passes while the GPU prompt runs: stopped, refunded once.
"""

from __future__ import annotations

import json
import shutil
import time

import dagster as dg
import httpx
import polars as pl
import pytest
import yaml

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, LEDGER_ENTRIES, PIPELINE_EVENTS, RUN_OUTPUTS
from resources.settings import DATA_DIR
from resources.store.client import Store
from resources.store.remote import OPEN_STATES
from tests.api_users import ADMIN, new_user
from tests.fakes.comfyui_server import FakeComfyUI
from tests.harness import Driver
from tests.published import PRICES, publish
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]

GPU = "comfyui-gpu"
SLUG = "toon"
PRICE = PRICES["cartoon"]


def _registry(tmp_path, base_url: str, order: list[str], broken: frozenset[str] = frozenset(), **gpu) -> str:
    """data/providers.yaml with only the cartoon providers ``order`` names, in that order,
    active (ComfyUI at ``base_url``, with ``gpu``'s settings); those in ``broken`` given a
    filter graph ffmpeg refuses."""
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    by_id = {p["provider_id"]: p for p in doc["providers"]}
    doc["providers"] = [by_id[p] | {"mode": "active"} for p in order]
    for p in doc["providers"]:
        if p["provider_id"] == GPU:
            p.update(base_url=base_url, **gpu)
        if p["provider_id"] in broken:
            p["workflow"]["graph"] = "nosuchfilter=1"
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def world(settings, instance, tmp_path):
    """(fake ComfyUI server, settings factory, instance): a cartoon effect published in the
    store, no manifest yet (the routed provider is the registry's first), no exploration."""
    with FakeComfyUI(tmp_path / "comfy") as comfy:
        store = Store(settings.database_url)
        publish(store, slug=SLUG, effect_type="cartoon", params={"levels": 6})
        store.close()

        def configured(order: list[str], broken: frozenset[str] = frozenset(), **update):
            gpu = update.pop("gpu", {})
            path = _registry(tmp_path, comfy.base_url, order, broken, **gpu)
            return settings.model_copy(update={"providers_path": path, "exploration_rate": 0.0, **update})

        yield comfy, configured, instance
        comfy.reset_knobs()
        comfy.node_delay_s = 0
        comfy.wait_idle(60)


def _events(lake: Lake, run_id: str) -> list[str]:
    return lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == run_id).sort("occurred_at")["event_type"].to_list()


def _ledger(driver: Driver, lake: Lake, run_id: str) -> list[str]:
    driver.land()
    return lake.read(LEDGER_ENTRIES, pl.col("correlation_id") == run_id).sort("seq")["kind"].to_list()


def _collect(driver: Driver, timeout_s: float = 120.0) -> list:
    """Tick the remote task sensor until it starts a run (and execute it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ran = driver.step("remote_task_sensor")
        if ran:
            return ran
        time.sleep(0.2)
    raise AssertionError("the remote task sensor never requested a collect")


def _post_run(client: httpx.Client, user: dict, clip) -> str:
    r = client.post(f"/v1/effects/{SLUG}/runs", headers=user["headers"], files={"file": ("c.mp4", clip.read_bytes())})
    assert r.status_code == 202, r.text
    return r.json()["run_id"]


def _request(run_id: str) -> dg.RunRequest:
    """The run's partition again (a re-executed effect_run_job run)."""
    return dg.RunRequest(partition_key=run_id)


def test_a_run_on_the_gpu_provider_ends_its_dagster_run_and_is_delivered_by_the_collect(world, short_bikes):
    _, configured, instance = world
    settings = configured([GPU])
    driver = Driver(build_definitions(settings), instance)
    lake, store = Lake(uri=settings.lake_uri), Store(settings.database_url)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        run_id = _post_run(client, user, short_bikes)
        [ran] = driver.step("run_sensor")
        assert ran.success
        # The Dagster run ended; the effect run waits on its GPU task, which the store holds.
        status = client.get(f"/v1/runs/{run_id}", headers=ADMIN).json()
        assert (status["status"], status["routing"]["provider_id"]) == ("running", GPU)
        [task] = store.remote_tasks(OPEN_STATES, run_id)
        assert task["provider_id"] == GPU and task["state"] in ("submitted", "finished")
        pending = lake.read(RUN_OUTPUTS, pl.col("run_id") == run_id)
        assert pending.select("provider_id", "status").rows() == [(GPU, "pending")]
        assert _ledger(driver, lake, run_id) == ["reserve"]

        [collected] = _collect(driver)
        assert collected.success and collected.dagster_run.job_name == "effect_run_job"
        status = client.get(f"/v1/runs/{run_id}", headers=user["headers"]).json()
        assert (status["status"], status["tokens_charged"], status["progress"]) == ("delivered", PRICE, 1.0)
        output = client.get(status["output_url"].replace("http://testserver", ""))
        assert output.status_code == 200 and output.content[4:8] == b"ftyp"
        assert store.remote_tasks(OPEN_STATES, run_id) == []  # collected
        assert driver.tick("remote_task_sensor") == []  # nothing open: nothing requested
        # Re-executing the run's partition changes nothing: charged once.
        again = driver.run("run_sensor", _request(run_id))
        assert again.success
        assert _ledger(driver, lake, run_id) == ["reserve", "consume"]
    [row] = lake.read(RUN_OUTPUTS, pl.col("run_id") == run_id).to_dicts()
    assert (row["provider_id"], row["status"], row["delivered"], row["gate_passed"]) == (GPU, "succeeded", True, True)
    assert row["compute_seconds"] > 0 and row["output_key"] in status["output_url"]
    events = _events(lake, run_id)
    assert events[:2] == ["RunStarted", "RunRouted"] and events[-2:] == ["RunDelivered", "UserNotified"]
    assert {"TaskSubmitted", "TaskSucceeded"} <= set(events) and events.count("RunDelivered") == 1
    executions = lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == run_id)
    assert set(executions["job_kind"]) == {"run"}
    assert sorted(executions["event_type"]) == ["TaskDispatched", "TaskSucceeded"]
    # The economics job costs the GPU task as a run's execution, carrying the run's charge.
    assert build_definitions(settings).resolve_job_def("economics_job").execute_in_process(instance=instance).success
    [cost] = lake.read(EXECUTION_COSTS, pl.col("video_id") == run_id).to_dicts()
    assert (cost["job_kind"], cost["provider_id"], cost["tokens_charged"]) == ("run", GPU, PRICE)
    assert cost["compute_cost_usd"] > 0
    store.close()


def test_a_failed_gpu_prompt_falls_back_to_the_next_ranked_provider_and_is_charged_once(world, short_bikes):
    comfy, configured, instance = world
    settings = configured([GPU, "opencv-cartoon"])
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    comfy.fail_next(exception_type="ValueError", exception_message="injected: the graph cannot run")  # permanent
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        run_id = _post_run(client, user, short_bikes)
        assert [r.success for r in driver.step("run_sensor")] == [True]
        assert client.get(f"/v1/runs/{run_id}", headers=user["headers"]).json()["status"] == "running"
        [collected] = _collect(driver)
        assert collected.success
        status = client.get(f"/v1/runs/{run_id}", headers=ADMIN).json()
        assert (status["status"], status["tokens_charged"], status["routing"]["attempts"]) == ("delivered", PRICE, 2)
        assert status["routing"]["provider_id"] == GPU  # routed there; the fallback delivered
    rows = {r["provider_id"]: r for r in lake.read(RUN_OUTPUTS, pl.col("run_id") == run_id).to_dicts()}
    assert (rows[GPU]["status"], rows[GPU]["delivered"], rows[GPU]["error_class"]) == ("failed", False, "ValueError")
    assert rows["opencv-cartoon"]["delivered"] and rows["opencv-cartoon"]["gate_passed"]
    events = _events(lake, run_id)
    [fell] = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == run_id).filter(
        pl.col("event_type") == "TaskFellBack"
    )["payload"]
    assert json.loads(fell)["fallback_provider_id"] == "opencv-cartoon" and json.loads(fell)["provider_id"] == GPU
    assert events.count("RunDelivered") == 1 and "RunRefunded" not in events
    assert _ledger(driver, lake, run_id) == ["reserve", "consume"]
    dispatched = lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == run_id).filter(
        pl.col("event_type") == "TaskDispatched"
    )
    assert dispatched.height == 2 and set(dispatched["job_kind"]) == {"run"}


def test_the_run_deadline_stops_a_running_gpu_prompt_and_the_run_is_refunded_once(world, short_bikes):
    comfy, configured, instance = world
    comfy.node_delay_s = 1.0  # ~7 s of work: still running at the run's deadline
    settings = configured([GPU], run_deadline_s=3.0)
    driver = Driver(build_definitions(settings), instance)
    lake, store = Lake(uri=settings.lake_uri), Store(settings.database_url)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        run_id = _post_run(client, user, short_bikes)
        assert [r.success for r in driver.step("run_sensor")] == [True]
        [collected] = _collect(driver)
        assert collected.success
        status = client.get(f"/v1/runs/{run_id}", headers=user["headers"]).json()
        assert (status["status"], status["tokens_charged"]) == ("refunded", 0)
        assert status["error"] == "no provider made a usable video before the run's deadline (1 tried)"
        balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
        assert (balance["spent"], balance["reserved_outstanding"]) == (0, 0)
        assert driver.run("run_sensor", _request(run_id)).success  # re-executed: nothing twice
        assert _ledger(driver, lake, run_id) == ["reserve", "refund"]
    [row] = lake.read(RUN_OUTPUTS, pl.col("run_id") == run_id).to_dicts()
    assert (row["status"], row["error_class"]) == ("failed", "RunDeadline")
    events = _events(lake, run_id)
    assert "TaskDeadlinePassed" in events and events.count("RunRefunded") == 1
    # Our deadline, not the provider's fault: its breaker did not count it.
    assert store.breakers()[GPU]["consecutive_failures"] == 0
    store.close()


def test_a_finished_gpu_result_whose_collect_never_ran_is_requeued_by_recovery_and_delivered(world, short_bikes):
    from datetime import UTC, datetime

    from assets.execution import remote as remote_tasks
    from resources.media import MediaStore
    from resources.providers.client import ProviderRegistry

    _, configured, instance = world
    settings = configured([GPU], recovery_stuck_after_s=1.0, recovery_requeues=1)
    driver = Driver(build_definitions(settings), instance)
    lake, store = Lake(uri=settings.lake_uri), Store(settings.database_url)
    providers, media = ProviderRegistry(path=settings.providers_path), MediaStore(uri=settings.media_uri)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        run_id = _post_run(client, user, short_bikes)
        assert [r.success for r in driver.step("run_sensor")] == [True]
        # The task finishes, but the collect is never requested (the daemon went down with
        # the remote task sensor's tick): the run waits on a run nobody will start.
        deadline = time.monotonic() + 120
        while store.remote_tasks(("finished",), run_id) == [] and time.monotonic() < deadline:
            remote_tasks.advance(store, providers.registry(), providers.remote_adapter, media, datetime.now(UTC))
            time.sleep(0.2)
        assert store.remote_tasks(("finished",), run_id) != []
        assert driver.tick("recovery_sensor") == []  # the first tick after an outage
        time.sleep(1.2)
        [requeue] = driver.tick("recovery_sensor")
        assert (requeue.job_name, requeue.partition_key, requeue.run_key) == (
            "effect_run_job",
            run_id,
            f"recover:{run_id}:run:1",
        )
        assert driver.run("recovery_sensor", requeue).success
        status = client.get(f"/v1/runs/{run_id}", headers=user["headers"]).json()
        assert (status["status"], status["tokens_charged"]) == ("delivered", PRICE)
        # The remote task sensor's own request, arriving late, finds the run settled.
        assert driver.tick("remote_task_sensor") == []
        assert _ledger(driver, lake, run_id) == ["reserve", "consume"]
    assert _events(lake, run_id).count("RecoveryRequeued") == 1
    store.close()
