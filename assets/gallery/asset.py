"""M10 ``gallery_revisions``: after an admin decision, an immutable revision with its content
hash and the publish pin → EffectPublished + UserNotified; a rejection refunds the job and
notifies. The decision is read from the transactional store, where the admin recorded it."""

import json

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.gallery.snapshot import revision, slug_for
from assets.lineage import store_table_key
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.media import media_url
from resources.notifications import notify_user
from resources.refunds import refund_and_notify
from resources.schemas import GALLERY_REVISIONS, QUALITY_METRICS
from resources.settings import Settings
from resources.store.client import Store
from resources.store.errors import NotFound

STAGE = "M10"


@dg.asset(
    group_name="M10_gallery",
    ins=silver_ins(
        "approval_requests", "best_result", "prompt_variants", "quality_scores", "test_batch", "ingested_video"
    ),
    deps=[store_table_key("decisions")],
    **SILVER_KW,
)
def gallery_revisions(
    context: dg.AssetExecutionContext,
    approval_requests: pl.DataFrame,
    best_result: pl.DataFrame,
    prompt_variants: pl.DataFrame,
    quality_scores: pl.DataFrame,
    test_batch: pl.DataFrame,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> pl.DataFrame:
    """The admin's decision on the video's approval request, applied. The published snapshot
    shows the example and the effect applied to reference content side by side: the media keys
    of the example (``example_key``, its proxy), of the neutral reference clip
    (``reference_key``) and of the render (``output_key``).

    Raises:
        dg.Failure: no decision is recorded yet (the approval sensor only starts this run
            after one is).
    """
    request = only_row(approval_requests, "approval_requests")
    try:
        decision = store.decision("approval", request["approval_id"])
    except NotFound:
        raise dg.Failure(f"no admin decision recorded for approval {request['approval_id']}") from None
    video_id, user_id, now = request["video_id"], request["user_id"], utcnow()
    best = only_row(best_result, "best_result")
    if decision["decision"] != "approve":
        return _rejected(context, store, lake, request, decision, now)
    prompt = only_row(prompt_variants.filter(pl.col("effect_type") == best["effect_type"]), "prompt")
    quality = only_row(quality_scores.filter(pl.col("task_id") == best["task_id"]), "quality")
    task = only_row(test_batch.filter(pl.col("task_id") == best["task_id"]), "test_batch")
    example_key = only_row(ingested_video, "ingested_video")["proxy_key"]
    slug = slug_for(best["effect_type"], video_id)
    snapshot = {
        "slug": slug,
        "effect_type": best["effect_type"],
        "display_name": catalog.effects()[best["effect_type"]]["display_name"],
        "provider_id": best["provider_id"],
        "task_id": best["task_id"],
        "prompt": prompt["prompt"],
        "template": f"{prompt['template_id']}@v{prompt['template_version']}",
        "params": json.loads(prompt["params"]),
        "source_video_id": video_id,
        "example_key": example_key,
        "reference_key": task["input_key"] or example_key,
        "output_key": best["output_key"],
        "approval_id": request["approval_id"],
        "approved_by": decision["admin"],
        "quality": {k: quality[k] for k in QUALITY_METRICS},
        "cost_usd": best["cost_usd"],
        "margin": best["margin"],
    }
    revision_id, content_hash = revision(snapshot)
    row = {
        "video_id": video_id,
        "revision_id": revision_id,
        "slug": slug,
        "approval_id": request["approval_id"],
        "decision": "approve",
        "effect_type": best["effect_type"],
        "provider_id": best["provider_id"],
        "task_id": best["task_id"],
        "snapshot": json.dumps(snapshot, sort_keys=True, default=str),
        "content_hash": content_hash,
        "published": True,
        "output_key": best["output_key"],
        "published_at": now,
    }
    url = f"{platform.api_base_url.rstrip('/')}/v1/effects/{slug}"
    record_pipeline_events(
        lake,
        [
            event(
                "EffectPublished",
                video_id,
                STAGE,
                {"slug": slug, "revision_id": revision_id, "content_hash": content_hash, "url": url},
            ),
            notify_user(
                store,
                STAGE,
                user_id,
                video_id,
                "effect_published",
                "Your effect is published",
                f"{snapshot['display_name']} is live in the gallery.",
                url=url,
                identity=revision_id,
                event_identity="published",
            ),
        ],
    )
    context.add_output_metadata(
        {"slug": slug, "revision_id": revision_id, "preview": media_url(platform.api_base_url, best["output_key"])}
    )
    return frame([row], GALLERY_REVISIONS)


def _rejected(context, store, lake, request, decision, now) -> pl.DataFrame:
    video_id, user_id = request["video_id"], request["user_id"]
    reason = decision["reason"] or "an admin rejected the result"
    refunded = refund_and_notify(
        store,
        lake,
        STAGE,
        "rejected by admin",
        outcome="EffectRejected",
        details={"approval_id": request["approval_id"], "reason": reason},
        user_id=user_id,
        video_id=video_id,
        kind="effect_rejected",
        title="Your effect was not published",
        body=f"{reason}. Your {{tokens}} tokens were refunded.",
        identity=request["approval_id"],
        event_identity="rejected",
    )
    context.add_output_metadata({"decision": "reject", "refunded_tokens": refunded})
    return frame(
        [
            {
                "video_id": video_id,
                "approval_id": request["approval_id"],
                "decision": "reject",
                "published": False,
                "published_at": now,
                "revision_id": "",
                "effect_type": request["effect_type"],
                "provider_id": request["provider_id"],
                "task_id": request["task_id"],
            }
        ],
        GALLERY_REVISIONS,
    )
