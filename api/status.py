"""Read models the API serves: a video's status, assembled from lake tables and the store's
rows (the gallery itself is ``resources.services.gallery``, read from the store)."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from resources.lake import Lake
from resources.schemas import (
    APPROVAL_REQUESTS,
    BEST_RESULT,
    CONTENT_ANALYSIS,
    INGESTED_VIDEO,
    PIPELINE_EVENTS,
    QUALITY_SCORES,
)
from resources.services.gallery import Revision

# The stage a video has reached, named by its latest milestone event.
STAGE_OF_EVENT = {
    "VideoIngested": "ingested",
    "VideoRejected": "rejected",
    "ContentAnalyzed": "analyzed",
    "PromptsGenerated": "prompted",
    "AnalysisFailed": "analysis_failed",
    "NoTargetEffect": "no_target_effect",
    "NoEligibleEffects": "no_target_effect",  # its name before jobs built the example's effect
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
    # The orphan-recovery sensor gave the video up (its job refunded; the notification says why).
    "VideoAbandoned": "failed",
}


def _first(df: pl.DataFrame) -> dict | None:
    return df.row(0, named=True) if df.height else None


def video_status(
    lake: Lake,
    upload: dict,
    decision_of: Callable[[str], dict | None],
    notifications: list[dict],
    media_url: Callable[[str], str | None],
    base_url: str = "",
    revision_of: Callable[[str], Revision | None] = lambda video_id: None,
) -> dict:
    """Everything a user (or the demo) needs about one video.

    The transactional store's rows are passed in (they are current at once; the lake gets
    them when they are landed), the stages' results are read from the lake.

    Args:
        upload: the store's upload row.
        decision_of: approval id → the store's decision on it, None while undecided.
        notifications: the store's notifications of the video, oldest first.
        media_url: media key → public URL (``resources.media_links.MediaLinks.url``).
        base_url: public API base URL, prefixed to the gallery URL.
        revision_of: video id → the latest gallery revision published from its job, from
            the store (``resources.services.gallery.video_revision``); None when none is.

    Returns:
        ``{video_id, stage, upload, events[], video, analysis, outputs[], result,
        approval, gallery, notifications[]}`` (sections null until their stage ran).
    """
    video_id = upload["video_id"]
    by_video = pl.col("video_id") == video_id
    events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == video_id).sort("occurred_at")
    stage = "uploaded"
    for e in events["event_type"].to_list():
        stage = STAGE_OF_EVENT.get(e, stage)
    approval = _first(lake.read(APPROVAL_REQUESTS, by_video))
    decision = decision_of(approval["approval_id"]) if approval else None
    revision = revision_of(video_id)
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
            "slug": revision.slug,
            "revision_id": revision.revision_id,
            "pinned": revision.pinned,
            "url": f"{base_url.rstrip('/')}/v1/effects/{revision.slug}",
            "preview_url": media_url(revision.preview_key),
        },
        "notifications": notifications,
    }
