"""Read models the API serves: a video's status and the gallery, assembled from lake tables."""

from __future__ import annotations

import json

import polars as pl

from resources.lake import Lake
from resources.schemas import (
    APPROVAL_DECISIONS,
    APPROVAL_REQUESTS,
    BEST_RESULT,
    CONTENT_ANALYSIS,
    GALLERY_REVISIONS,
    INGESTED_VIDEO,
    NOTIFICATIONS,
    PIPELINE_EVENTS,
    QUALITY_SCORES,
    UPLOADS,
)

# The stage a video has reached, named by its latest milestone event.
STAGE_OF_EVENT = {
    "VideoIngested": "ingested",
    "VideoRejected": "rejected",
    "ContentAnalyzed": "analyzed",
    "PromptsGenerated": "prompted",
    "NoEligibleEffects": "no_eligible_effects",
    "UserQuotaExceeded": "quota_exceeded",
    "TestBatchDispatched": "executing",
    "TaskSucceeded": "executing",
    "TaskFailed": "executing",
    "QualityEvaluated": "evaluated",
    "BestResultSelected": "selected",
    "NoUsableResult": "no_usable_result",
    "ApprovalRequested": "awaiting_approval",
    "EffectPublished": "published",
    "EffectRejected": "rejected_by_admin",
}


def _first(df: pl.DataFrame) -> dict | None:
    return df.row(0, named=True) if df.height else None


def video_status(lake: Lake, video_id: str, media_url, base_url: str = "") -> dict | None:
    """Everything a user (or the demo) needs about one video; None when it was never uploaded.

    Args:
        media_url: media key → public URL.
        base_url: public API base URL, prefixed to the gallery URL.

    Returns:
        ``{video_id, stage, upload, events[], video, analysis, outputs[], result,
        approval, gallery, notifications[]}`` (sections null until their stage ran).
    """
    by_video = pl.col("video_id") == video_id
    upload = _first(lake.read(UPLOADS, by_video))
    if upload is None:
        return None
    events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == video_id).sort("occurred_at")
    stage = "uploaded"
    for e in events["event_type"].to_list():
        stage = STAGE_OF_EVENT.get(e, stage)
    approval = _first(lake.read(APPROVAL_REQUESTS, by_video))
    decision = _first(lake.read(APPROVAL_DECISIONS, by_video))
    revision = _first(lake.read(GALLERY_REVISIONS, by_video & pl.col("published").fill_null(False)))
    # A stage records its event before Dagster's IO manager writes its output row, so for a
    # moment the event is visible and the row is not: report a stage only once a client can
    # act on it (approve a request that exists, open a gallery entry that exists).
    if stage == "awaiting_approval" and approval is None:
        stage = "selected"
    if stage == "published" and revision is None:
        stage = "approved"
    outputs = lake.read(QUALITY_SCORES, by_video).sort("effect_type", "rank")
    return {
        "video_id": video_id,
        "stage": stage,
        "upload": upload,
        "events": [
            {
                "event_type": e["event_type"],
                "stage": e["stage"],
                "occurred_at": e["occurred_at"],
                "payload": json.loads(e["payload"]),
            }
            for e in events.iter_rows(named=True)
        ],
        "video": _first(lake.read(INGESTED_VIDEO, by_video)),
        "analysis": _first(lake.read(CONTENT_ANALYSIS, by_video)),
        "outputs": [
            {**o, "measurements": json.loads(o["measurements"] or "{}")} for o in outputs.iter_rows(named=True)
        ],
        "result": _first(lake.read(BEST_RESULT, by_video)),
        "approval": approval
        and {
            "approval_id": approval["approval_id"],
            "status": decision["decision"] if decision else "pending",
            "preview_url": approval["preview_url"],
        },
        "gallery": revision
        and {
            "slug": revision["slug"],
            "revision_id": revision["revision_id"],
            "url": f"{base_url.rstrip('/')}/v1/effects/{revision['slug']}",
            "preview_url": media_url(revision["output_key"]),
        },
        "notifications": lake.read(NOTIFICATIONS, pl.col("correlation_id") == video_id).sort("created_at").to_dicts(),
    }


def gallery(lake: Lake) -> pl.DataFrame:
    """Published effects, newest revision per slug first."""
    return (
        lake.read(GALLERY_REVISIONS, pl.col("published").fill_null(False))
        .sort("published_at", descending=True)
        .unique("slug", keep="first", maintain_order=True)
    )
