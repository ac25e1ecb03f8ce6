"""M8 gold assets of the economics job: execution costs → marginality windows, job margins →
routing manifest (published to the manifest store, every version kept in ``routing_manifests``,
its off-policy estimates in ``routing_estimates``).

Revenue follows one definition (``economics.revenue``, docs/architecture.md "Economics"): a
job (one video) is charged once; its net charge is revenue of the task it delivered; every
task it ran is its cost.

Gold assets are unpartitioned and declare the tables they read as ``deps``: they scan whole
Delta tables through the lake resource rather than load dynamically partitioned inputs,
which the Delta IO manager cannot do for many partitions (docs/architecture.md, "Known pitfalls", dagster#12502).
"""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from assets.costing import task_costs
from assets.lineage import reads
from assets.registry.asset import breaker_states, unhealthy_providers
from economics.bandit import BanditConfig, adaptive_manifest, decayed_stats, newest_per_effect, observations
from economics.margin import margin as margin_of
from economics.marginality import WINDOWS
from economics.marginality import marginality_windows as windows_of
from economics.off_policy import change_estimates, estimate_rows, logged_decisions
from economics.revenue import (
    CACHE_SELECTION,
    cache_hit_costs,
    cache_savings,
    job_charges,
    provider_executions,
    recognise,
    run_deliveries,
)
from economics.revenue import job_margins as job_margins_of
from economics.routing import manifest_rows
from economics.telemetry import REAL, finished_executions
from resources.catalog import Catalog
from resources.events import utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.providers.client import ProviderRegistry
from resources.schemas import (
    BEST_RESULT,
    EXECUTION_COSTS,
    EXECUTION_EVENTS,
    JOB_MARGINS,
    LEDGER_ENTRIES,
    LLM_COSTS,
    MARGINALITY_WINDOWS,
    PROVIDER_REGISTRY,
    QUALITY_SCORES,
    ROUTING_ESTIMATES,
    ROUTING_MANIFESTS,
    RUN_OUTPUTS,
)
from resources.services.runtime import with_routing_parameters
from resources.settings import Settings
from resources.store.client import Store

GOLD = {"key_prefix": ["gold"], "group_name": "economics", "kinds": {"polars", "deltalake"}}

# Events are committed moments after their ``occurred_at``, and concurrent runs commit out of
# order; re-reading the last hour before the watermark catches late commits (the upsert makes
# the overlap harmless).
LATE_MARGIN = timedelta(hours=1)
# A task's revenue changes when its ledger moves after it finished (an admin rejects the
# effect days later). Ledger entries and events are looked up this far back; an older
# correction needs a full refresh.
LEDGER_LOOKBACK = timedelta(days=7)
# The routing estimates read at most this far back (the marginality windows' longest): below
# ~30 executions a day per effect type, the oldest of the KEEP_HALF_LIVES half-lives they
# would weigh are older than that and left out (docs/routing.md).
ROUTING_LOOKBACK = timedelta(days=7)


def _execution_costs_since(
    lake: Lake,
    catalog: Catalog,
    token_usd_rate: float,
    watermark: datetime | None,
    registry_providers: list | None = None,
) -> pl.DataFrame:
    """Costs of the tasks that finished after ``watermark − LATE_MARGIN`` or whose job's
    ledger entries moved since then (all tasks when ``watermark`` is None), with the full cost
    breakdown (compute, startup, idle, partner, storage, bandwidth; ``assets.costing.task_costs``,
    which M5's best-result selection uses too) when the registry's providers are given, and the
    revenue the ledger recognises (``economics.revenue``); plus a row per effect run served
    from the result cache in the same span (``_cache_hits``: its charge, no cost, the cost it
    saved)."""
    events = lake.scan(EXECUTION_EVENTS)
    ledger = lake.scan(LEDGER_ENTRIES)
    since: datetime | None = None
    moved: list[str] = []
    if watermark is not None:
        since = watermark - LATE_MARGIN
        # A job's entries carry its video as correlation id: a moved job re-costs the video's tasks.
        entries = ledger.filter(pl.col("occurred_at") > since).select("correlation_id").unique().collect()
        moved = entries["correlation_id"].drop_nulls().to_list()
        recent = events.filter(pl.col("occurred_at") > since)
        # Two scans rather than one OR'd predicate: a plain time bound lets each scan skip
        # old files by their statistics; the OR defeats that pruning.
        corrected = events.filter(
            (pl.col("occurred_at") > watermark - LEDGER_LOOKBACK) & pl.col("correlation_id").is_in(moved)
        )
        events = pl.concat([recent, corrected]) if moved else recent
        ledger = ledger.filter(pl.col("occurred_at") > watermark - LEDGER_LOOKBACK)
    executions = finished_executions(events)
    listed = task_costs(executions, lake, catalog, token_usd_rate, registry_providers, utcnow())
    listed = listed.with_columns(cache_hit=pl.lit(False), saved_cost_usd=pl.lit(None, pl.Float64))
    hits = _cache_hits(lake, since, moved, listed)
    costs = pl.concat([listed, hits], how="diagonal_relaxed") if hits.height else listed
    return recognise(costs, _charges(lake, ledger, costs["video_id"].unique().to_list()), token_usd_rate)


