"""M5 ``test_batch``: the routing manifest + registry turn the target effects' prompts into N
provider tasks on the neutral reference clip → TestBatchDispatched; the video's job reserves
its price once in the store's ledger. No target effect → NoTargetEffect, the user told, nothing
reserved."""

import random

import dagster as dg
import polars as pl

from assets.batch.best import upload_priorities
from assets.batch.reference import reference_input
from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.lineage import reads
from assets.logs import warn
from assets.registry.asset import unhealthy_providers
from assets.uploads import UPLOADS_TABLE
from economics import ledger
from economics.budget import UserQuotaExceeded, check_budget
from economics.pricing import job_price
from economics.routing import current_rankings, select_providers
from economics.telemetry import CREATION, DISPATCHED_EVENT
from resources.catalog import Catalog
from resources.events import event, record_execution_events, record_pipeline_events, stable_id, utcnow
from resources.job_status import DONE, PROCESSING, mark_job
from resources.lake import Lake
from resources.manifest_store import ManifestStore, ManifestUnreadable
from resources.media import MediaStore
from resources.notifications import notify_user
from resources.providers.client import ProviderRegistry
from resources.schemas import PROVIDER_REGISTRY, TEST_BATCH
from resources.services.runtime import effective_prices
from resources.settings import Settings
from resources.store.client import Store

STAGE = "M5"
NO_TARGET_EVENT = "NoTargetEffect"


def task_id_for(video_id: str, effect_type: str, provider_id: str) -> str:
    """Deterministic task id: the same video, effect and provider always name one task."""
    return stable_id("task", video_id, effect_type, provider_id, length=20)


# No pool: the store's reservation locks the user's account row (resources/store/ledger.py),
# so concurrent runs reserve in parallel and never both spend the same tokens.
@dg.asset(
    group_name="M5_batch",
    output_required=False,
    ins=silver_ins("prompt_variants", "ingested_video"),
    deps=[UPLOADS_TABLE, *reads(PROVIDER_REGISTRY)],
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
    store: dg.ResourceParam[Store],
    media: dg.ResourceParam[MediaStore],
):
    """Per target effect type (M2's, through M4's prompts): the top ``top_k`` providers of the current routing manifest,
    plus an exploration candidate with probability ``exploration_rate``, plus shadow copies;
    each task logs its ``propensity`` (the probability the draw included it) in its row and
    its TaskDispatched event, for off-policy evaluation of later manifests.

    The video's job reserves its price once (``economics.pricing.job_price`` of the charged
    tasks' effect types and the upload's priorities) under ``economics.ledger.job_id``; a
    re-run finds the reservation and reserves nothing more. The draw is seeded by the video
    id, so re-running the stage dispatches the same tasks. Every task renders on the same
    neutral reference clip (``input_key``, ``assets.batch.reference``), not on the example.
    Yields nothing (and tells the user, charging nothing) when the example shows no effect the
    platform can produce, or when the user cannot cover the price.
    """
    video = only_row(ingested_video, "ingested_video")
    video_id, user_id = video["video_id"], video["user_id"]
    now = utcnow()
    registry = providers.registry()
    active = registry.active_by_effect(exclude=unhealthy_providers(lake))
    rankings, version, source = current_rankings(_manifest(context, manifest_store), active, now)
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
        picked = {c.provider_id for c in chosen}
        ranked = sorted(rankings.get(effect_type, []), key=lambda e: e["rank"])
        fallbacks = [e["provider_id"] for e in ranked if e["provider_id"] not in picked and not e.get("forced")]
        rows.extend(
            {
                "video_id": video_id,
                "fallbacks": fallbacks if c.selection == "ranked" else [],
                "task_id": task_id_for(video_id, effect_type, c.provider_id),
                "effect_type": effect_type,
                "provider_id": c.provider_id,
                "rank": c.rank,
                "selection": c.selection,
                "propensity": c.propensity,
                "manifest_version": version,
                "user_id": user_id,
                "prompt": variant["prompt"],
                "params": variant["params"],
                "dispatched_at": now,
            }
            for c in chosen
        )
    if not rows:
        _no_target(store, lake, catalog, video_id, user_id, prompt_variants.height)
        mark_job(store, video_id, DONE)
        return
    input_key = reference_input(
        media, catalog.reference_suite(), platform.reference_seconds, platform.reference_max_side
    )
    for r in rows:
        r["input_key"] = input_key
    # Priced with the weights the best result will be chosen with (the uploader's, else the preset).
    weights = upload_priorities(context, store, video_id, platform.priority).weights()
    price = job_price(
        effective_prices(catalog, store),  # the list prices in force (an approved price revision)
        (r["effect_type"] for r in rows if r["selection"] != "shadow"),
        catalog.premiums(),
        weights,
    )
    job = ledger.job_id(video_id)
    if price > 0:
        try:
            store.reserve(user_id, job, price, correlation_id=video_id, at=now)
        except UserQuotaExceeded as exc:
            _refuse(context, store, lake, video_id, user_id, exc)
            return
    mark_job(store, video_id, PROCESSING)  # its provider tasks hold GPU capacity now
    for r in rows:
        r["tokens_reserved"] = price
    # Past 80 % of the budget after this reservation: tell the user (economics.budget).
    decision = check_budget(store.balance(user_id), 0) if price > 0 else None
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
                propensity=r["propensity"],
                job_kind=CREATION,
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
                "job_id": job,
                "tokens_reserved": price,
                "providers": sorted({f"{r['effect_type']}:{r['provider_id']}" for r in rows}),
            },
        )
    ]
    if decision is not None and decision.alert:
        dispatched.append(
            notify_user(
                store,
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
            "tokens_reserved": price,
        },
    )


