"""Effect runs end to end, the revenue loop: an effect published through the real chain (an
example upload → intake → evaluation → admin approval → gallery), then users run it on their
own videos over real HTTP; the real landing and run sensors start the runs on a real Dagster
instance, real providers render real video, and the ledger, the events and the economics
show what happened.

- a user runs the effect on a new upload and is charged once for the output; the same run
  again is a cache hit (no provider call, charged per the cache policy, saved cost in the
  economics);
- the routed provider fails for good → the next ranked one delivers, charged once, a shadow
  copy costed and never charged;
- every provider fails → refunded and told.
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import httpx
import polars as pl
import pytest
import yaml

from api.app import create_app
from economics.ledger import job_id
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import (
    EXECUTION_COSTS,
    EXECUTION_EVENTS,
    JOB_MARGINS,
    LEDGER_ENTRIES,
    MARGINALITY_WINDOWS,
    NOTIFICATIONS,
    PIPELINE_EVENTS,
    RUN_OUTPUTS,
)
from resources.settings import DATA_DIR
from tests.api_users import ADMIN, new_user
from tests.harness import Driver
from tests.local_settings import local_settings
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]

PRICE = 2  # data/effects.yaml warm_grade price_tokens


def _registry(tmp_path, name: str, modes: dict[str, str], broken: set[str]) -> str:
    """A copy of data/providers.yaml with only the warm-grade providers ``modes`` names (in
    that order and mode), those in ``broken`` given a filter graph ffmpeg refuses."""
    folder = tmp_path / name
    folder.mkdir()
    for f in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / f, folder / f)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    by_id = {p["provider_id"]: p for p in doc["providers"]}
    doc["providers"] = [by_id[p] | {"mode": mode} for p, mode in modes.items()]
    for p in doc["providers"]:
        if p["provider_id"] in broken:
            p["workflow"] = {"graph": "nosuchfilter=1"}  # a permanent FFmpegError
    (folder / "providers.yaml").write_text(yaml.safe_dump(doc))
    return str(folder / "providers.yaml")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, warm_bikes):
    """A warm grade published through the real chain; yields (settings, instance, base URL,
    slug). The effect's creation runs once for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("runs")
    settings = local_settings(
        tmp_path,
        EFFECTLAKE_MAX_UPLOAD_BYTES=20_000_000,
    )
    with dg.instance_for_test() as instance, serve(create_app(settings)) as base:
        driver = Driver(build_definitions(settings), instance)
        with httpx.Client(base_url=base, timeout=60) as client:
            creator = new_user(client)
            with open(warm_bikes, "rb") as fh:
                r = client.post("/v1/uploads", headers=creator["headers"], files={"file": ("w.mp4", fh, "video/mp4")})
            video_id = r.json()["video_id"]
            assert all(run.success for run in driver.step("upload_sensor"))
            assert all(run.success for run in driver.step("completion_sensor"))
            status = client.get(f"/v1/videos/{video_id}", headers=creator["headers"]).json()
            approval = status["approval"]["approval_id"]
            decided = client.post(f"/v1/admin/approvals/{approval}", headers=ADMIN, json={"decision": "approve"})
            assert decided.status_code == 202
            assert all(run.success for run in driver.step("approval_sensor"))
            slug = client.get(f"/v1/videos/{video_id}", headers=creator["headers"]).json()["gallery"]["slug"]
        yield settings, instance, base, slug


def _run(client: httpx.Client, slug: str, user: dict, **form) -> dict:
    files = {"file": form.pop("file")} if "file" in form else None
    r = client.post(f"/v1/effects/{slug}/runs", headers=user["headers"], data=form, files=files)
    assert r.status_code == 202, r.text
    return r.json()


