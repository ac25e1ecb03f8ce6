"""A shadow provider on ComfyUI (the real client, against a test double that speaks
ComfyUI's recorded HTTP protocol): it gets a copy of every cartoon task, which is evaluated
and costed but never charged and never shown as the result."""

import json
import shutil
import time

import httpx
import polars as pl
import pytest
import yaml

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import BEST_RESULT, LEDGER_ENTRIES, PROVIDER_OUTPUTS, QUALITY_SCORES
from resources.settings import DATA_DIR
from tests.api_users import new_user_at
from tests.fakes.comfyui_server import FakeComfyUI
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]


def _registry_with_shadow_comfyui(tmp_path, base_url: str) -> str:
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    for p in doc["providers"]:
        if p["provider_id"] == "comfyui-gpu":
            p.update(mode="shadow", base_url=base_url)
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_shadow_comfyui_copy_is_costed_never_charged_never_chosen(settings, instance, short_bikes, tmp_path):
    with FakeComfyUI(str(tmp_path / "comfy")) as comfy:
        settings = settings.model_copy(
            update={"providers_path": _registry_with_shadow_comfyui(tmp_path, comfy.base_url)}
        )
        driver = Driver(build_definitions(settings), instance)
        with serve(create_app(settings)) as base:
            headers = new_user_at(base)["headers"]
            r = httpx.post(
                f"{base}/v1/uploads",
                headers=headers,
                files={"file": ("bikes.mp4", short_bikes.read_bytes(), "video/mp4")},
                data={"description": "make it look like a cartoon"},  # the cartoon job the shadow copies
            )
            vid = r.json()["video_id"]
            assert all(run.success for run in driver.step("upload_sensor"))
            # The GPU copy runs on its own: the remote task sensor follows it and collects it.
            deadline, collected = time.monotonic() + 120, []
            while not collected and time.monotonic() < deadline:
                collected = driver.step("remote_task_sensor")
                time.sleep(0.2)
            assert [run.success for run in collected] == [True]
            assert all(run.success for run in driver.step("completion_sensor"))

    lake = Lake(uri=settings.lake_uri)
    outputs = lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == vid)
    shadow = outputs.filter(pl.col("provider_id") == "comfyui-gpu").row(0, named=True)
    assert (shadow["selection"], shadow["status"], shadow["instance_type"]) == ("shadow", "succeeded", "gpu-l4")
    assert shadow["compute_seconds"] > 0  # execution_start → execution_success, from the server
    # Collected from the server, it still records how it was rendered: the ComfyUI graph.
    spec = json.loads(shadow["render_spec"])
    assert spec["adapter"] == "comfyui" and spec["workflow"]["kind"] == "comfyui"
    assert spec["input"]["key"] and spec["output_sha256"]
    scores = lake.read(QUALITY_SCORES, pl.col("task_id") == shadow["task_id"]).row(0, named=True)
    assert scores["status"] == "scored" and scores["cost_usd"] > 0 and scores["tokens_charged"] == 0
    assert lake.read(LEDGER_ENTRIES, pl.col("task_id") == shadow["task_id"]).is_empty()
    assert lake.read(BEST_RESULT, pl.col("video_id") == vid)["task_id"][0] != shadow["task_id"]
