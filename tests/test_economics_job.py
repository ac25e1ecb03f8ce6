"""The economics job on real executions: registry health, execution costs, marginality
windows, and a routing manifest that the next video's M5 reads."""

import json

import httpx
import polars as pl
import pytest

from api.app import create_app
from economics.cost_model import BREAKDOWN_COLUMNS
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import (
    BEST_RESULT,
    EXECUTION_COSTS,
    JOB_MARGINS,
    LEDGER_ENTRIES,
    MARGINALITY_WINDOWS,
    PIPELINE_EVENTS,
    PROVIDER_OUTPUTS,
    PROVIDER_REGISTRY,
    ROUTING_ESTIMATES,
    ROUTING_MANIFESTS,
    TEST_BATCH,
)
from tests.api_users import ADMIN, new_user_at
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]


def _upload(base, path):
    user = new_user_at(base)
    r = httpx.post(
        f"{base}/v1/uploads", headers=user["headers"], files={"file": (path.name, path.read_bytes(), "video/mp4")}
    )
    return r.json()["video_id"]


def test_economics_cycle_publishes_a_manifest_that_m5_uses(settings, instance, warm_bikes, warm_carphone):
    defs = build_definitions(settings)
    driver = Driver(defs, instance)
    lake = Lake(uri=settings.lake_uri)
    with serve(create_app(settings)) as base:
        first = _upload(base, warm_bikes)
        driver.step("upload_sensor")
        first_batch = lake.read(
            PIPELINE_EVENTS, (pl.col("correlation_id") == first) & (pl.col("event_type") == "TestBatchDispatched")
        )
        assert json.loads(first_batch["payload"][0])["manifest_source"] == "bootstrap"
        driver.step("completion_sensor")  # the best result is delivered: the job is charged
        driver.land()  # as the landing sensor does before the economics cycle reads the ledger

        assert defs.resolve_job_def("economics_job").execute_in_process(instance=instance).success

        outputs = lake.read(PROVIDER_OUTPUTS)
        costs = lake.read(EXECUTION_COSTS)
        assert sorted(costs["task_id"]) == sorted(outputs["task_id"])
        ok = costs.filter(pl.col("status") == "succeeded")
        assert (ok["cost_usd"] > 0).all()
        # The job's one charge is revenue of the delivered task only; every task is a cost.
        consumed = lake.read(LEDGER_ENTRIES, (pl.col("correlation_id") == first) & (pl.col("kind") == "consume"))
        price = consumed.row(0, named=True)["tokens"]
        assert consumed.height == 1
        best = lake.read(BEST_RESULT, pl.col("video_id") == first)
        charged = costs.filter(pl.col("tokens_charged") > 0)
        assert charged["task_id"].to_list() == best["task_id"].to_list()
        assert charged["tokens_charged"].to_list() == [price]
        assert costs["tokens_charged"].sum() == price
        parts = list(BREAKDOWN_COLUMNS)
        assert costs.select(total=pl.sum_horizontal(parts))["total"].to_list() == pytest.approx(
            costs["cost_usd"].to_list()
        )
        assert (ok["output_bytes"] > 1000).all() and (ok["storage_cost_usd"] > 0).all()
        assert charged["margin"].to_list() == pytest.approx(
            (
                (charged["tokens_charged"] - charged["cost_usd"] / settings.token_usd_rate) / charged["tokens_charged"]
            ).to_list()
        )
        [job] = lake.read(JOB_MARGINS).to_dicts()
        assert (job["video_id"], job["tasks"], job["tokens_charged"]) == (first, costs.height, price)
        assert job["cost_usd"] == pytest.approx(costs["cost_usd"].sum())
        assert job["margin"] == pytest.approx(1 - costs["cost_tokens"].sum() / price)
        windows = lake.read(MARGINALITY_WINDOWS)
        assert set(windows["window"]) == {"1h", "24h", "7d"}
        day = windows.filter(pl.col("window") == "24h")
        assert day["executions"].sum() == costs.height

        registry = lake.read(PROVIDER_REGISTRY)
        health = dict(zip(registry["provider_id"], registry["healthy"], strict=True))
        assert health["ffmpeg-colortemp"] and health["opencv-cartoon"] and not health["comfyui-gpu"]

        manifest = ManifestStore(uri=settings.manifest_uri).read()
        assert manifest is not None
        tried = {(r["provider_id"], r["effect_type"]) for r in outputs.iter_rows(named=True)}
        for effect_type, entries in manifest["effects"].items():
            assert [e["rank"] for e in entries] == list(range(1, len(entries) + 1))
            for e in entries:
                assert (e["executions"] > 0) == ((e["provider_id"], effect_type) in tried)
        assert set(lake.read(ROUTING_MANIFESTS)["version"]) == {manifest["version"]}

        # Every routing decision logged its propensity, M5's inclusion probability, and the
        # costs carry it to the off-policy estimate published with the manifest.
        batch = lake.read(TEST_BATCH, pl.col("video_id") == first)
        assert batch["propensity"].is_between(0.0, 1.0, closed="right").all()
        assert (
            batch.filter(pl.col("selection") == "ranked")["propensity"].to_list()
            == [1.0] * batch.filter(pl.col("selection") == "ranked").height
        )
        by_task = dict(zip(batch["task_id"], batch["propensity"], strict=True))
        assert {t: by_task[t] for t in costs["task_id"] if t in by_task} == dict(
            zip(costs["task_id"], costs["propensity"], strict=True)
        )
        routed = batch.filter(pl.col("selection").is_in(["ranked", "exploration"]))
        block = manifest["off_policy"]
        assert block["previous_version"] is None  # the first manifest replaced the bootstrap ranking
        estimates = {e["estimator"]: e for e in block["estimates"]}
        assert set(estimates) == {"ips", "snips", "dr"}
        assert {e["policy"] for e in block["estimates"]} == {"candidate"}
        assert estimates["ips"]["decisions"] == routed["effect_type"].n_unique()
        assert lake.read(ROUTING_ESTIMATES, pl.col("version") == manifest["version"]).height == 3

        # The next cycle's manifest is estimated next to the one it replaces, on the same log.
        assert defs.resolve_job_def("economics_job").execute_in_process(instance=instance).success
        following = ManifestStore(uri=settings.manifest_uri).read()
        assert following["off_policy"]["previous_version"] == manifest["version"]
        rows = lake.read(ROUTING_ESTIMATES, pl.col("version") == following["version"])
        assert sorted(rows["policy"].unique()) == ["candidate", "current"]
        assert (rows.filter(pl.col("policy") == "current")["policy_version"] == manifest["version"]).all()
        manifest = following

        second = _upload(base, warm_carphone)
        driver.step("upload_sensor")
    batch = lake.read(
        PIPELINE_EVENTS, (pl.col("correlation_id") == second) & (pl.col("event_type") == "TestBatchDispatched")
    )
    payload = json.loads(batch["payload"][0])
    assert (payload["manifest_source"], payload["manifest_version"]) == ("manifest", manifest["version"])