def _run_once(driver: Driver, base: str, slug: str, clip, strength: float, succeeds: bool) -> tuple[dict, dict]:
    """A new user's run of ``slug`` on ``clip`` at ``strength``, its Dagster run (which must
    succeed or fail as ``succeeds`` says); (the run as queued, its status after)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        run = _run(client, slug, user, params=json.dumps({"strength": strength}), file=("c.mp4", clip.read_bytes()))
        assert [r.success for r in driver.step("run_sensor")] == [succeeds]
        return run, client.get(f"/v1/runs/{run['run_id']}", headers=user["headers"]).json()


def _events(lake: Lake, run_id: str) -> list[str]:
    return lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == run_id).sort("occurred_at")["event_type"].to_list()


def _ledger(driver: Driver, lake: Lake, run_id: str) -> list[str]:
    driver.land()
    return lake.read(LEDGER_ENTRIES, pl.col("correlation_id") == run_id).sort("seq")["kind"].to_list()


def test_a_user_runs_a_published_effect_on_their_video_then_the_same_run_is_a_cache_hit(gallery, short_bikes):
    settings, instance, base, slug = gallery
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    with httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        first = _run(
            client, slug, user, params=json.dumps({"strength": 0.8}), file=("mine.mp4", short_bikes.read_bytes())
        )
        run_id, video_id = first["run_id"], first["video_id"]
        assert (first["status"], first["tokens_reserved"], first["params"]["strength"]) == ("queued", PRICE, 0.8)
        # The video sent with the run is its input, not an example: no creation job starts.
        assert driver.tick("upload_sensor") == []
        [ran] = driver.step("run_sensor")
        assert ran.success
        assert driver.step("run_sensor") == []  # run key = run id: never twice

        status = client.get(f"/v1/runs/{run_id}", headers=user["headers"]).json()
        assert (status["status"], status["progress"], status["tokens_charged"], status["cached"]) == (
            "delivered",
            1.0,
            PRICE,
            False,
        )
        output = client.get(status["output_url"].replace("http://testserver", ""))
        assert output.status_code == 200 and output.content[4:8] == b"ftyp"
        assert client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()["spent"] == PRICE
        assert _ledger(driver, lake, run_id) == ["reserve", "consume"]
        events = _events(lake, run_id)
        assert events[:2] == ["RunStarted", "RunRouted"] and events[-2:] == ["RunDelivered", "UserNotified"]
        kinds = lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == run_id)["job_kind"].unique().to_list()
        assert kinds == ["run"]
        delivered = lake.read(RUN_OUTPUTS, pl.col("run_id") == run_id).filter(pl.col("delivered")).row(0, named=True)
        assert delivered["gate_passed"] and delivered["output_key"] in status["output_url"]
        notes = lake.read(NOTIFICATIONS, pl.col("correlation_id") == run_id)["kind"].to_list()
        assert notes == ["run_ready"]

        # The same bytes, revision, parameters (now by video id): the stored output, no provider.
        second = _run(client, slug, user, video_id=video_id, params=json.dumps({"strength": 0.8}))
        assert [r.success for r in driver.step("run_sensor")] == [True]
        again = client.get(f"/v1/runs/{second['run_id']}", headers=user["headers"]).json()
        assert (again["status"], again["cached"], again["output_url"]) == ("delivered", True, status["output_url"])
        assert "RunCacheHit" in _events(lake, second["run_id"])
        assert lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == second["run_id"]).is_empty()
        # Charged per the cache policy (the full price) and once.
        assert _ledger(driver, lake, second["run_id"]) == ["reserve", "consume"]
        balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
        assert balance["spent"] == 2 * PRICE
        runs = client.get("/v1/runs", headers=user["headers"]).json()["items"]
        assert [r["run_id"] for r in runs] == [run_id, second["run_id"]]

    # The economics job costs the run like any execution and shows the cache's saving.
    assert build_definitions(settings).resolve_job_def("economics_job").execute_in_process(instance=instance).success
    costs = lake.read(EXECUTION_COSTS, pl.col("video_id") == run_id)
    assert set(costs["job_kind"]) == {"run"}
    assert costs.filter(pl.col("task_id") == delivered["task_id"])["tokens_charged"].to_list() == [PRICE]
    jobs = lake.read(JOB_MARGINS, pl.col("video_id").is_in([run_id, second["run_id"]])).sort("finished_at")
    assert jobs["job_kind"].to_list() == ["run", "run"] and jobs["cache_hit"].to_list() == [False, True]
    fresh, hit = jobs.row(0, named=True), jobs.row(1, named=True)
    assert fresh["tokens_charged"] == hit["tokens_charged"] == PRICE and hit["cost_usd"] == 0
    # The cache hit saved what the reused output cost to make (the fresh run's one task).
    assert hit["saved_cost_usd"] == pytest.approx(fresh["cost_usd"] - fresh["llm_cost_usd"])
    assert hit["saved_cost_usd"] > 0
    # The hit is an execution_costs row of its own: the run's charge, no cost, the saving.
    row = lake.read(EXECUTION_COSTS, pl.col("video_id") == second["run_id"]).row(0, named=True)
    assert (row["cache_hit"], row["selection"], row["tokens_charged"], row["cost_usd"]) == (True, "cache", PRICE, 0)
    assert (row["provider_id"], row["saved_cost_usd"]) == (delivered["provider_id"], hit["saved_cost_usd"])
    # The provider's windows count its revenue, not an execution.
    windows = lake.read(MARGINALITY_WINDOWS, (pl.col("window") == "1h") & (pl.col("source") == "real"))
    cell = windows.filter(pl.col("provider_id") == row["provider_id"]).row(0, named=True)
    assert cell["cache_hits"] == 1 and cell["saved_cost_usd"] == pytest.approx(hit["saved_cost_usd"])
    ran = lake.read(EXECUTION_COSTS, (pl.col("provider_id") == row["provider_id"]) & ~pl.col("cache_hit"))
    assert cell["executions"] == ran.height and cell["tokens_charged"] == int(ran["tokens_charged"].sum()) + PRICE


def test_a_failed_ranked_provider_falls_back_and_the_run_is_charged_once(gallery, short_carphone, tmp_path):
    settings, instance, base, slug = gallery
    registry = _registry(
        tmp_path,
        "fallback",
        {"ffmpeg-colortemp": "active", "opencv-curves": "active", "ffmpeg-lut3d": "shadow"},
        broken={"ffmpeg-colortemp"},
    )
    # No exploration, and no manifest published yet (its own manifest file): the routed
    # provider is the registry's first, which fails.
    settings = settings.model_copy(
        update={"providers_path": registry, "exploration_rate": 0.0, "manifest_uri": str(tmp_path / "manifest.json")}
    )
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    with httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        clip = ("c.mp4", short_carphone.read_bytes())
        run = _run(client, slug, user, params=json.dumps({"strength": 0.3}), file=clip)
        assert [r.success for r in driver.step("run_sensor")] == [True]
        status = client.get(f"/v1/runs/{run['run_id']}", headers=ADMIN).json()
        assert status["status"] == "delivered" and status["tokens_charged"] == PRICE
        assert (status["routing"]["provider_id"], status["routing"]["decision"]) == ("ffmpeg-colortemp", "exploit")
        assert status["routing"]["attempts"] == 2
    rows = lake.read(RUN_OUTPUTS, pl.col("run_id") == run["run_id"])
    by_provider = {r["provider_id"]: r for r in rows.iter_rows(named=True)}
    assert (by_provider["ffmpeg-colortemp"]["status"], by_provider["ffmpeg-colortemp"]["delivered"]) == (
        "failed",
        False,
    )
    assert by_provider["opencv-curves"]["delivered"] and by_provider["opencv-curves"]["gate_passed"]
    shadow = by_provider["ffmpeg-lut3d"]
    assert (shadow["selection"], shadow["status"], shadow["delivered"]) == ("shadow", "succeeded", False)
    events = _events(lake, run["run_id"])
    assert "TaskFellBack" in events and events.count("RunDelivered") == 1
    assert _ledger(driver, lake, run["run_id"]) == ["reserve", "consume"]
    # Costed, all three; only the delivered task carries the charge.
    assert build_definitions(settings).resolve_job_def("economics_job").execute_in_process(instance=instance).success
    costs = lake.read(EXECUTION_COSTS, pl.col("video_id") == run["run_id"])
    charged = dict(zip(costs["provider_id"], costs["tokens_charged"], strict=True))
    assert charged == {"ffmpeg-colortemp": 0, "opencv-curves": PRICE, "ffmpeg-lut3d": 0}
    [job] = lake.read(JOB_MARGINS, pl.col("video_id") == run["run_id"]).to_dicts()
    assert job["tasks"] == 3 and job["shadow_cost_usd"] > 0 and job["tokens_charged"] == PRICE


def test_a_run_every_provider_fails_is_refunded(gallery, short_carphone, tmp_path):
    settings, instance, base, slug = gallery
    both = {"ffmpeg-colortemp": "active", "ffmpeg-lut3d": "active"}
    registry = _registry(tmp_path, "broken", both, broken=set(both))
    settings = settings.model_copy(update={"providers_path": registry})
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    with httpx.Client(base_url=base, timeout=60) as client:
        user = new_user(client)
        run = _run(client, slug, user, file=("c.mp4", short_carphone.read_bytes()))
        assert [r.success for r in driver.step("run_sensor")] == [True]
        status = client.get(f"/v1/runs/{run['run_id']}", headers=user["headers"]).json()
        assert (status["status"], status["tokens_charged"], status["output_url"]) == ("refunded", 0, None)
        # Every provider failed (or, once the economics job's health check has seen the broken
        # graphs, none was routable): either way nothing was delivered.
        assert status["error"].startswith("no provider")
        tried = lake.read(RUN_OUTPUTS, pl.col("run_id") == run["run_id"])
        assert tried.filter(pl.col("status") == "succeeded").is_empty() and not tried["delivered"].any()
        balance = client.get(f"/v1/users/{user['user_id']}/balance", headers=user["headers"]).json()
        assert (balance["spent"], balance["reserved_outstanding"]) == (0, 0)
    assert _ledger(driver, lake, run["run_id"]) == ["reserve", "refund"]
    assert _events(lake, run["run_id"])[-2:] == ["RunRefunded", "UserNotified"]
    assert lake.read(NOTIFICATIONS, pl.col("correlation_id") == run["run_id"])["kind"].to_list() == ["run_refunded"]
    assert lake.read(LEDGER_ENTRIES, pl.col("task_id") == job_id(run["run_id"])).height == 2


def test_past_the_deadline_no_further_provider_is_tried_and_the_run_is_refunded(gallery, short_carphone, tmp_path):
    settings, instance, base, slug = gallery
    registry = _registry(tmp_path, "late", {"ffmpeg-lut3d": "active", "opencv-curves": "active"}, {"ffmpeg-lut3d"})
    settings = settings.model_copy(
        update={
            "providers_path": registry,
            "exploration_rate": 0.0,
            "manifest_uri": str(tmp_path / "manifest.json"),
            "run_deadline_s": 0.001,  # over before the first attempt ends
        }
    )
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    run, status = _run_once(driver, base, slug, short_carphone, strength=0.9, succeeds=True)
    assert status["status"] == "refunded"
    assert status["error"] == "no provider made a usable video before the run's deadline (1 tried)"
    # The fallback that would have delivered was never dispatched.
    assert lake.read(RUN_OUTPUTS, pl.col("run_id") == run["run_id"])["provider_id"].to_list() == ["ffmpeg-lut3d"]
    assert "TaskFellBack" not in _events(lake, run["run_id"])
    assert _ledger(driver, lake, run["run_id"]) == ["reserve", "refund"]


def test_a_worker_lost_right_after_the_settlement_leaves_the_runs_compute_in_the_lake(
    gallery, short_carphone, monkeypatch
):
    """The user is charged in the store's settlement; the tasks' events reach the lake before
    it, so the economics cost the run even when its worker dies at once (nothing re-runs a
    settled run to write them again)."""
    import assets.runs.asset as runs_asset

    settings, instance, base, slug = gallery
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)

    def lost(*args, **kwargs):
        raise RuntimeError("run worker lost")

    # The first thing after the settlement: the user's notification.
    monkeypatch.setattr(runs_asset, "notify_user", lost)
    run, status = _run_once(driver, base, slug, short_carphone, strength=0.45, succeeds=False)
    assert (status["status"], status["tokens_charged"]) == ("delivered", PRICE)
    executions = lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == run["run_id"])
    assert "TaskSucceeded" in executions["event_type"].to_list()
    assert _events(lake, run["run_id"])[:2] == ["RunStarted", "RunRouted"]
