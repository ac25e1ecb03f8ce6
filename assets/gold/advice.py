"""Economics-job assets that judge and advise: how accurate cost estimates are, and what an
admin should change (recommendations)."""

from datetime import timedelta

import dagster as dg
import polars as pl

from assets.lineage import reads
from economics.backtest import estimate_accuracy_backtest
from economics.ids import stable_id
from economics.recommendations import Policy, recommend
from resources.catalog import Catalog
from resources.events import utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.providers.client import ProviderRegistry
from resources.schemas import (
    BENCHMARK_REPORTS,
    COST_ESTIMATE_ACCURACY,
    EXECUTION_COSTS,
    INGESTED_VIDEO,
    PROVIDER_OUTPUTS,
    QUALITY_SCORES,
    RECOMMENDATION_APPLICATIONS,
    RECOMMENDATIONS,
    ROUTING_MANIFESTS,
)
from resources.services.recommendations import auto_apply
from resources.services.runtime import effective_prices
from resources.settings import Settings
from resources.store.client import Store

# Recommendations rest on the last week: long enough for the rules' minimum sample sizes at
# real volumes, short enough that a fixed problem stops being recommended.
RECOMMENDATION_WINDOW = timedelta(days=7)

GOLD = {"key_prefix": ["gold"], "group_name": "economics", "kinds": {"polars", "deltalake"}}
_GROUP = {"group_name": "economics", "kinds": {"polars", "deltalake"}}


@dg.asset(deps=reads(INGESTED_VIDEO, PROVIDER_OUTPUTS), **GOLD)
def cost_estimate_accuracy(lake: dg.ResourceParam[Lake], catalog: dg.ResourceParam[Catalog]) -> dg.MaterializeResult:
    """MAPE, p90 error and 80%-interval coverage of the pre-run cost (compute-seconds)
    estimator per provider × effect type, from a leave-one-video-out backtest."""
    proxies = lake.read(INGESTED_VIDEO).select(
        "video_id", width="proxy_width", height="proxy_height", frames="frame_count", fps="proxy_fps"
    )
    executions = lake.read(PROVIDER_OUTPUTS).join(proxies, on="video_id", how="inner").sort("finished_at")
    accuracy = estimate_accuracy_backtest(executions, catalog.rate_card()).with_columns(computed_at=pl.lit(utcnow()))
    lake.overwrite(COST_ESTIMATE_ACCURACY, accuracy)
    n = int(accuracy["n"].sum() or 0)
    mape = float((accuracy["mape"] * accuracy["n"]).sum() / n) if n else None
    return dg.MaterializeResult(metadata={"estimates": n, "mape": round(mape, 4) if mape is not None else "n/a"})


def latest_benchmark_as_executions(reports: pl.DataFrame, token_usd_rate: float) -> pl.DataFrame:
    """The latest benchmark's runs in ``execution_costs`` shape (with ``composite`` for
    quality). Benchmark runs are real executions on real sample video, so they count as
    real evidence; each (provider, effect) cell has one run per reference video."""
    if reports.is_empty():
        return reports
    latest = reports.sort("ran_at").select(pl.col("benchmark_id").last()).item()
    return reports.filter(pl.col("benchmark_id") == latest).with_columns(
        task_id=pl.concat_str("benchmark_id", "video", "provider_id", "effect_type", separator=":"),
        cost_tokens=pl.col("cost_usd") / token_usd_rate,
        finished_at=pl.col("ran_at"),
        selection=pl.lit("ranked"),
        source=pl.lit("real"),
    )


# The routing manifest is read from the manifest store, where routing_manifests publishes it.
@dg.asset(deps=reads(EXECUTION_COSTS, ROUTING_MANIFESTS, BENCHMARK_REPORTS, QUALITY_SCORES), **GOLD)
def recommendations(
    lake: dg.ResourceParam[Lake],
    catalog: dg.ResourceParam[Catalog],
    manifest_store: dg.ResourceParam[ManifestStore],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> dg.MaterializeResult:
    """PROVIDER_SWITCH, PRICE_ADJUSTMENT, FLEET_OPTIMIZATION and WORKFLOW_TUNING from the last
    week of real executions and from the latest benchmark, each with projected margin and
    quality impact, confidence and the executions it rests on. When both sources recommend
    the same action, the one from user traffic stands. The table holds the latest cycle;
    admin decisions are kept apart."""
    now = utcnow()
    manifest = manifest_store.read() or {"effects": {}}
    args = {
        "price_tokens": effective_prices(catalog, store),  # a revised price in force is the one to judge
        "token_usd_rate": platform.token_usd_rate,
        "now": now,
        "rate_card": catalog.rate_card(),
    }
    frames = [
        recommend(
            lake.read(EXECUTION_COSTS, pl.col("finished_at") > now - RECOMMENDATION_WINDOW),
            lake.read(QUALITY_SCORES),
            manifest,
            **args,
        )
    ]
    bench = latest_benchmark_as_executions(lake.read(BENCHMARK_REPORTS), platform.token_usd_rate)
    if not bench.is_empty():
        quality = bench.filter(pl.col("composite").is_not_null()).select(
            "provider_id", "effect_type", "composite", "artifacts", status=pl.lit("scored")
        )
        # One run per reference video per cell: the evidence threshold is the suite size, and
        # the rules' n-based confidence stays correspondingly low.
        policy = Policy(min_executions=bench["video"].n_unique())
        frames.append(recommend(bench, quality, manifest, policy=policy, **args))
    recs = pl.concat(frames, how="vertical_relaxed").unique("recommendation_id", keep="first", maintain_order=True)
    lake.overwrite(RECOMMENDATIONS, recs)
    return dg.MaterializeResult(
        metadata={
            "recommendations": recs.height,
            **{t: int((recs["type"] == t).sum()) for t in recs["type"].unique().to_list()},
        }
    )


# Reads the recommendations and their decisions in the store, the runtime parameters, and the
# published manifest (a pin is published at once); writes the store's parameter changes.
@dg.asset(key=["gold", "recommendation_applications"], deps=reads(RECOMMENDATIONS, ROUTING_MANIFESTS), **_GROUP)
def recommendation_applications(
    lake: dg.ResourceParam[Lake],
    store: dg.ResourceParam[Store],
    manifest_store: dg.ResourceParam[ManifestStore],
    catalog: dg.ResourceParam[Catalog],
    providers: dg.ResourceParam[ProviderRegistry],
    platform: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    """Apply this cycle's ``auto_applicable`` recommendations unattended, within the
    guardrails (``EFFECTLAKE_AUTO_APPLY_PER_CYCLE`` per cycle, numeric changes within
    ``EFFECTLAKE_AUTO_APPLY_MAX_STEP``, never one applied before), each recorded in the store's
    audit trail and approved by ``auto``; what was decided about each is appended here."""
    now = utcnow()
    rows = auto_apply(
        lake,
        store,
        manifest_store,
        catalog,
        {p.provider_id: p.concurrency for p in providers.registry().providers},
        platform.auto_apply_per_cycle,
        platform.auto_apply_max_step,
        now,
    )
    frame = pl.DataFrame(
        [{**r, "application_id": stable_id("rec_application", r["recommendation_id"], r["outcome"])} for r in rows],
        schema=RECOMMENDATION_APPLICATIONS.schema,
    )
    lake.append(RECOMMENDATION_APPLICATIONS, frame)
    return dg.MaterializeResult(
        metadata={o: sum(r["outcome"] == o for r in rows) for o in ("applied", "deferred", "refused")}
    )
