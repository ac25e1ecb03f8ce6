"""The benchmark job on a one-video reference suite: every non-disabled provider × effect
type runs for real, lands in benchmark_reports, and the matrix aggregates it."""

from datetime import UTC, datetime

import polars as pl
import pytest

from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.providers.client import ProviderRegistry
from resources.schemas import BENCHMARK_REPORTS, PROVIDER_EFFECT_MATRIX, RECOMMENDATIONS
from tests.clips import one_clip_suite
from tests.harness import Driver

pytestmark = [pytest.mark.slow, pytest.mark.video]


def test_benchmark_covers_every_provider_and_effect(settings, instance, short_carphone, tmp_path):
    suite = one_clip_suite(tmp_path / "suite.yaml", "carphone", short_carphone)
    settings = settings.model_copy(update={"reference_suite_path": str(suite)})
    defs = build_definitions(settings)
    driver = Driver(defs, instance)
    assert driver.tick("provider_change_sensor") == []  # no benchmark yet: no flood at start-up
    assert defs.resolve_job_def("benchmark_job").execute_in_process(instance=instance).success

    lake = Lake(uri=settings.lake_uri)
    reports = lake.read(BENCHMARK_REPORTS)
    registry = ProviderRegistry(path=settings.providers_path).registry()
    expected = {(p.provider_id, e) for p in registry.providers if p.mode != "disabled" for e in p.effect_types}
    assert set(zip(reports["provider_id"], reports["effect_type"], strict=True)) == expected
    assert (reports["status"] == "succeeded").all()
    assert (reports["cost_usd"] > 0).all() and reports["composite"].is_not_null().all()
    matrix = lake.read(PROVIDER_EFFECT_MATRIX).filter(pl.col("source") == "benchmark")
    assert matrix.height == len(expected) and (matrix["runs"] == 1).all()
    # optical-flow interpolation: more compute than frame duplication on the same clip
    cost = dict(zip(matrix["provider_id"], matrix["mean_cost_usd"], strict=True))
    assert cost["opencv-slowmo-flow"] > cost["ffmpeg-slowmo-dup"]
    assert driver.tick("provider_change_sensor") == []  # same registry version: nothing to do


def test_benchmark_evidence_reaches_recommendations(settings, instance):
    # A benchmark where ffmpeg-posterize matches opencv-cartoon's quality at 40% of its cost,
    # while the manifest (no user traffic yet) ranks opencv-cartoon first: a switch is due.
    lake = Lake(uri=settings.lake_uri)
    now = datetime.now(UTC)
    rows = [
        {
            "benchmark_id": "b1",
            "registry_version": "r",
            "video": f"v{i}",
            "provider_id": p,
            "effect_type": "cartoon",
            "mode": "active",
            "status": "succeeded",
            "composite": 0.8,
            "fidelity": 0.8,
            "style_adherence": 0.9,
            "artifacts": 0.05,
            "gate_passed": True,
            "duration_ms": 2000,
            "compute_seconds": 2.0,
            "instance_type": "cpu-2c",
            "cost_usd": cost,
            "tokens_charged": 4,
            "margin": 0.9,
            "ran_at": now,
        }
        for i in range(4)
        for p, cost in (("opencv-cartoon", 0.0010), ("ffmpeg-posterize", 0.0004))
    ]
    lake.append(BENCHMARK_REPORTS, pl.DataFrame(rows))
    assert build_definitions(settings).resolve_job_def("economics_job").execute_in_process(instance=instance).success
    recs = lake.read(RECOMMENDATIONS).filter(pl.col("type") == "PROVIDER_SWITCH")
    # With no real executions the adaptive manifest ranks cartoon's providers by Thompson draws
    # on their priors: a switch is recommended when the dearer one came first.
    [top] = [e for e in ManifestStore(uri=settings.manifest_uri).read()["effects"]["cartoon"] if e["rank"] == 1]
    if top["provider_id"] == "opencv-cartoon":
        switch = recs.filter(pl.col("effect_type") == "cartoon").row(0, named=True)
        assert switch["provider_id"] == "ffmpeg-posterize" or "ffmpeg-posterize" in switch["action"]
        assert switch["based_on_executions"] >= 4 and switch["projected_margin_impact_usd"] >= 0
    else:
        assert recs.filter(pl.col("effect_type") == "cartoon").is_empty()  # already on the cheaper one
