"""The automatic actions, run for real: classifications in the lake → ``bottleneck_action_sensor``
→ ``actions_job`` → the change the dispatch, the user or the routing sees → the restore when the
signal clears (``signals_job`` resolving the classification) — and recommendations that apply,
unattended within guardrails or approved through the API, rolled back through the API.

A GPU provider is the ComfyUI protocol double (tests/fakes/comfyui_server.py) behind the real
adapter, so "the dispatch honours the concurrency" is the real sender claiming slots."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import polars as pl
import pytest
import yaml

from api.app import create_app
from assets.execution import remote as remote_tasks
from economics.bottlenecks import CLASSIFICATION_SCHEMA, RUNBOOKS, automatic_action
from economics.recommendations import RECOMMENDATION_SCHEMA
from economics.routing import build_manifest
from pipelines.definitions import build_definitions
from resources import logconfig
from resources.clients import Clients
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import (
    BOTTLENECK_ACTIONS,
    BOTTLENECK_CLASSIFICATIONS,
    RECOMMENDATION_APPLICATIONS,
    RECOMMENDATIONS,
    ROUTING_MANIFESTS,
)
from resources.services.recommendations import recommendations_with_status
from resources.services.runtime import effective_concurrency, effective_prices
from resources.settings import DATA_DIR
from resources.store import remote
from tests.api_users import ADMIN
from tests.fakes.comfyui_server import FakeComfyUI
from tests.harness import Driver
from tests.local_settings import local_settings
from tests.server import serve

pytestmark = pytest.mark.slow

GPU, GPU2 = "comfyui-gpu", "comfyui-a10g"
LOCAL = ("ffmpeg-colortemp", "opencv-curves", "ffmpeg-posterize", "opencv-cartoon")


def _registry(tmp_path, base_url: str) -> str:
    """Two local warm-grade providers, two local cartoon ones, and two ComfyUI GPU providers
    (L4 at $0.80/h, A10G at $1.006/h) with 2 servers each on the protocol double."""
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    gpu = next(p for p in doc["providers"] if p["provider_id"] == GPU)
    gpu.update(mode="active", base_url=base_url, concurrency=2, servers=2)
    gpu["workflow"] = str(DATA_DIR.parent / gpu["workflow"])
    doc["providers"] = [p for p in doc["providers"] if p["provider_id"] in LOCAL] + [
        gpu,
        {**gpu, "provider_id": GPU2, "display_name": "ComfyUI A10G", "instance_type": "gpu-a10g"},
    ]
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def world(tmp_path, instance, short_bikes):
    with FakeComfyUI(tmp_path / "comfy") as server:
        settings = local_settings(
            tmp_path,
            EFFECTLAKE_PROVIDERS=_registry(tmp_path, server.base_url),
            EFFECTLAKE_AUTOSCALE_BUDGET_USD_PER_HOUR=1.0,
            EFFECTLAKE_AUTO_APPLY_PER_CYCLE=2,
        )
        clients = Clients.from_settings(settings)
        clients.store.upgrade()
        clients.lake.ensure_all()
        clients.media.put_file("proxies/v1.mp4", str(short_bikes))
        registry = clients.providers.registry()
        manifest = build_manifest(pl.DataFrame(), registry.active_by_effect(), utcnow())
        clients.manifest_store.publish(manifest)
        defs = build_definitions(settings)
        yield settings, clients, defs, Driver(defs, instance), server
        server.resume()
        server.wait_idle(60)
        clients.store.close()


def _classify(lake: Lake, category: str, cid: str, *, age_min: float = 0, severity: str = "critical", **kw) -> None:
    """An open classification last seen ``age_min`` minutes ago (as the classifier writes it)."""
    now = utcnow()
    numbers = kw.pop("numbers", {})
    row = {
        "classification_id": cid,
        "category": category,
        "severity": severity,
        "status": "open",
        "scope": "user" if category == "TOKEN_DEPLETION_RISK" else "provider_effect",
        "source": "real",
        "evidence": json.dumps({"signals": kw.pop("signals", {}), "numbers": numbers, "runs_per_hour": 30}),
        "recommended_action": "—",
        "runbook": RUNBOOKS[category],
        "cost_impact_usd_per_hour": kw.pop("impact", 6.0),
        "affected_jobs": [],
        "automatic_action": automatic_action(category, severity),
        "first_seen_at": now - timedelta(minutes=age_min + 5),
        "last_seen_at": now - timedelta(minutes=age_min),
        **kw,
    }
    lake.upsert(BOTTLENECK_CLASSIFICATIONS, pl.DataFrame([row], schema=CLASSIFICATION_SCHEMA))


def _actions(lake: Lake, cid: str) -> list[dict]:
    return lake.read(BOTTLENECK_ACTIONS, pl.col("classification_id") == cid).sort("taken_at").to_dicts()


def _enqueue(store, n: int) -> list[str]:
    spec = json.dumps({"input_key": "proxies/v1.mp4", "params": {"levels": 6}, "prompt": ""})
    ids = [f"t{i}" for i in range(n)]
    with store.write() as s:
        for i, tid in enumerate(ids):
            row = {"task_id": tid, "video_id": "v1", "provider_id": GPU, "effect_type": "cartoon"}
            remote.enqueue(s, [{**row, "selection": "ranked", "spec": spec}], utcnow() + timedelta(microseconds=i))
    return ids


def _in_flight(store) -> int:
    return sum(r["state"] in ("submitting", "submitted") for r in store.remote_tasks())


def test_throttling_reduces_the_dispatch_concurrency_and_restores_it_when_it_clears(world):
    _settings, clients, defs, driver, server = world
    lake, store = clients.lake, clients.store
    # Last seen 31 minutes ago: the next signals cycle resolves it (30 minutes without the condition).
    _classify(
        lake,
        "PROVIDER_API_THROTTLING",
        "thr",
        age_min=31,
        provider_id=GPU,
        effect_type="cartoon",
        numbers={"throttle_rate": 0.4},
    )
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]
    [applied] = _actions(lake, "thr")
    assert (applied["action"], applied["phase"], applied["outcome"]) == ("reduce_concurrency", "apply", "done")
    change = store.parameter_change(applied["change_id"])
    assert (change["before"], change["after"], change["source"], change["source_id"]) == (None, 1, "bottleneck", "thr")
    registry = clients.providers.registry()
    base = {p.provider_id: p.concurrency for p in registry.providers}
    assert effective_concurrency(base, store)[GPU] == 1

    # The sender honours it: of three waiting tasks one is sent (registry: two servers).
    server.pause()  # submitted prompts stay in flight
    _enqueue(store, 3)
    remote_tasks.send(store, registry, clients.providers.adapter, clients.media, utcnow())
    assert _in_flight(store) == 1
    assert driver.step("bottleneck_action_sensor") == []  # acted on once

    # The signal clears: a signals cycle with no throttling resolves it; the change is rolled back.
    assert defs.resolve_job_def("signals_job").execute_in_process(instance=driver.instance).success
    assert lake.read(BOTTLENECK_CLASSIFICATIONS, pl.col("classification_id") == "thr")["status"][0] == "resolved"
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]
    restore = _actions(lake, "thr")[-1]
    assert (restore["phase"], restore["outcome"]) == ("restore", "done")
    undo = store.parameter_change(restore["change_id"])
    assert (undo["before"], undo["after"], undo["source_id"]) == (1, None, applied["change_id"])
    assert effective_concurrency(base, store)[GPU] == 2
    remote_tasks.send(store, registry, clients.providers.adapter, clients.media, utcnow())
    assert _in_flight(store) == 2  # the registry's two slots again
    assert driver.step("bottleneck_action_sensor") == []


def test_token_depletion_tells_the_user_once_with_the_projected_hours(world):
    _settings, clients, defs, driver, _ = world
    store, lake = clients.store, clients.lake
    user, _key = store.create_user(store.create_workspace("w")["workspace_id"], welcome_tokens=100)
    _classify(
        lake,
        "TOKEN_DEPLETION_RISK",
        "dep",
        severity="warning",
        user_id=user["user_id"],
        numbers={"hours_to_exhaustion": 4.2, "token_burn_per_hour": 24.0, "tokens_available": 100},
    )
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]
    job = defs.resolve_job_def("actions_job")
    assert job.execute_in_process(instance=driver.instance).success  # another run: nothing more
    notices = [n for n in store.notifications(user["user_id"]) if n["kind"] == "token_depletion_risk"]
    assert len(notices) == 1
    assert "at the current rate (24 tokens/h) your balance runs out in 4.2 h" in notices[0]["body"].lower()
    [row] = _actions(lake, "dep")
    assert row["outcome"] == "done" and "4.2 h" in row["detail"]


def test_gpu_saturation_scales_up_within_budget_and_only_recommends_beyond_it(world):
    settings, clients, _defs, driver, _ = world
    store, lake = clients.store, clients.lake
    _classify(lake, "GPU_SATURATION", "sat1", provider_id=GPU, effect_type="cartoon", instance_type="gpu-l4")
    _classify(lake, "GPU_SATURATION", "sat2", provider_id=GPU2, effect_type="cartoon", instance_type="gpu-a10g")
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]
    [l4] = _actions(lake, "sat1")
    assert l4["outcome"] == "done"
    scale = store.parameter_change(l4["change_id"])
    assert (scale["before"], scale["after"], scale["cost_usd_per_hour"], scale["actor"]) == (None, 3, 0.8, "auto")
    [a10] = _actions(lake, "sat2")  # $0.80/h in force + $1.006/h > the $1.00/h budget
    assert a10["outcome"] == "recommended" and a10["change_id"] is None
    assert json.loads(a10["proposal"])["cost_usd_per_hour"] == pytest.approx(1.006)
    registry = clients.providers.registry()
    base = {p.provider_id: p.concurrency for p in registry.providers}
    assert effective_concurrency(base, store) == {**base, GPU: 3}

    recs = recommendations_with_status(lake, store).filter(pl.col("type") == "CAPACITY_SCALE_UP")
    [rec] = recs.to_dicts()
    assert rec["provider_id"] == GPU2 and rec["status"] == "pending" and rec["requires_admin_approval"]
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, headers=ADMIN) as c:
        r = c.post(
            f"/v1/admin/recommendations/{rec['recommendation_id']}", json={"decision": "approve", "admin": "ana"}
        )
        assert r.status_code == 202, r.text
        applied = r.json()["applied"]
        assert (applied["before"], applied["after"], applied["actor"]) == (None, 3, "ana")
        params = {(p["subject"], p["name"]): p["value"] for p in c.get("/v1/admin/parameters").json()}
        assert params == {(GPU, "concurrency"): 3, (GPU2, "concurrency"): 3}
        # Roll both back: each parameter is "not set" again, the registry's 2 applies.
        for cid in (applied["change_id"], l4["change_id"]):
            undo = c.post(f"/v1/admin/changes/{cid}/rollback", json={"admin": "ana", "reason": "test"})
            assert undo.status_code == 201, undo.text
            assert undo.json()["after"] is None and undo.json()["source"] == "rollback"
        again = c.post(f"/v1/admin/changes/{applied['change_id']}/rollback", json={})
        assert again.status_code == 409 and again.json()["code"] == "parameter_conflict"
        assert c.post("/v1/admin/changes/chg_nope/rollback", json={}).status_code == 404
        trail = c.get("/v1/admin/changes", params={"limit": 2}).json()
        assert len(trail["items"]) == 2 and trail["next_cursor"]
        rest = c.get("/v1/admin/changes", params={"cursor": trail["next_cursor"]}).json()["items"]
        assert [x["source"] for x in trail["items"] + rest] == ["bottleneck", "recommendation", "rollback", "rollback"]
    assert effective_concurrency(base, store) == base


def test_latency_demotion_holds_through_publications_and_is_restored(world):
    _settings, clients, defs, driver, _ = world
    store, lake, manifests = clients.store, clients.lake, clients.manifest_store
    _classify(
        lake,
        "PROVIDER_LATENCY_DEGRADATION",
        "lat",
        age_min=31,
        provider_id="ffmpeg-colortemp",
        effect_type="warm_grade",
    )
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]
    [row] = _actions(lake, "lat")
    assert row["outcome"] == "done", row["detail"]

    def warm_ids():
        return [e["provider_id"] for e in manifests.read()["effects"]["warm_grade"]]

    assert warm_ids() == ["opencv-curves"]  # published at once
    assert manifests.read()["demoted"]["warm_grade"][0]["provider_id"] == "ffmpeg-colortemp"
    demoted_version = manifests.read()["version"]
    # The economics job's next publication keeps it demoted (a runtime parameter, not a one-off override).
    routing = defs.get_assets_def(["gold", "routing_manifests"])
    assert dg.materialize(
        [routing], resources=defs.resources, instance=driver.instance, selection=[routing.key]
    ).success
    assert warm_ids() == ["opencv-curves"]
    assert manifests.read()["demoted"]["warm_grade"][0]["provider_id"] == "ffmpeg-colortemp"
    # Demoted for the degraded effect type only.
    assert "ffmpeg-colortemp" in [e["provider_id"] for e in manifests.read()["effects"]["cool_grade"]]
    assert defs.resolve_job_def("signals_job").execute_in_process(instance=driver.instance).success
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]
    assert _actions(lake, "lat")[-1]["phase"] == "restore"
    assert sorted(warm_ids()) == ["ffmpeg-colortemp", "opencv-curves"]
    assert "routing" not in {k[0] for k in store.parameters()}
    # Every version published is kept (once per version): the demoted one first, the restored
    # one last (the economics job's re-publication in between re-estimates the weights).
    published = lake.read(ROUTING_MANIFESTS).unique("version").sort("published_at")["version"].to_list()
    assert published[0] == demoted_version and published[-1] == manifests.read()["version"]


def _switch(effect: str, to: str, frm: str, impact: float, auto: bool = True) -> dict:
    action = {"effect_type": effect, "from_provider": frm, "to_provider": to}
    return {
        "recommendation_id": f"rec-{effect}",
        "type": "PROVIDER_SWITCH",
        "effect_type": effect,
        "provider_id": to,
        "title": f"Rank {to} first for {effect}",
        "rationale": "cheaper",
        "action": json.dumps(action, sort_keys=True),
        "projected_margin_impact_usd": impact,
        "projected_quality_impact": 0.0,
        "confidence": 0.9,
        "based_on_executions": 100,
        "auto_applicable": auto,
        "requires_admin_approval": not auto,
        "created_at": datetime.now(UTC),
    }


def test_recommendations_apply_unattended_within_guardrails_and_roll_back(world):
    settings, clients, defs, driver, _ = world
    store, lake, manifests = clients.store, clients.lake, clients.manifest_store
    current = manifests.read()["effects"]
    tops = {e: entries[0]["provider_id"] for e, entries in current.items()}
    alts = {e: entries[1]["provider_id"] for e, entries in current.items() if len(entries) > 1}
    recs = [
        _switch("warm_grade", alts["warm_grade"], tops["warm_grade"], 3.0),
        _switch("cool_grade", alts["cool_grade"], tops["cool_grade"], 2.0),
        _switch("cartoon", alts["cartoon"], tops["cartoon"], 1.0),  # third: over the 2 a cycle
        {**_switch("slow_motion", "nowhere", "x", 9.0), "recommendation_id": "rec-gone"},  # not routed
        {**_switch("cartoon", "x", "y", 0.5, auto=False), "recommendation_id": "rec-manual"},
    ]
    lake.overwrite(RECOMMENDATIONS, pl.DataFrame(recs, schema=RECOMMENDATION_SCHEMA))
    applier = defs.get_assets_def(["gold", "recommendation_applications"])

    def cycle():
        assert dg.materialize(
            [applier], resources=defs.resources, instance=driver.instance, selection=[applier.key]
        ).success

    cycle()
    outcomes = dict(lake.read(RECOMMENDATION_APPLICATIONS).select("recommendation_id", "outcome").iter_rows())
    assert outcomes == {
        "rec-warm_grade": "applied",
        "rec-cool_grade": "applied",
        "rec-cartoon": "deferred",
        "rec-gone": "refused",
    }
    effects = manifests.read()["effects"]
    assert effects["warm_grade"][0]["provider_id"] == alts["warm_grade"]
    assert effects["cool_grade"][0]["provider_id"] == alts["cool_grade"]
    assert {d["subject_id"]: d["admin"] for d in store.decisions("recommendation")} == {
        "rec-warm_grade": "auto",
        "rec-cool_grade": "auto",
    }

    with serve(create_app(settings)) as url, httpx.Client(base_url=url, headers=ADMIN) as c:
        listed = {r["recommendation_id"]: r for r in c.get("/v1/admin/recommendations").json()["items"]}
        warm = listed["rec-warm_grade"]
        assert warm["status"] == "approve" and warm["change_id"] and warm["rolled_back_by"] is None
        undo = c.post(f"/v1/admin/changes/{warm['change_id']}/rollback", json={"admin": "ana"})
        assert undo.status_code == 201 and undo.json()["before"] == alts["warm_grade"] and undo.json()["after"] is None
        assert manifests.read()["effects"]["warm_grade"][0]["provider_id"] == tops["warm_grade"]  # back, at once
        listed = {r["recommendation_id"]: r for r in c.get("/v1/admin/recommendations").json()["items"]}
        assert listed["rec-warm_grade"]["rolled_back_by"] == undo.json()["change_id"]

    cycle()  # the next cycle: the deferred one goes; the rolled-back one is not applied again
    outcomes = dict(lake.read(RECOMMENDATION_APPLICATIONS).select("recommendation_id", "outcome").iter_rows())
    assert manifests.read()["effects"]["cartoon"][0]["provider_id"] == alts["cartoon"]
    assert manifests.read()["effects"]["warm_grade"][0]["provider_id"] == tops["warm_grade"]
    assert "rec-manual" not in outcomes  # not auto-applicable: an admin decides


def test_an_approved_price_revision_is_the_price_in_force_and_rolls_back(world):
    settings, clients, _defs, _driver, _ = world
    store, lake, catalog = clients.store, clients.lake, clients.catalog
    listed = catalog.prices()["cartoon"]
    rec = {
        **_switch("cartoon", "x", "y", 1.0, auto=False),
        "recommendation_id": "rec-price",
        "type": "PRICE_ADJUSTMENT",
        "provider_id": None,
        "action": json.dumps({"effect_type": "cartoon", "price_tokens": listed + 2, "previous_price_tokens": listed}),
    }
    lake.overwrite(RECOMMENDATIONS, pl.DataFrame([rec], schema=RECOMMENDATION_SCHEMA))
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, headers=ADMIN) as c:
        r = c.post("/v1/admin/recommendations/rec-price", json={"decision": "approve", "admin": "ana"})
        assert r.status_code == 202, r.text
        assert effective_prices(catalog, store)["cartoon"] == listed + 2
        change = r.json()["applied"]["change_id"]
        assert c.post("/v1/admin/changes/" + change + "/rollback", json={}).status_code == 201
    assert effective_prices(catalog, store)["cartoon"] == listed


@pytest.fixture
def log_dir(tmp_path):
    """Warnings land in a directory of this test's own (the process's sink moves back after)."""
    logconfig.configure(tmp_path / "logs")
    yield tmp_path / "logs"
    logconfig.configure()


def test_a_failed_action_is_recorded_warned_about_and_not_retried(world, log_dir):
    _settings, clients, _defs, driver, _ = world
    lake = clients.lake
    # A user the store does not know: the notification violates the outbox's foreign key.
    _classify(
        lake,
        "TOKEN_DEPLETION_RISK",
        "ghost",
        severity="warning",
        user_id="u_ghost",
        numbers={"hours_to_exhaustion": 2.0, "token_burn_per_hour": 10.0},
    )
    assert [r.success for r in driver.step("bottleneck_action_sensor")] == [True]  # the run itself succeeds
    [row] = _actions(lake, "ghost")
    assert row["outcome"] == "failed" and "IntegrityError" in row["detail"]
    logged = [json.loads(x) for f in log_dir.glob("*.jsonl") for x in f.read_text().splitlines()]
    [warning] = [x for x in logged if x.get("event_type") == "automatic_action_failed"]
    assert warning["classification_id"] == "ghost" and warning["urgency"] == "high"
    assert warning["economic_impact_usd"] == 6.0 and warning["runbook"].endswith("#automatic_action_failed")
    assert driver.step("bottleneck_action_sensor") == []  # not retried


@pytest.mark.video
def test_local_tasks_of_a_run_share_the_concurrency_in_force(short_bikes, tmp_path):
    """M6's runner with the dispatch concurrency in force: at 1 slot the second task of a
    provider waits for the first (its queue wait covers the first's run); at 2 they overlap."""
    from assets.execution.runner import run_tasks
    from resources.providers.base import ProviderTask
    from resources.providers.client import ProviderRegistry

    providers = ProviderRegistry(path=str(DATA_DIR / "providers.yaml"))
    registry = providers.registry()

    def tasks(tag: str) -> list[ProviderTask]:
        return [
            ProviderTask(
                task_id=f"{tag}-{effect}",
                video_id="v",
                effect_type=effect,
                provider_id="ffmpeg-colortemp",
                input_path=str(short_bikes),
                output_path=str(tmp_path / f"{tag}-{effect}.mp4"),
                params={"strength": 0.6},
            )
            for effect in ("warm_grade", "cool_grade")
        ]

    serial = run_tasks(tasks("one"), providers.adapter, 2, registry.instance_type, {"ffmpeg-colortemp": 1})
    assert [r.status for r in serial] == ["succeeded", "succeeded"]
    first, second = sorted(serial, key=lambda r: r.queue_wait_ms)
    assert second.queue_wait_ms >= 0.9 * first.duration_ms  # waited for the one slot
    parallel = run_tasks(tasks("two"), providers.adapter, 2, registry.instance_type, {"ffmpeg-colortemp": 2})
    assert max(r.queue_wait_ms for r in parallel) < 0.5 * min(r.duration_ms for r in parallel)