def test_emergency_override_is_published_at_once_and_m5_obeys(settings, instance, warm_bikes, warm_carphone):
    defs = build_definitions(settings)
    driver = Driver(defs, instance)
    lake = Lake(uri=settings.lake_uri)
    admin = ADMIN
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        r = c.post(
            "/v1/admin/routing/override",
            headers=admin,
            json={"effect_type": "warm_grade", "provider_id": "ffmpeg-lut3d", "reason": "incident 42"},
        )
        assert r.status_code == 409  # nothing published yet
        assert defs.resolve_job_def("economics_job").execute_in_process(instance=instance).success
        r = c.post(
            "/v1/admin/routing/override",
            headers=admin,
            json={"effect_type": "warm_grade", "provider_id": "ffmpeg-lut3d", "reason": "incident 42"},
        )
        assert r.status_code == 201, r.text
        version = r.json()["version"]
        assert (
            c.post(
                "/v1/admin/routing/override",
                headers=admin,
                json={"effect_type": "warm_grade", "provider_id": "nope", "reason": "x"},
            ).status_code
            == 422
        )
        vid = _upload(base, warm_bikes)
        driver.step("upload_sensor")
    assert ManifestStore(uri=settings.manifest_uri).read()["version"] == version
    assert version in set(lake.read(ROUTING_MANIFESTS)["version"])
    # The example shows a warm grade: its target's tasks follow the override.
    warm = lake.read(PROVIDER_OUTPUTS, (pl.col("video_id") == vid) & (pl.col("effect_type") == "warm_grade"))
    assert warm.filter(pl.col("selection") != "shadow")["provider_id"].to_list() == ["ffmpeg-lut3d"]


def test_incremental_costs_match_a_full_refresh_including_a_late_refund(settings, instance, warm_bikes, warm_carphone):
    defs = build_definitions(settings)
    driver = Driver(defs, instance)
    lake = Lake(uri=settings.lake_uri)
    economics = defs.resolve_job_def("economics_job")
    admin = ADMIN
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        first = _upload(base, warm_bikes)
        driver.step("upload_sensor")
        driver.step("completion_sensor")
        assert economics.execute_in_process(instance=instance).success  # full: table was empty
        second = _upload(base, warm_carphone)
        driver.step("upload_sensor")
        # A late correction: the admin rejects the first video's effect → its tokens are refunded.
        approval = c.get(f"/v1/videos/{first}", headers=ADMIN).json()["approval"]["approval_id"]
        c.post(f"/v1/admin/approvals/{approval}", headers=admin, json={"decision": "reject"}).raise_for_status()
        driver.step("approval_sensor")
        driver.land()  # the refund reaches the lake's ledger
    result = economics.execute_in_process(instance=instance)
    assert result.success
    mode = result.asset_materializations_for_node("gold__execution_costs")[0].metadata["mode"].value
    assert mode.startswith("incremental")
    incremental = lake.read(EXECUTION_COSTS).sort("task_id")
    assert set(incremental["video_id"]) == {first, second}
    assert incremental.filter(pl.col("video_id") == first)["tokens_charged"].sum() == 0  # refund seen
    full = economics.execute_in_process(
        instance=instance, run_config={"ops": {"gold__execution_costs": {"config": {"full_refresh": True}}}}
    )
    assert full.success
    assert lake.read(EXECUTION_COSTS).sort("task_id").equals(incremental)
