"""M8 gold assets of the economics job: execution costs → marginality windows → routing
manifest (published to the manifest store, every version kept in ``routing_manifests``).

Gold assets are unpartitioned and declare the silver tables as ``deps``: they scan whole
Delta tables through the lake resource rather than load dynamically partitioned inputs,
which the Delta IO manager cannot do for many partitions (DESIGN.md §3, dagster#12502).
"""


import dagster as dg
import polars as pl

from economics.cost_model import cost_frame
from economics.marginality import marginality_windows as windows_of
from economics.routing import build_manifest, manifest_rows
from resources.catalog import CatalogResource
from resources.events import utcnow
from resources.lake import LakeResource
from resources.manifest_store import ManifestStore
from resources.platform import PlatformConfig
from resources.providers.resource import ProviderRegistryResource
from resources.schemas import (
    EXECUTION_COSTS, EXECUTION_EVENTS, MARGINALITY_WINDOWS, QUALITY_SCORES, ROUTING_MANIFESTS,
)

GOLD = {"key_prefix": ["gold"], "group_name": "economics", "kinds": {"polars", "deltalake"}}

# Telemetry carried in the payload of TaskSucceeded / TaskFailed execution events.
TELEMETRY = pl.Struct({
    "status": pl.String, "duration_ms": pl.Int64, "compute_seconds": pl.Float64,
    "instance_type": pl.String, "partner_cost_usd": pl.Float64, "selection": pl.String,
    "source": pl.String,
})


def finished_executions(events: pl.LazyFrame) -> pl.DataFrame:
    """Terminal task events flattened to one row per task (the latest outcome wins)."""
    return (
        events.filter(pl.col("event_type").is_in(["TaskSucceeded", "TaskFailed"]))
        .with_columns(t=pl.col("payload").str.json_decode(TELEMETRY))
        .select(
            "task_id", "provider_id", "effect_type", video_id=pl.col("correlation_id"),
            finished_at=pl.col("occurred_at"),
            **{f: pl.col("t").struct.field(f) for f in TELEMETRY.to_schema()},
        )
        .with_columns(source=pl.col("source").fill_null("real"))
        .sort("finished_at").group_by("task_id").last()
        .collect()
    )


@dg.asset(deps=[dg.AssetKey(["silver", "provider_outputs"])], **GOLD)
def execution_costs(
    lake: LakeResource, catalog: CatalogResource, platform: PlatformConfig,
) -> dg.MaterializeResult:
    """Cost per execution (compute seconds × instance rate + partner cost), tokens charged
    from the effect catalog, margin; one row per finished task."""
    executions = finished_executions(lake.scan(EXECUTION_EVENTS))
    costs = cost_frame(executions, catalog.rate_card(), catalog.prices(), platform.token_usd_rate)
    lake.overwrite(EXECUTION_COSTS, costs)
    return dg.MaterializeResult(metadata={
        "executions": costs.height,
        "cost_usd": round(float(costs["cost_usd"].sum() or 0), 6),
        "revenue_usd": round(float(costs["revenue_usd"].sum() or 0), 4),
    })


@dg.asset(deps=[execution_costs], **GOLD)
def marginality_windows(lake: LakeResource) -> dg.MaterializeResult:
    """Margin per provider × effect type over the 1h / 24h / 7d windows ending now."""
    windows = windows_of(lake.read(EXECUTION_COSTS), utcnow())
    lake.overwrite(MARGINALITY_WINDOWS, windows)
    day = windows.filter(pl.col("window") == "24h")
    charged = int(day["tokens_charged"].sum() or 0)
    margin = (charged - float(day["cost_tokens"].sum() or 0)) / charged if charged else None
    return dg.MaterializeResult(metadata={"rows": windows.height,
                                          "margin_24h": round(margin, 6) if margin is not None else "n/a"})


def provider_stats(costs: pl.DataFrame, quality: pl.DataFrame) -> pl.DataFrame:
    """Per (provider, effect type): executions, success rate, mean cost, duration (of
    successes) and mean composite quality (of scored outputs)."""
    q = (quality.filter(pl.col("status") == "scored")
         .group_by("provider_id", "effect_type").agg(mean_quality=pl.col("composite").mean()))
    ok = pl.col("status") == "succeeded"
    return (
        costs.group_by("provider_id", "effect_type")
        .agg(
            executions=pl.len(), success_rate=ok.mean(),
            mean_cost_usd=pl.col("cost_usd").filter(ok).mean(),
            mean_duration_ms=pl.col("duration_ms").filter(ok).mean(),
        )
        .join(q, on=["provider_id", "effect_type"], how="left")
    )


@dg.asset(deps=[execution_costs, dg.AssetKey(["silver", "quality_scores"])], **GOLD)
def routing_manifest(
    lake: LakeResource, providers: ProviderRegistryResource, manifest_store: ManifestStore,
    platform: PlatformConfig,
) -> dg.MaterializeResult:
    """Rank every active provider per effect type from real executions and quality, publish
    it as the current manifest and keep the version in ``routing_manifests``."""
    stats = provider_stats(lake.read(EXECUTION_COSTS), lake.read(QUALITY_SCORES))
    manifest = build_manifest(stats, providers.registry().active_by_effect(), utcnow(), platform.priority)
    manifest_store.publish(manifest)
    lake.append(ROUTING_MANIFESTS, manifest_rows(manifest))
    return dg.MaterializeResult(metadata={
        "version": manifest["version"],
        **{f"top:{e}": entries[0]["provider_id"] for e, entries in manifest["effects"].items() if entries},
    })