def _cache_hits(lake: Lake, since: datetime | None, moved: list[str], fresh: pl.DataFrame) -> pl.DataFrame:
    """``execution_costs`` rows (``economics.revenue.cache_hit_costs``, before their charge is
    recognised) of the effect runs served from the result cache after ``since`` (all when
    None) or whose ledger moved (``moved``: run ids), each with the cost of the task whose
    output it reused, from this cycle's ``fresh`` rows or the table."""
    where = pl.col("selection") == CACHE_SELECTION
    if since is not None:
        where &= (pl.col("finished_at") > since) | pl.col("run_id").is_in(moved)
    outputs = lake.read(RUN_OUTPUTS, where)
    reused = outputs["cached_from_task_id"].drop_nulls().unique().to_list()
    made = fresh.filter(pl.col("task_id").is_in(reused)).select("task_id", "cost_usd")
    if reused:
        # A reused output may be of any age (it is reused while it is stored), so its cost
        # row is looked up by task id; only a cycle with new hits scans for it.
        stored = lake.scan(EXECUTION_COSTS).filter(pl.col("task_id").is_in(reused)).select("task_id", "cost_usd")
        made = pl.concat([made, stored.collect()], how="vertical_relaxed")
    return cache_hit_costs(cache_savings(outputs, made))


def _charges(lake: Lake, ledger: pl.LazyFrame, video_ids: list[str]) -> pl.DataFrame:
    """``economics.revenue.job_charges`` of the jobs of ``video_ids`` (correlation ids: a
    video's creation, delivered by its best result, or an effect run, by its delivered task)."""
    entries = ledger.filter(pl.col("correlation_id").is_in(video_ids)).collect()
    best = lake.read(BEST_RESULT, pl.col("video_id").is_in(video_ids)).select("video_id", "outcome", "task_id")
    runs = run_deliveries(lake.read(RUN_OUTPUTS, pl.col("run_id").is_in(video_ids)))
    return job_charges(entries, pl.concat([best, runs], how="vertical_relaxed"))


def upsert_costs(lake: Lake, costs: pl.DataFrame, watermark: datetime) -> dict:
    """Upsert an incremental cycle's ``costs`` into ``execution_costs`` by task id; the
    delta-rs merge metrics.

    A row it replaces is a task costed again: finished within LATE_MARGIN of the watermark,
    re-executed, or its ledger moved, so within LEDGER_LOOKBACK. Rather than let the merge
    read that whole week of files, the rows it will replace are found first (a streamed
    semi-join of the week's task ids) and the merge is told that none is older than the
    oldest of them, so it reads only the files from then on (with none, no file at all): the
    upsert costs what the cycle touches, not a week of history: on 100 M executions of history
    at 500,000 a day, 2.7 s instead of 9.4 s (the merge's scan 0.5 s instead of 7.5 s)."""
    week = lake.scan(EXECUTION_COSTS).filter(pl.col("finished_at") > watermark - LEDGER_LOOKBACK)
    oldest = (
        week.join(costs.lazy().select("task_id"), on="task_id", how="semi")
        .select(pl.col("finished_at").min())
        .collect(engine="streaming")
        .item()
    )
    # Strictly older than the oldest replaced row, so it stays inside the merge's bound.
    since = watermark if oldest is None else min(oldest - timedelta(microseconds=1), watermark)
    return lake.upsert(EXECUTION_COSTS, costs, recent=("finished_at", since))