def _manifest(context, manifest_store: ManifestStore) -> dict | None:
    """The published manifest; None (M5 then routes with the bootstrap ranking, as before the
    first economics cycle) when what is stored cannot be read as one, which is logged: one bad
    publication must not stop every job."""
    try:
        return manifest_store.read()
    except ManifestUnreadable as exc:
        warn(
            context,
            f"routing manifest unreadable, bootstrap ranking used: {exc}",
            event_type="routing_manifest_unreadable",
            economic_impact_usd=0.0,  # jobs still run; routing is less informed until the next cycle
            urgency="high",
            operator_action="Run the economics job (effectlake economics) to publish a good manifest.",
            runbook="docs/runbooks/platform-logs.md#routing_manifest_unreadable",
        )
        return None


def _no_target(store: Store, lake: Lake, catalog: Catalog, video_id: str, user_id: str, variants: int) -> None:
    """The example shows nothing the platform can produce (or no provider can make it): say
    so, reserve nothing."""
    names = ", ".join(e["display_name"].lower() for e in catalog.effects().values())
    reason = "no target effect" if not variants else "no active provider for the target effects"
    record_pipeline_events(
        lake,
        [
            event(NO_TARGET_EVENT, video_id, STAGE, {"reason": reason, "variants": variants}),
            notify_user(
                store,
                STAGE,
                user_id,
                video_id,
                "no_target_effect",
                "Your example shows no effect we can make",
                f"We make {names}; your example video (and description) shows none of them. Nothing was charged.",
            ),
        ],
    )


def _refuse(context, store: Store, lake: Lake, video_id: str, user_id: str, exc: UserQuotaExceeded) -> None:
    """Dispatch nothing for a user over budget, and say so (docs/architecture.md, "Economics": pause at 100%)."""
    record_pipeline_events(
        lake,
        [
            event("UserQuotaExceeded", video_id, STAGE, {"user_id": user_id, "reason": str(exc)}),
            notify_user(store, STAGE, user_id, video_id, "quota_exceeded", "Top up to continue", str(exc)),
        ],
    )
    mark_job(store, video_id, DONE)
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
