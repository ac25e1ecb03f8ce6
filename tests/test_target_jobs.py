"""The job builds the effect its example shows (issue 13 item 0) and its failure paths (item 6),
on real video through real sensors and runs: an example showing nothing producible is told so
and charged nothing; a description adds its effect; an analysis that keeps failing is
``analysis_failed`` with a notification; a template that cannot render falls back to the
generic one; an output whose scoring fails is kept, ranked after measured ones; the Gemini path
(through the fake server) records each field's source and the job's cost lines."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.prompts.templates import render_prompts
from economics.best import rank_candidates
from pipelines.definitions import build_definitions
from resources.catalog import Catalog
from resources.lake import Lake
from resources.media import MediaStore
from resources.schemas import (
    CONTENT_ANALYSIS,
    INGESTED_VIDEO,
    LLM_COSTS,
    NOTIFICATIONS,
    PIPELINE_EVENTS,
    PROMPT_VARIANTS,
)
from resources.services.uploads import IncomingUpload, receive_upload
from resources.store.client import Store
from tests.clips import h264_clip
from tests.fakes.gemini_server import FakeGemini
from tests.harness import Driver

KEY = "test-key"


def _events(lake: Lake, video_id: str) -> list[str]:
    return lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == video_id).sort("occurred_at")["event_type"].to_list()


def _upload(settings, path, description: str | None = None) -> tuple[str, str]:
    """An upload of ``path`` by a new user through the intake service (as the API does)."""
    store = Store(settings.database_url, upgrade=True)
    ws = store.create_workspace("w")
    user, _key = store.create_user(ws["workspace_id"], role="user", welcome_tokens=50)
    with open(path, "rb") as fh:
        accepted = receive_upload(
            store,
            MediaStore(uri=settings.media_uri),
            IncomingUpload(fh, path.name, "video/mp4", user["user_id"], ws["workspace_id"], None, description),
            max_upload_bytes=settings.max_upload_bytes,
        )
    return accepted.video_id, user["user_id"]


def _intake(driver: Driver, video_id: str, *assets: str) -> dg.ExecuteInProcessResult:
    """Run the intake job for ``video_id`` (only ``assets``, keyed silver/<name>, when given)."""
    [_request] = [r for r in driver.tick("upload_sensor") if r.partition_key == video_id]
    job = driver.defs.resolve_job_def("intake_job")
    selection = [dg.AssetKey(["silver", a]) for a in assets] or None
    return job.execute_in_process(
        partition_key=video_id, instance=driver.instance, asset_selection=selection, raise_on_error=False
    )


@pytest.mark.slow
@pytest.mark.video
def test_an_example_showing_nothing_producible_is_told_so_and_charged_nothing(settings, instance, short_bikes):
    driver = Driver(build_definitions(settings), instance)
    vid, user_id = _upload(settings, short_bikes)
    assert _intake(driver, vid).success
    lake = Lake(uri=settings.lake_uri)
    assert lake.read(CONTENT_ANALYSIS, pl.col("video_id") == vid)["target_effect_types"][0].to_list() == []
    types = _events(lake, vid)
    assert types[-2:] == ["NoTargetEffect", "UserNotified"] and "TestBatchDispatched" not in types
    store = Store(settings.database_url)
    assert store.balance(user_id)["spent"] == 0 and store.balance(user_id)["reserved"] == 0
    driver.land()
    notes = lake.read(NOTIFICATIONS, pl.col("correlation_id") == vid)
    assert notes["kind"].to_list() == ["no_target_effect"] and "Nothing was charged" in notes["body"][0]


@pytest.mark.slow
@pytest.mark.video
def test_a_description_makes_cartoon_a_target(settings, instance, short_bikes):
    driver = Driver(build_definitions(settings), instance)
    vid, _ = _upload(settings, short_bikes, "make it look like a cartoon")
    assert _intake(driver, vid, "ingested_video", "content_analysis", "prompt_variants").success
    lake = Lake(uri=settings.lake_uri)
    row = lake.read(CONTENT_ANALYSIS, pl.col("video_id") == vid).row(0, named=True)
    assert row["description"] == "make it look like a cartoon"
    assert row["target_effect_types"] == ["cartoon"]
    assert json.loads(row["target_reasons"]) == {"cartoon": ["description:cartoon"]}
    assert row["analysis_source"] == "local" and row["fallback_reason"] == "GOOGLE_API_KEY is not set"
    assert lake.read(PROMPT_VARIANTS, pl.col("video_id") == vid)["effect_type"].to_list() == ["cartoon"]


@pytest.mark.slow
@pytest.mark.video
def test_an_analysis_failing_three_times_is_analysis_failed_and_the_user_is_told(settings, instance, short_bikes):
    driver = Driver(build_definitions(settings), instance)
    vid, user_id = _upload(settings, short_bikes)
    assert _intake(driver, vid, "ingested_video").success
    lake, media = Lake(uri=settings.lake_uri), MediaStore(uri=settings.media_uri)
    proxy_key = lake.read(INGESTED_VIDEO, pl.col("video_id") == vid)["proxy_key"][0]
    broken = short_bikes.parent / f"broken-{vid}.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 4000)  # the proxy's bytes lost
    media.put_file(proxy_key, str(broken))
    job = driver.defs.resolve_job_def("intake_job")
    result = job.execute_in_process(
        partition_key=vid,
        instance=instance,
        asset_selection=[dg.AssetKey(["silver", "content_analysis"]), dg.AssetKey(["silver", "prompt_variants"])],
        raise_on_error=False,
    )
    assert result.success  # the video stops here; the run does not fail
    events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == vid).sort("occurred_at")
    failed = events.filter(pl.col("event_type") == "AnalysisFailed")
    assert json.loads(failed["payload"][0])["attempts"] == 3
    assert events["event_type"].to_list()[-2:] == ["AnalysisFailed", "UserNotified"]
    assert lake.read(CONTENT_ANALYSIS, pl.col("video_id") == vid).is_empty()
    assert Store(settings.database_url).balance(user_id)["spent"] == 0
    driver.land()
    assert lake.read(NOTIFICATIONS, pl.col("correlation_id") == vid)["kind"].to_list() == ["analysis_failed"]


def test_a_template_that_cannot_render_falls_back_to_the_generic_one():
    catalog = Catalog(data_dir=str(Path(__file__).resolve().parents[1] / "data"))
    templates = catalog.prompt_templates()
    bad = {"id": "w", "version": 9, "text": "{nope}"}
    broken = {**templates, "templates": {**templates["templates"], "warm_grade": bad}}
    analysis = {
        "target_effect_types": ["warm_grade", "cartoon"],
        "target_params": json.dumps({"warm_grade": {"strength": 0.9}}),
        "dominant_style": "warm",
        "motion_class": "low",
        "scene_count": 1,
    }
    rows = render_prompts("v1", analysis, catalog.effects(), broken)
    warm, cartoon = rows
    assert (warm["template_id"], cartoon["template_id"]) == ("generic", "cartoon")
    assert "no value for 'nope'" in warm["template_error"] and cartoon["template_error"] is None
    assert '"strength": 0.9' in warm["prompt"] and json.loads(warm["params"]) == {"strength": 0.9}


def test_an_output_whose_scoring_failed_is_usable_but_ranked_after_measured_ones():
    rows = pl.DataFrame(
        {
            "task_id": ["scored", "failed", "shadow", "missing"],
            "effect_type": ["warm_grade"] * 4,
            "status": ["scored", "unknown", "unknown", "unknown"],
            "gate_passed": [True, False, False, False],
            "composite": [0.2, None, None, None],
            "confidence": [1.0, 0.0, 0.0, 0.0],
            "quality_error": [None, "ValueError: boom", "ValueError: boom", None],
            "output_key": ["a", "b", "c", None],
            "selection": ["ranked", "ranked", "shadow", "ranked"],
            # The failed one is far cheaper and faster: it still ranks after the measured one.
            "cost_usd": [1.0, 0.001, 0.001, 0.001],
            "duration_ms": [10_000, 10, 10, 10],
        }
    )
    ranked = rank_candidates(rows, "balanced")
    assert ranked["task_id"].to_list() == ["scored", "failed"]
    alone = rank_candidates(rows.filter(pl.col("task_id") != "scored"), "balanced")
    assert alone["task_id"].to_list() == ["failed"]  # still deliverable when nothing was measured


@pytest.mark.slow
@pytest.mark.video
def test_the_gemini_path_records_field_sources_and_cost_lines(settings, instance, short_bikes, tmp_path):
    warm = h264_clip(short_bikes, tmp_path / "warm.mp4", "2", "-vf", "colortemperature=temperature=3500")
    with FakeGemini(api_key=KEY) as fake:
        gemini_settings = settings.model_copy(
            update={"google_api_key": KEY, "gemini_base_url": fake.base_url, "gemini_cache_dir": str(tmp_path / "gc")}
        )
        driver = Driver(build_definitions(gemini_settings), instance)
        vid, _ = _upload(gemini_settings, warm, "warm please")
        assert _intake(driver, vid, "ingested_video", "content_analysis", "prompt_variants").success
    assert not fake.crashes
    lake = Lake(uri=settings.lake_uri)
    row = lake.read(CONTENT_ANALYSIS, pl.col("video_id") == vid).row(0, named=True)
    sources = json.loads(row["field_sources"])
    assert row["analysis_source"] == "gemini" and row["fallback_reason"] is None
    assert row["prompt_version"] == "content-analysis@v2" and row["gemini_model"] == settings.gemini_model
    assert sources["dominant_style"] == "gemini" and sources["motion_level"] == "local"
    assert sources["color_temperature"] == "local" and row["summary"]
    # The example shows a warm grade and asks for one: it stays a target whatever Gemini adds.
    assert "warm_grade" in row["target_effect_types"]
    variants = lake.read(PROMPT_VARIANTS, pl.col("video_id") == vid)
    assert set(variants["prompt_source"]) == {"gemini"}
    costs = lake.read(LLM_COSTS, pl.col("correlation_id") == vid)
    assert costs.filter(pl.col("stage") == "M2")["operation"].to_list() == ["analyze_video"]
    assert costs.filter(pl.col("stage") == "M4").height == variants.height
    assert set(costs["kind"]) == {"llm"} and set(costs["provider"]) == {"gemini"}
    assert (costs["usd"] > 0).all() and (costs["prompt_tokens"] > 0).all()