class CostsConfig(dg.Config):
    """``full_refresh``: recompute every execution instead of the new ones (after a rate-card
    or price change, or a ledger correction older than LEDGER_LOOKBACK)."""

    full_refresh: bool = False


# Also reads its own table (the watermark, the last day's utilisation): an asset's own
# earlier materialization is not a dependency.
@dg.asset(deps=reads(EXECUTION_EVENTS, LEDGER_ENTRIES, BEST_RESULT, RUN_OUTPUTS), **GOLD)
def execution_costs(
    config: CostsConfig,
    lake: dg.ResourceParam[Lake],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
    providers: dg.ResourceParam[ProviderRegistry],
) -> dg.MaterializeResult:
    """Cost per execution — compute + startup (cold start amortised over the burst) + idle
    share (measured utilisation) + partner + storage + bandwidth, docs/architecture.md,
    "Economics" — tokens charged as the ledger settled the task's job (its net charge on the
    delivered task, 0 on the job's other tasks; list price for simulated executions), margin;
    one row per finished task, and one per effect run served from the result cache (its
    charge at no cost, ``cache_hit``, ``saved_cost_usd``).

    Incremental: each cycle costs only the tasks that finished since the table's newest
    ``finished_at`` (minus LATE_MARGIN) or whose ledger moved, and upserts them by task id,
    so a 15-minute cycle's work follows the new events, not the history."""
    watermark = None if config.full_refresh else lake.column_max(EXECUTION_COSTS, "finished_at")
    costs = _execution_costs_since(lake, catalog, platform.token_usd_rate, watermark, providers.registry().providers)
    if watermark is None:
        lake.overwrite(EXECUTION_COSTS, costs)
    else:
        upsert_costs(lake, costs, watermark)
    return dg.MaterializeResult(
        metadata={
            "mode": "full" if watermark is None else f"incremental since {watermark.isoformat()}",
            "executions_costed": costs.height,
            "cost_usd": round(float(costs["cost_usd"].sum() or 0), 6),
            "revenue_usd": round(float(costs["revenue_usd"].sum() or 0), 4),
        }
    )


