"""M9 ``approval_requests``: an admin queue entry with the side-by-side comparison, and an
in-app notification to the user with a preview URL → ApprovalRequested, UserNotified."""

import json

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from resources.events import event, record_pipeline_events, stable_id, utcnow
from resources.lake import Lake
from resources.media import media_url
from resources.notifications import notify_user
from resources.schemas import APPROVAL_REQUESTS, QUALITY_METRICS
from resources.settings import Settings
from resources.store.client import Store

STAGE = "M9"

COMPARED = (
    "task_id",
    "effect_type",
    "provider_id",
    "status",
    *QUALITY_METRICS,
    "gate_passed",
    "gate_failures",
    "rank",
    "cost_usd",
    "margin",
)


def approval_id_for(video_id: str, task_id: str) -> str:
    """Deterministic approval id: one approval request per (video, winning task)."""
    return stable_id("approval", video_id, task_id, length=20)


@dg.asset(
    group_name="M9_approval",
    output_required=False,
    ins=silver_ins("best_result", "quality_scores", "provider_outputs", "ingested_video"),
    **SILVER_KW,
)
def approval_requests(
    context: dg.AssetExecutionContext,
    best_result: pl.DataFrame,
    quality_scores: pl.DataFrame,
    provider_outputs: pl.DataFrame,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
):
    """A pending approval for the winner, comparing every output (quality vector, cost,
    margin, preview URL). Yields nothing when the video has no usable result."""
    best = only_row(best_result, "best_result")
    if best["outcome"] != "selected":
        return
    video = only_row(ingested_video, "ingested_video")
    keys = dict(zip(provider_outputs["task_id"], provider_outputs["output_key"], strict=True))
    selection = dict(zip(provider_outputs["task_id"], provider_outputs["selection"], strict=True))
    comparison = {
        "input_url": media_url(platform.api_base_url, video["proxy_key"]),
        "winner_task_id": best["task_id"],
        "outputs": [
            {
                **{k: q[k] for k in COMPARED},
                "selection": selection[q["task_id"]],
                "preview_url": media_url(platform.api_base_url, keys[q["task_id"]]),
            }
            for q in quality_scores.sort("effect_type", "rank").iter_rows(named=True)
        ],
    }
    video_id = best["video_id"]
    preview = media_url(platform.api_base_url, best["output_key"])
    row = {
        "video_id": video_id,
        "approval_id": approval_id_for(video_id, best["task_id"]),
        "task_id": best["task_id"],
        "effect_type": best["effect_type"],
        "provider_id": best["provider_id"],
        "user_id": video["user_id"],
        "status": "pending",
        "comparison": json.dumps(comparison, sort_keys=True, default=str),
        "preview_url": preview,
        "requested_at": utcnow(),
    }
    record_pipeline_events(
        lake,
        [
            event(
                "ApprovalRequested", video_id, STAGE, {"approval_id": row["approval_id"], "task_id": best["task_id"]}
            ),
            notify_user(
                store,
                STAGE,
                video["user_id"],
                video_id,
                "preview_ready",
                "Your effect preview is ready",
                f"Best result: {best['effect_type']} by {best['provider_id']}; "
                "an admin will review it before it is published.",
                url=preview,
                identity=row["approval_id"],
            ),
        ],
    )
    yield dg.Output(frame([row], APPROVAL_REQUESTS), metadata={"approval_id": row["approval_id"]})
