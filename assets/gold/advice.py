"""Economics-job assets that judge and advise: how accurate cost estimates are, and what an
admin should change (recommendations)."""

from datetime import timedelta

import dagster as dg
import polars as pl

from economics.backtest import estimate_accuracy_backtest
from economics.recommendations import recommend
from resources.catalog import CatalogResource
from resources.events import utcnow
from resources.lake import LakeResource
from resources.manifest_store import ManifestStore
from resources.platform import PlatformConfig
from resources.schemas import (
    COST_ESTIMATE_ACCURACY, EXECUTION_COSTS, INGESTED_VIDEO, PROVIDER_OUTPUTS, QUALITY_SCORES,
    RECOMMENDATIONS,
)

# Recommendations rest on the last week: long enough for the rules' minimum sample sizes at
# real volumes, short enough that a fixed problem stops being recommended.
RECOMMENDATION_WINDOW = timedelta(days=7)

GOLD = {"key_prefix": ["gold"], "group_name": "economics", "kinds": {"polars", "deltalake"}}


@dg.asset(deps=[dg.AssetKey(["gold", "execution_costs"])], **GOLD)
def cost_estimate_accuracy(lake: LakeResource, catalog: CatalogResource) -> dg.MaterializeResult:
    """MAPE, p90 error and 80%-interval coverage of the pre-run cost (compute-seconds)
    estimator per provider × effect type, from a leave-one-video-out backtest."""
    proxies = lake.read(INGESTED_VIDEO).select(
        "video_id", width="proxy_width", height="proxy_height", frames="frame_count", fps="proxy_fps")
    executions = lake.read(PROVIDER_OUTPUTS).join(proxies, on="video_id", how="inner").sort("finished_at")
    accuracy = estimate_accuracy_backtest(executions, catalog.rate_card()).with_columns(computed_at=pl.lit(utcnow()))
    lake.overwrite(COST_ESTIMATE_ACCURACY, accuracy)
    n = int(accuracy["n"].sum() or 0)
    mape = float((accuracy["mape"] * accuracy["n"]).sum() / n) if n else None
    return dg.MaterializeResult(metadata={"estimates": n, "mape": round(mape, 4) if mape is not None else "n/a"})


@dg.asset(deps=[dg.AssetKey(["gold", "execution_costs"]), dg.AssetKey(["gold", "routing_manifest"])], **GOLD)
def recommendations(
    lake: LakeResource, catalog: CatalogResource, manifest_store: ManifestStore, platform: PlatformConfig,
) -> dg.MaterializeResult:
    """PROVIDER_SWITCH, PRICE_ADJUSTMENT, FLEET_OPTIMIZATION and WORKFLOW_TUNING from real
    executions, each with projected margin and quality impact, confidence and the executions
    it rests on. The table holds the latest cycle; admin decisions are kept apart."""
    now = utcnow()
    recs = recommend(
        lake.read(EXECUTION_COSTS, pl.col("finished_at") > now - RECOMMENDATION_WINDOW), lake.read(QUALITY_SCORES), manifest_store.read() or {"effects": {}},
        catalog.prices(), platform.token_usd_rate, now=now, rate_card=catalog.rate_card(),
    )
    lake.overwrite(RECOMMENDATIONS, recs)
    return dg.MaterializeResult(metadata={
        "recommendations": recs.height,
        **{t: int((recs["type"] == t).sum()) for t in recs["type"].unique().to_list()},
    })