@dg.asset(deps=[execution_costs], **GOLD)
def marginality_windows(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    """Margin per provider × effect type over the 1h / 24h / 7d windows ending now."""
    now = utcnow()
    # Only the longest window's rows are read (the cost follows a week of volume, not
    # history), streamed: one group-by pass, the week's rows are never all held.
    recent = lake.scan(EXECUTION_COSTS).filter(pl.col("finished_at") > now - max(WINDOWS.values()))
    windows = windows_of(recent, now)
    lake.overwrite(MARGINALITY_WINDOWS, windows)
    day = windows.filter((pl.col("window") == "24h") & (pl.col("source") == "real"))
    charged = int(day["tokens_charged"].sum() or 0)
    margin = margin_of(charged, float(day["cost_tokens"].sum() or 0))
    return dg.MaterializeResult(
        metadata={"rows": windows.height, "margin_24h": round(margin, 6) if margin is not None else "n/a"}
    )


@dg.asset(deps=[execution_costs, *reads(LEDGER_ENTRIES, BEST_RESULT, LLM_COSTS, RUN_OUTPUTS)], **GOLD)
def job_margins(lake: dg.ResourceParam[Lake], platform: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    """Per job finished in the last LEDGER_LOOKBACK — a video's effect creation or a user's
    effect run (``job_kind``) — tokens charged once, the cost of every task it ran (ranked,
    exploration, shadow) and of its LLM calls (``llm_costs``), and the margin
    (``economics.revenue.job_margins``); a run served from the result cache with no cost and
    the cost it saved (its ``execution_costs`` row). Upserted by job id, so a late refund
    updates its job."""
    since = utcnow() - LEDGER_LOOKBACK
    costs = lake.read(EXECUTION_COSTS, (pl.col("source") == REAL) & (pl.col("finished_at") > since))
    videos = costs["video_id"].unique().to_list()
    charges = _charges(lake, lake.scan(LEDGER_ENTRIES), videos)
    llm = lake.read(LLM_COSTS, pl.col("correlation_id").is_in(videos))
    jobs = job_margins_of(costs, charges, platform.token_usd_rate, llm)
    lake.upsert(JOB_MARGINS, jobs)
    charged = int(jobs["tokens_charged"].sum() or 0)
    margin = margin_of(charged, float(jobs["cost_tokens"].sum() or 0))
    return dg.MaterializeResult(
        metadata={
            "jobs": jobs.height,
            "runs": int((jobs["job_kind"] == "run").sum()),
            "cache_hits": int(jobs["cache_hit"].sum()),
            "saved_cost_usd": round(float(jobs["saved_cost_usd"].sum() or 0), 6),
            "margin": round(margin, 6) if margin is not None else "n/a",
        }
    )


@dg.asset(name="routing_manifests", deps=[execution_costs, *reads(QUALITY_SCORES, PROVIDER_REGISTRY)], **GOLD)
def routing_manifest(
    lake: dg.ResourceParam[Lake],
    providers: dg.ResourceParam[ProviderRegistry],
    manifest_store: dg.ResourceParam[ManifestStore],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> dg.MaterializeResult:
    """Rank every active, healthy provider per effect type from the real executions'
    discounted estimates and route by discounted Thompson sampling (``economics.bandit``,
    docs/routing.md); apply the routing parameters in force (an approved pin, a latency
    demotion: docs/signals.md "Runtime parameters"); estimate off-policy what the new manifest
    and the one it replaces earn per routed job on the logged decisions
    (``economics.off_policy``), store the estimate in the manifest, publish it, and keep the
    version in ``routing_manifests``.

    A bounded scan: the executions of the last ROUTING_LOOKBACK, of which the estimates keep
    the newest ``keep_executions`` per effect type (12 half-lives) — the cost follows the
    half-life, not the history. On the regret bench (bench/routing_regret.py) this default
    stays within 2 % of an oracle's margin at 2,000 and at 50 jobs/h, where a 24 h window lost
    10 % and 13 %."""
    now = utcnow()
    config = BanditConfig(half_life=platform.routing_half_life_executions, floor=platform.routing_floor)
    # Real executions only: simulated history must never steer real routing (docs/architecture.md, "Economics").
    real = lake.read(EXECUTION_COSTS, (pl.col("source") == REAL) & (pl.col("finished_at") > now - ROUTING_LOOKBACK))
    # A cache hit ran no provider: it says nothing of one's success, cost or speed.
    recent = newest_per_effect(provider_executions(real), config.keep_executions)
    quality = lake.read(QUALITY_SCORES, pl.col("task_id").is_in(recent["task_id"].to_list()))
    stats = decayed_stats(observations(recent, quality), config)
    current = manifest_store.read()
    manifest = adaptive_manifest(
        stats,
        providers.registry().active_by_effect(exclude=unhealthy_providers(lake)),
        now,
        platform.priority,
        config,
        exploration_rate=platform.exploration_rate,
        breakers=breaker_states(lake),
    )
    manifest = with_routing_parameters(manifest, store)
    logged = logged_decisions(recent, catalog.prices(), platform.token_usd_rate)
    manifest["off_policy"] = change_estimates(logged, manifest, current, now)
    manifest_store.publish(manifest)
    lake.append(ROUTING_MANIFESTS, manifest_rows(manifest))
    dr = {e["policy"]: e for e in manifest["off_policy"]["estimates"] if e["estimator"] == "dr"}
    return dg.MaterializeResult(
        metadata={
            "version": manifest["version"],
            "executions_read": recent.height,
            "logged_decisions": logged["decision_id"].n_unique(),
            **{f"dr_{policy}": e["value"] if e["value"] is not None else "n/a" for policy, e in dr.items()},
            **{f"top:{e}": entries[0]["provider_id"] for e, entries in manifest["effects"].items() if entries},
        }
    )


@dg.asset(deps=[routing_manifest], **GOLD)
def routing_estimates(
    lake: dg.ResourceParam[Lake], manifest_store: dg.ResourceParam[ManifestStore]
) -> dg.MaterializeResult:
    """The off-policy estimates published with the current manifest (IPS, SNIPS and DR of
    its and the replaced manifest's margin per routed job), one row per policy × estimator,
    upserted by version: the history the Routing page charts."""
    manifest = manifest_store.read()
    rows = estimate_rows(manifest) if manifest else estimate_rows({})
    if not rows.is_empty():
        lake.upsert(ROUTING_ESTIMATES, rows)
    return dg.MaterializeResult(metadata={"version": (manifest or {}).get("version", "n/a"), "rows": rows.height})
