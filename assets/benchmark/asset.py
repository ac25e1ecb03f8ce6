"""The benchmark job: the reference suite (real sample videos × every effect type × every
provider that supports it, shadow ones included) → ``benchmark_reports`` (one row per run)
→ ``provider_effect_matrix`` (per provider × effect type, from the benchmark and from real
executions side by side)."""

import tempfile
from pathlib import Path

import dagster as dg
import polars as pl

from assets.batch.reference import cut_clip
from assets.execution.scored import run_and_score
from assets.ingest.proxy import make_proxy
from assets.lineage import reads
from economics.cost_model import cost_frame
from economics.matrix import provider_effect_matrix as matrix_of
from economics.revenue import provider_executions
from resources.catalog import Catalog
from resources.events import stable_id, utcnow
from resources.lake import Lake
from resources.providers.base import ProviderTask
from resources.providers.client import ProviderRegistry
from resources.samples import reference_videos
from resources.schemas import BENCHMARK_REPORTS, EXECUTION_COSTS, PROVIDER_EFFECT_MATRIX, QUALITY_SCORES
from resources.settings import Settings

BENCH = {"key_prefix": ["gold"], "group_name": "benchmark", "kinds": {"polars", "deltalake"}}


def _suite_proxies(suite: dict, workdir: Path, max_side: int) -> list[tuple[str, str]]:
    """Cut each reference video to the suite's ``max_seconds`` and make its proxy."""
    out = []
    for name, path in reference_videos(suite):
        cut = workdir / f"{name}.cut.mp4"
        cut_clip(path, cut, float(suite["max_seconds"]))
        proxy = workdir / f"{name}.mp4"
        make_proxy(str(cut), str(proxy), max_side=max_side)
        out.append((name, str(proxy)))
    return out


@dg.asset(**BENCH)
def benchmark_reports(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    providers: dg.ResourceParam[ProviderRegistry],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    """Run the reference suite on every non-disabled provider; one row per (video, provider,
    effect type) with status, quality, time, measured compute, cost and the margin the run
    would make at the effect's list price."""
    registry = providers.registry()
    effects = catalog.effects()
    now = utcnow()
    benchmark_id = stable_id("benchmark", registry.version, now.isoformat(), length=16)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        videos = _suite_proxies(catalog.reference_suite(), workdir, platform.proxy_max_side)
        tasks, meta = [], []
        for video, proxy in videos:
            for spec in registry.providers:
                if spec.mode == "disabled":
                    continue
                for effect_type in spec.effect_types:
                    task_id = stable_id(benchmark_id, video, spec.provider_id, effect_type, length=20)
                    tasks.append(
                        ProviderTask(
                            task_id=task_id,
                            video_id=f"benchmark:{video}",
                            effect_type=effect_type,
                            provider_id=spec.provider_id,
                            input_path=proxy,
                            output_path=str(workdir / f"{task_id}.mp4"),
                            params=dict(effects[effect_type].get("params", {})),
                            prompt="benchmark",
                        )
                    )
                    meta.append((video, spec.mode))
        context.log.info(f"benchmark {benchmark_id}: {len(tasks)} runs on {len(videos)} videos")
        runs = run_and_score(tasks, providers.adapter, platform.max_parallel_tasks, registry.instance_type)
        for run, (video, mode) in zip(runs, meta, strict=True):
            rows.append(
                {
                    **run,
                    "benchmark_id": benchmark_id,
                    "registry_version": registry.version,
                    "video": video,
                    "mode": mode,
                    "ran_at": now,
                }
            )
    # Margin at list price: a benchmark run is priced as if a user had been charged for it.
    costed = cost_frame(
        pl.DataFrame(rows, infer_schema_length=None), catalog.rate_card(), catalog.prices(), platform.token_usd_rate
    )
    lake.append(BENCHMARK_REPORTS, costed.select(BENCHMARK_REPORTS.schema.names()))
    failed = costed.filter(pl.col("status") != "succeeded")
    return dg.MaterializeResult(
        metadata={
            "benchmark_id": benchmark_id,
            "runs": costed.height,
            "failed": failed.height,
            "videos": ", ".join(v for v, _ in videos),
        }
    )


@dg.asset(deps=[benchmark_reports, *reads(EXECUTION_COSTS, QUALITY_SCORES)], **BENCH)
def provider_effect_matrix(lake: dg.ResourceParam[Lake], platform: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    """Quality, time, cost per run and margin per provider × effect type: from the latest
    benchmark (``source`` = benchmark), real executions (executions) and simulated ones
    (simulated), each its own rows."""
    now = utcnow()
    reports = lake.read(BENCHMARK_REPORTS)
    frames = []
    if not reports.is_empty():
        latest = reports.sort("ran_at").select(pl.col("benchmark_id").last()).item()
        bench = reports.filter(pl.col("benchmark_id") == latest).with_columns(
            cost_tokens=pl.col("cost_usd") / platform.token_usd_rate
        )
        frames.append(matrix_of(bench, "benchmark", now, latest))
    quality = lake.read(QUALITY_SCORES).select("task_id", "composite")
    # Cache hits ran no provider: the matrix measures providers.
    executions = provider_executions(lake.read(EXECUTION_COSTS)).join(quality, on="task_id", how="left")
    # Real and simulated executions are separate rows of the matrix: they never mix silently.
    for source, label in (("real", "executions"), ("simulated", "simulated")):
        rows = executions.filter(pl.col("source") == source)
        if not rows.is_empty():
            frames.append(matrix_of(rows, label, now))
    matrix = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=PROVIDER_EFFECT_MATRIX.schema)
    lake.overwrite(PROVIDER_EFFECT_MATRIX, matrix)
    return dg.MaterializeResult(metadata={"cells": matrix.height})
