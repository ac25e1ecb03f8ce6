"""The A/B test asset: run one requested experiment (a video × several providers) and keep
every output's quality, time and cost side by side in ``ab_results``."""

import json
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl

from assets.execution.scored import run_and_score
from assets.lineage import reads
from economics.cost_model import cost_frame
from economics.routing import ab_assignments
from resources.catalog import Catalog
from resources.events import utcnow
from resources.lake import Lake
from resources.media import MediaStore
from resources.providers.base import ProviderTask
from resources.providers.client import ProviderRegistry
from resources.schemas import AB_REQUESTS, AB_RESULTS, INGESTED_VIDEO
from resources.settings import Settings


class ABConfig(dg.Config):
    """Which experiment to run (set by the A/B sensor's run request)."""

    experiment_id: str


@dg.asset(
    key_prefix=["gold"], group_name="ab_testing", kinds={"polars", "deltalake"}, deps=reads(AB_REQUESTS, INGESTED_VIDEO)
)
def ab_results(
    config: ABConfig,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    providers: dg.ResourceParam[ProviderRegistry],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    """Every provider of the experiment on the video's proxy: status, quality vector, time,
    measured compute and cost. A/B runs are the business's own: costed, never charged."""
    req = lake.read(AB_REQUESTS, pl.col("experiment_id") == config.experiment_id).row(0, named=True)
    video = lake.read(INGESTED_VIDEO, pl.col("video_id") == req["video_id"]).row(0, named=True)
    params = dict(catalog.effects()[req["effect_type"]].get("params", {}))
    registry = providers.registry()
    assignments = ab_assignments(
        req["providers"], [req["video_id"]], req["effect_type"], experiment=config.experiment_id
    )
    # Outputs go to a scratch folder (a local media store's proxy is the stored file itself).
    with media.local_file(video["proxy_key"]) as proxy, tempfile.TemporaryDirectory() as workdir:
        tasks = [
            ProviderTask(
                task_id=a["task_id"],
                video_id=req["video_id"],
                effect_type=req["effect_type"],
                provider_id=a["provider_id"],
                input_path=proxy,
                output_path=str(Path(workdir) / f"{a['task_id']}.mp4"),
                params=params,
                prompt="ab test",
            )
            for a in assignments
        ]
        runs = run_and_score(tasks, providers.adapter, platform.max_parallel_tasks, registry.instance_type)
        for run in runs:
            key = f"ab/{config.experiment_id}/{run['provider_id']}.mp4"
            if run["status"] == "succeeded":
                media.put_file(key, run["output_path"])
            run["output_key"] = key if run["status"] == "succeeded" else None
    costed = cost_frame(
        pl.DataFrame(runs, infer_schema_length=None).with_columns(selection=pl.lit("ab")),
        catalog.rate_card(),
        catalog.prices(),
        platform.token_usd_rate,
    )
    rows = costed.with_columns(experiment_id=pl.lit(config.experiment_id), ran_at=pl.lit(utcnow()))
    lake.upsert(AB_RESULTS, rows.select(AB_RESULTS.schema.names()))
    return dg.MaterializeResult(
        metadata={
            "experiment_id": config.experiment_id,
            "results": json.dumps({r["provider_id"]: r["composite"] for r in runs}),
        }
    )
