"""M1 ``ingested_video``: probe, validate, normalized proxy → VideoIngested | VideoRejected."""

import time

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame
from assets.ingest.probe import IngestLimits, VideoRejected, probe_video, validate
from assets.ingest.proxy import make_proxy
from assets.logs import warn
from assets.uploads import UPLOADS_TABLE, upload_row
from resources.events import event, record_pipeline_events, utcnow
from resources.job_status import ACCEPTED, REJECTED, mark_job
from resources.lake import Lake
from resources.media import MediaStore
from resources.notifications import notify_user
from resources.schemas import INGESTED_VIDEO
from resources.settings import Settings
from resources.store.client import Store

STAGE = "M1"


def proxy_key(video_id: str) -> str:
    """Media key of a video's normalized proxy."""
    return f"proxy/{video_id}.mp4"


def ingest_limits(platform: Settings) -> IngestLimits:
    """M1's limits from the platform settings (size, duration, sides, pixels, frame rate)."""
    return IngestLimits(
        max_bytes=platform.max_upload_bytes,
        max_duration_ms=platform.max_duration_ms,
        min_duration_ms=platform.min_duration_ms,
        max_side=platform.max_video_side,
        max_pixels=platform.max_video_pixels,
        max_fps=platform.max_frame_rate,
    )


@dg.asset(group_name="M1_ingest", deps=[UPLOADS_TABLE], **SILVER_KW)
def ingested_video(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> pl.DataFrame:
    """One row per video: decoded-frame probe (container, codec, size, fps, frames, duration,
    bitrate, bytes), validation outcome and the normalized H.264 proxy's key.

    A video that fails probing or validation is not an error of the run: it gets
    ``status = 'rejected'`` with a readable reason, a ``VideoRejected`` event and a user
    notification, and the downstream stages skip it.

    The upload row is read from the store (``assets.uploads``), so the intake does not wait
    for the landing run that copies it into ``bronze/uploads``.
    """
    video_id = context.partition_key
    upload = upload_row(store, video_id)
    limits = ingest_limits(platform)
    started = time.perf_counter()
    row: dict = {"video_id": video_id, "user_id": upload["user_id"]}
    with media.local_file(upload["media_key"]) as raw_path:
        try:
            probe = probe_video(raw_path, limits)  # the header is checked before any decoding
            row.update(probe.to_dict())
            validate(probe, limits)
        except VideoRejected as rejected:
            return _reject(context, store, lake, row, rejected)
        key = proxy_key(video_id)
        with media.writable_file(key) as proxy_path:
            make_proxy(raw_path, proxy_path, max_side=platform.proxy_max_side)
            proxy = probe_video(proxy_path)
    row.update(
        status="accepted",
        proxy_key=key,
        proxy_width=proxy.width,
        proxy_height=proxy.height,
        proxy_fps=proxy.fps,
        ingest_ms=int((time.perf_counter() - started) * 1000),
        ingested_at=utcnow(),
    )
    mark_job(store, video_id, ACCEPTED)  # a job now (workspace GPU admission counts it)
    record_pipeline_events(
        lake,
        [
            event(
                "VideoIngested",
                video_id,
                STAGE,
                {
                    k: row[k]
                    for k in ("codec", "width", "height", "fps", "frame_count", "duration_ms", "proxy_key", "ingest_ms")
                },
            )
        ],
    )
    context.add_output_metadata(
        {
            "status": "accepted",
            "codec": row["codec"],
            "resolution": f"{row['width']}x{row['height']}",
            "fps": round(row["fps"], 3),
            "frames": row["frame_count"],
            "ingest_ms": row["ingest_ms"],
        }
    )
    return frame([row], INGESTED_VIDEO)


def _reject(context, store: Store, lake: Lake, row: dict, rejected: VideoRejected) -> pl.DataFrame:
    video_id = row["video_id"]
    row.update(status="rejected", reject_code=rejected.code, reject_reason=rejected.reason, ingested_at=utcnow())
    mark_job(store, video_id, REJECTED)
    record_pipeline_events(
        lake,
        [
            event("VideoRejected", video_id, STAGE, {"code": rejected.code, "reason": rejected.reason}),
            notify_user(
                store,
                STAGE,
                row["user_id"],
                video_id,
                "video_rejected",
                "Your video was rejected",
                rejected.reason,
                event_identity="rejected",
            ),
        ],
    )
    warn(
        context,
        f"video {video_id} rejected ({rejected.code}): {rejected.reason}",
        event_type="video_rejected",
        economic_impact_usd=0.0,  # refused before any provider ran
        urgency="low",
        operator_action="None for one video; check the intake checks if rejections of this code spike.",
        runbook="docs/runbooks/platform-logs.md#video_rejected",
        video_id=video_id,
        code=rejected.code,
    )
    context.add_output_metadata({"status": "rejected", "reason": rejected.reason})
    return frame([row], INGESTED_VIDEO)
