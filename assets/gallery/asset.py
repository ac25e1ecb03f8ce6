"""M10 ``gallery_revisions``: after an admin decision, publish — an immutable revision in the
transactional store (``effect_revisions``, written once per content) and the slug's pin moved
to it when it is new (the admin approved that content) → EffectPublished + UserNotified; a
rejection refunds the job and notifies. The decision is read from the store, where the admin
recorded it. The silver row is this video's publication outcome (which revision, whether it
was new, whether the pin moved); the revisions themselves are landed into
``bronze/effect_revisions`` and every pin move into ``bronze/effect_pin_events``."""

import json

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.gallery.snapshot import content_hash, revision_content, slug_for
from assets.lineage import store_table_key
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.media import MediaStore
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
        "approval_requests",
        "best_result",
        "prompt_variants",
        "quality_scores",
        "test_batch",
        "ingested_video",
        "provider_outputs",
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
    provider_outputs: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> pl.DataFrame:
    """The admin's decision on the video's approval request, applied. An approval publishes a
    revision showing the example and the effect applied to reference content side by side:
    each copied to its content-addressed ``published/<sha256>.mp4`` key (the preview, the
    example's proxy, the neutral reference clip), with the render's spec, parameters, prompt
    template and the effect's price. Publishing content the slug already has writes nothing
    and leaves the pin where it is (docs/gallery.md, "Revisions and pins").

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
    effect_type = best["effect_type"]
    prompt = only_row(prompt_variants.filter(pl.col("effect_type") == effect_type), "prompt")
    quality = only_row(quality_scores.filter(pl.col("task_id") == best["task_id"]), "quality")
    task = only_row(test_batch.filter(pl.col("task_id") == best["task_id"]), "test_batch")
    output = only_row(provider_outputs.filter(pl.col("task_id") == best["task_id"]), "provider_outputs")
    example_key = only_row(ingested_video, "ingested_video")["proxy_key"]
    reference_key = task["input_key"] or example_key
    published = {
        "preview": media.publish(best["output_key"]),
        "example": media.publish(example_key),
        "reference": media.publish(reference_key),
    }
    render_spec = json.loads(output["render_spec"]) if output["render_spec"] else None
    slug = slug_for(effect_type, video_id)
    params = json.loads(prompt["params"])
    template = f"{prompt['template_id']}@v{prompt['template_version']}"
    content = revision_content(
        slug=slug,
        effect_type=effect_type,
        provider_id=best["provider_id"],
        params=params,
        prompt=prompt["prompt"],
        template=template,
        workflow_hash=render_spec["workflow_hash"] if render_spec else None,
        media=published,
    )
    snapshot = {
        "slug": slug,
        "effect_type": effect_type,
        "display_name": catalog.effects()[effect_type]["display_name"],
        "provider_id": best["provider_id"],
        "task_id": best["task_id"],
        "prompt": prompt["prompt"],
        "template": template,
        "params": params,
        "source_video_id": video_id,
        "example_key": example_key,
        "reference_key": reference_key,
        "output_key": best["output_key"],
        "media": published,
        "approval_id": request["approval_id"],
        "approved_by": decision["admin"],
        "quality": {k: quality[k] for k in QUALITY_METRICS},
        "cost_usd": best["cost_usd"],
        "margin": best["margin"],
    }
    result = store.publish_revision(
        {
            "slug": slug,
            "effect_type": effect_type,
            "provider_id": best["provider_id"],
            "content_hash": content_hash(content),
            "params": params,
            "template_id": prompt["template_id"],
            "template_version": int(prompt["template_version"]),
            "prompt": prompt["prompt"],
            "price_tokens": catalog.prices()[effect_type],
            "snapshot": snapshot,
            "render_spec": render_spec,
            "output_key": best["output_key"],
            "preview_key": published["preview"],
            "approval_id": request["approval_id"],
            "source_video_id": video_id,
            "created_by": decision["admin"],
        }
    )
    revision = result.revision
    row = {
        "video_id": video_id,
        "revision_id": revision["revision_id"],
        "slug": slug,
        "approval_id": request["approval_id"],
        "decision": "approve",
        "effect_type": effect_type,
        "provider_id": best["provider_id"],
        "task_id": best["task_id"],
        "snapshot": revision["snapshot"],
        "content_hash": revision["content_hash"],
        "published": True,
        "output_key": best["output_key"],
        "preview_key": revision["preview_key"],
        "new_revision": result.created,
        "pin_moved": result.pin_moved,
        "published_at": revision["created_at"],
    }
    url = f"{platform.api_base_url.rstrip('/')}/v1/effects/{slug}"
    record_pipeline_events(
        lake,
        [
            event(
                "EffectPublished",
                video_id,
                STAGE,
                {
                    "slug": slug,
                    "revision_id": revision["revision_id"],
                    "content_hash": revision["content_hash"],
                    "url": url,
                    "new_revision": result.created,
                    "pinned_revision_id": result.pin["revision_id"],
                },
                identity=revision["revision_id"],
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
                identity=revision["revision_id"],
                event_identity=f"published:{revision['revision_id']}",
            ),
        ],
    )
    context.add_output_metadata(
        {
            "slug": slug,
            "revision_id": revision["revision_id"],
            "new_revision": result.created,
            "pin_moved": result.pin_moved,
            "preview_key": revision["preview_key"],
        }
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
