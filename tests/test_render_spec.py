"""Every provider output records how it was rendered (provider and version, adapter, the
filled filter graph / transform / ComfyUI graph and its hash, parameters, seeds, toolchain,
input and output hashes), and ``effectlake rerender`` re-runs that spec on real outputs of the
pipeline: bit-identical, or a VMAF when the stored bytes differ, and a non-zero exit only
when it cannot re-render."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import polars as pl
import pytest

from api.app import create_app
from assets.execution.rerender import RerenderFailed, rerender
from assets.execution.runner import run_tasks
from pipelines.definitions import build_definitions
from resources.ffmpeg import run_ffmpeg
from resources.hashing import file_sha256, json_sha256
from resources.lake import Lake
from resources.media import MediaStore
from resources.providers.base import ProviderTask
from resources.providers.client import ProviderRegistry
from resources.providers.comfyui import ComfyUIAdapter
from resources.schemas import GALLERY_REVISIONS, PROVIDER_OUTPUTS
from resources.settings import DATA_DIR, PROJECT_ROOT, Settings
from tests.api_users import ADMIN, new_user, upload
from tests.clips import one_clip_suite
from tests.harness import Driver
from tests.local_settings import local_settings
from tests.server import serve

REGISTRY = ProviderRegistry(path=str(DATA_DIR / "providers.yaml"))
# One adapter of each kind a spec describes: an ffmpeg graph, one with a generated LUT, OpenCV.
CASES = [
    ("ffmpeg-colortemp", "warm_grade", {"strength": 0.6}, "ffmpeg"),
    ("ffmpeg-lut3d", "cool_grade", {"strength": 0.5}, "ffmpeg"),
    ("opencv-curves", "warm_grade", {"strength": 0.6}, "opencv"),
]


def _tasks(clip: Path, out: Path, cases=CASES, suffix: str = "") -> list[ProviderTask]:
    return [
        ProviderTask(
            f"t-{provider}{suffix}",
            "v1",
            effect,
            provider,
            str(clip),
            str(out / f"{provider}{suffix}.mp4"),
            params=params,
            input_key="reference/clip.mp4",
        )
        for provider, effect, params, _ in cases
    ]


def test_every_local_adapter_records_how_it_rendered(short_carphone, tmp_path):
    registry = REGISTRY.registry()
    results = run_tasks(_tasks(short_carphone, tmp_path), REGISTRY.adapter, 2, registry.instance_type)
    for (provider, effect, params, kind), result in zip(CASES, results, strict=True):
        assert result.status == "succeeded"
        spec = result.render_spec
        assert (spec["provider_id"], spec["adapter"], spec["effect_type"], spec["params"]) == (
            provider,
            kind,
            effect,
            params,
        )
        assert spec["provider"] == registry.spec(provider).model_dump(mode="json")
        assert spec["provider_version"] == json_sha256(spec["provider"])[:12]
        assert spec["workflow"]["kind"] == kind and spec["workflow_hash"] == json_sha256(spec["workflow"])
        assert spec["input"] == {"key": "reference/clip.mp4", "sha256": file_sha256(short_carphone)}
        assert spec["output_sha256"] == file_sha256(result.output_path)
        assert spec["seeds"] == {}
        assert set(spec["toolchain"]) == {"ffmpeg", "opencv", "pyav", "numpy", "python", "cpu_count"}
        assert "unknown" not in spec["toolchain"].values()
    colortemp, lut3d, curves = (r.render_spec["workflow"] for r in results)
    # What ran, filled in: 6500 − 4000 × 0.6 = 4100 K; the LUT by its content; the transform's gammas.
    assert colortemp["filter_graph"].startswith("colortemperature=temperature=4100:")
    assert lut3d["lut"]["args"]["warmth"] == -0.5 and f"lut-{lut3d['lut']['sha256']}.cube" in lut3d["filter_graph"]
    assert curves["transform"] == "channel_curves" and curves["kwargs"]["b_gamma"] == pytest.approx(1.36)
    # Other parameters are another workflow; the same ones the same.
    other = run_tasks(
        _tasks(short_carphone, tmp_path, [("ffmpeg-colortemp", "warm_grade", {"strength": 0.3}, "ffmpeg")], "-b"),
        REGISTRY.adapter,
        1,
        registry.instance_type,
    )[0]
    assert other.render_spec["workflow_hash"] != results[0].render_spec["workflow_hash"]
    again = REGISTRY.adapter("ffmpeg-colortemp").recipe(_tasks(short_carphone, tmp_path)[0])
    assert json_sha256(again) == results[0].render_spec["workflow_hash"]
    # A task that cannot even start has no spec (its failure says why), and fails alone.
    missing = replace(_tasks(short_carphone, tmp_path)[0], input_path=str(tmp_path / "gone.mp4"))
    [failed] = run_tasks([missing], REGISTRY.adapter, 1, registry.instance_type)
    assert failed.status == "failed" and failed.render_spec is None


def test_a_comfyui_recipe_is_its_graph_with_the_seeds():
    template = json.loads((PROJECT_ROOT / "data/workflows/comfyui_cartoon.json").read_text())
    graph = dict(template.get("prompt", template))
    graph["99"] = {"class_type": "KSampler", "inputs": {"seed": "{{param.seed}}", "model": ["4", 0], "steps": 20}}
    doc = {"prompt": graph, "defaults": {**template.get("defaults", {}), "seed": 7}}
    adapter = ComfyUIAdapter("comfyui-test", "http://127.0.0.1:9", ["cartoon"], doc)
    task = ProviderTask("t", "v", "cartoon", "comfyui-test", "/in.mp4", "/out.mp4", params={"seed": 1234})
    recipe = adapter.recipe(task)  # no request: the graph is filled locally
    assert recipe["kind"] == "comfyui" and recipe["seeds"] == {"99.seed": 1234}
    assert recipe["graph_sha256"] == json_sha256(recipe["graph"])
    assert adapter.recipe(replace(task, params={"seed": 1234})) == recipe
    assert adapter.recipe(replace(task, params={"seed": 5}))["graph_sha256"] != recipe["graph_sha256"]
    assert adapter.provider["adapter"] == "comfyui"


# --- through the pipeline ---------------------------------------------------------------------


@pytest.fixture
def world(tmp_path, instance, warm_carphone):
    suite = one_clip_suite(tmp_path / "suite.yaml", "carphone", warm_carphone)
    settings = local_settings(
        tmp_path,
        EFFECTLAKE_REFERENCE_SUITE=str(suite),
    )
    app = create_app(settings)
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield settings, Driver(build_definitions(settings), instance), client, app.state.clients.store


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"LAKE_URI": settings.lake_uri, "MEDIA_URI": settings.media_uri, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "rerender", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=PROJECT_ROOT,
    )


@pytest.mark.slow
@pytest.mark.video
def test_outputs_of_a_real_job_rerender_and_its_publication_is_one_revision(world, warm_carphone, tmp_path):
    settings, driver, client, store = world
    user = new_user(client)
    vid = upload(client, user, warm_carphone).json()["video_id"]
    assert [r.success for r in driver.step("upload_sensor")] == [True]
    lake, media = Lake(uri=settings.lake_uri), MediaStore(uri=settings.media_uri)

    # M6 recorded a spec with every succeeded output, on the job's reference clip.
    outputs = lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == vid).filter(pl.col("status") == "succeeded")
    assert outputs.height >= 2 and outputs["render_spec"].null_count() == 0
    for row in outputs.iter_rows(named=True):
        spec = json.loads(row["render_spec"])
        assert spec["input"]["key"].startswith("reference/") and spec["provider_id"] == row["provider_id"]
        with media.local_file(row["output_key"]) as stored:
            assert spec["output_sha256"] == file_sha256(stored)
        # Re-rendered from the spec: the same bytes (same machine, same toolchain).
        report = rerender(lake, media, row["task_id"])
        assert report.identical and report.vmaf is None, report
        assert report.workflow_hash_matches and report.original_matches_spec and report.toolchain_changes == {}

    # The command, on one output: exit 0 and the report.
    first = outputs.row(0, named=True)
    done = _cli(settings, first["task_id"], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["identical"] is True
    assert "bit-identical" in _cli(settings, first["task_id"]).stdout

    # The stored output re-encoded (other bytes, nearly the same picture): not identical, and
    # the VMAF of the re-render against it says how close; still exit 0.
    with media.local_file(first["output_key"]) as stored:
        degraded = tmp_path / "degraded.mp4"
        run_ffmpeg(["-i", stored, "-c:v", "libx264", "-preset", "veryfast", "-crf", "38", str(degraded)])
    media.put_file(first["output_key"], str(degraded))
    differs = _cli(settings, first["task_id"], "--json")
    assert differs.returncode == 0, differs.stderr
    report = json.loads(differs.stdout)
    assert report["identical"] is False and report["original_matches_spec"] is False
    assert 20 < report["vmaf"]["vmaf_hmean"] < 99 and report["vmaf"]["frames"] >= 10
    assert "VMAF" in _cli(settings, first["task_id"]).stdout

    # Cannot re-render: an unknown output, or its input gone. Exit 1, and why.
    unknown = _cli(settings, "no-such-output")
    assert unknown.returncode == 1 and "no provider output" in unknown.stderr
    # Publish the job first (the gallery copies the reference clip before it disappears; the
    # intake run evaluated the video, so the completion sensor starts nothing).
    assert driver.step("completion_sensor") == []
    approval_id = client.get(f"/v1/videos/{vid}", headers=user["headers"]).json()["approval"]["approval_id"]
    decided = client.post(f"/v1/admin/approvals/{approval_id}", headers=ADMIN, json={"decision": "approve"})
    assert decided.status_code == 202
    driver.land()
    [request] = driver.tick("approval_sensor")
    assert driver.run("approval_sensor", request).success
    status = client.get(f"/v1/videos/{vid}", headers=user["headers"]).json()
    assert status["stage"] == "published" and status["gallery"]["pinned"] is True
    slug = status["gallery"]["slug"]
    effect = client.get(f"/v1/effects/{slug}").json()
    [revision] = store.revisions(slug)
    best = lake.read(PROVIDER_OUTPUTS, pl.col("task_id") == status["result"]["task_id"]).row(0, named=True)
    assert json.loads(revision["render_spec"]) == json.loads(best["render_spec"])
    assert effect["revision_id"] == revision["revision_id"] and revision["preview_key"].startswith("published/")
    assert effect["price_tokens"] == 2  # data/effects.yaml warm_grade
    assert client.get(effect["preview_url"].replace("http://testserver", "")).content[4:8] == b"ftyp"
    # The publish run again (a re-run of the video's publication): the same content, no new
    # revision, the pin untouched.
    assert driver.run("approval_sensor", request).success
    assert len(store.revisions(slug)) == 1 and len(store.pin_events(slug)) == 1
    again = lake.read(GALLERY_REVISIONS, pl.col("video_id") == vid).row(0, named=True)
    assert (again["revision_id"], again["new_revision"], again["pin_moved"]) == (revision["revision_id"], False, False)

    spec = json.loads(first["render_spec"])
    media.delete(spec["input"]["key"])
    gone = _cli(settings, first["task_id"])
    assert gone.returncode == 1 and "media missing" in gone.stderr
    with pytest.raises(RerenderFailed, match="media missing"):
        rerender(lake, media, first["task_id"])
