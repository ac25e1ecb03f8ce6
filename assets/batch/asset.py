"""M5 ``test_batch``: the routing manifest + registry turn prompts into N provider tasks
→ TestBatchDispatched; tokens are reserved per charged task."""

import random

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.lineage import reads
from assets.logs import warn
from assets.registry.asset import unhealthy_providers
from economics.budget import UserQuotaExceeded, reserve_or_raise
from economics.routing import current_rankings, select_providers
from economics.telemetry import DISPATCHED_EVENT
from resources.catalog import Catalog
from resources.events import event, record_execution_events, record_pipeline_events, stable_id, utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.notifications import notify_user
from resources.providers.client import ProviderRegistry
from resources.schemas import LEDGER_ENTRIES, PROVIDER_REGISTRY, TEST_BATCH
from resources.settings import Settings

STAGE = "M5"


def task_id_for(video_id: str, effect_type: str, provider_id: str) -> str:
    """Deterministic task id: the same video, effect and provider always name one task."""
    return stable_id("task", video_id, effect_type, provider_id, length=20)


# pool="ledger": reserving is check-then-append on a user's balance; the instance gives the
# pool one slot (pipelines/cli/demo.py DAGSTER_YAML), so two runs never both spend the same tokens.
@dg.asset(
    group_name="M5_batch",
    output_required=False,
    pool="ledger",
    ins=silver_ins("prompt_variants", "ingested_video"),
    deps=reads(PROVIDER_REGISTRY),
    **SILVER_KW,
)
def test_batch(
    context: dg.AssetExecutionContext,
    prompt_variants: pl.DataFrame,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    providers: dg.ResourceParam[ProviderRegistry],
    manifest_store: dg.ResourceParam[ManifestStore],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
):
    """Per eligible effect type: the top ``top_k`` providers of the current routing manifest,
    plus an exploration candidate with probability ``exploration_rate``, plus shadow copies.

    The draw is seeded by the video id, so re-running the stage dispatches the same tasks.
    Yields nothing (and tells the user) when no effect type is eligible.
    """
    video = only_row(ingested_video, "ingested_video")
    video_id, user_id = video["video_id"], video["user_id"]
    now = utcnow()
    registry = providers.registry()
    active = registry.active_by_effect(exclude=unhealthy_providers(lake))
    rankings, version, source = current_rankings(manifest_store.read(), active, now)
    prices = catalog.prices()
    rng = random.Random(int(stable_id("routing", video_id), 16))
    rows = []
    for variant in prompt_variants.sort("effect_type").iter_rows(named=True):
        effect_type = variant["effect_type"]
        chosen = select_providers(
            rankings.get(effect_type, []),
            rng,
            top_k=platform.top_k,
            epsilon=platform.exploration_rate,
            shadow=registry.shadow_for(effect_type),
        )
        rows.extend(
            {
                "video_id": video_id,
                "task_id": task_id_for(video_id, effect_type, c.provider_id),
                "effect_type": effect_type,
                "provider_id": c.provider_id,
                "rank": c.rank,
                "selection": c.selection,
                "manifest_version": version,
                "user_id": user_id,
                "tokens_reserved": 0 if c.selection == "shadow" else prices[effect_type],
                "prompt": variant["prompt"],
                "params": variant["params"],
                "dispatched_at": now,
            }
            for c in chosen
        )
    if not rows:
        record_pipeline_events(
            lake,
            [
                event("NoEligibleEffects", video_id, STAGE, {}),
                notify_user(
                    lake,
                    STAGE,
                    user_id,
                    video_id,
                    "no_effects",
                    "No effect fits this video",
                    "None of the catalog's effects can be applied to this video.",
                ),
            ],
        )
        return
    try:
        reservation = reserve_or_raise(lake.read(LEDGER_ENTRIES, pl.col("user_id") == user_id), rows, now)
    except UserQuotaExceeded as exc:
        _refuse(context, lake, video_id, user_id, exc)
        return
    lake.append(LEDGER_ENTRIES, pl.DataFrame(reservation.entries, schema=LEDGER_ENTRIES.schema))
    decision = reservation.decisions.get(user_id)
    record_execution_events(
        lake,
        [
            event(
                DISPATCHED_EVENT,
                video_id,
                STAGE,
                {"rank": r["rank"], "manifest_version": version},
                identity=r["task_id"],
                task_id=r["task_id"],
                provider_id=r["provider_id"],
                effect_type=r["effect_type"],
                selection=r["selection"],
            )
            for r in rows
        ],
    )
    dispatched = [
        event(
            "TestBatchDispatched",
            video_id,
            STAGE,
            {
                "tasks": len(rows),
                "manifest_version": version,
                "manifest_source": source,
                "tokens_reserved": sum(r["tokens_reserved"] for r in rows),
                "providers": sorted({f"{r['effect_type']}:{r['provider_id']}" for r in rows}),
            },
        )
    ]
    if decision is not None and decision.alert:
        dispatched.append(
            notify_user(
                lake,
                STAGE,
                user_id,
                video_id,
                "budget_alert",
                "You have used most of your tokens",
                decision.reason,
                identity="budget_alert",
            )
        )
    record_pipeline_events(lake, dispatched)
    yield dg.Output(
        frame(rows, TEST_BATCH),
        metadata={
            "tasks": len(rows),
            "manifest": f"{source} {version}",
            "exploration": sum(r["selection"] == "exploration" for r in rows),
        },
    )


def _refuse(context, lake: Lake, video_id: str, user_id: str, exc: UserQuotaExceeded) -> None:
    """Dispatch nothing for a user over budget, and say so (docs/architecture.md, "Economics": pause at 100%)."""
    record_pipeline_events(
        lake,
        [
            event("UserQuotaExceeded", video_id, STAGE, {"user_id": user_id, "reason": str(exc)}),
            notify_user(lake, STAGE, user_id, video_id, "quota_exceeded", "Top up to continue", str(exc)),
        ],
    )
    warn(
        context,
        f"video {video_id}: {exc}",
        event_type="user_quota_exceeded",
        economic_impact_usd=0.0,  # nothing was dispatched; the revenue waits on a top-up
        urgency="medium",
        operator_action="None unless the user asks; offer a top-up if they are a paying customer.",
        runbook="docs/runbooks/platform-logs.md#user_quota_exceeded",
        video_id=video_id,
        user_id=user_id,
    )
