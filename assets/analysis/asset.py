"""M2 ``content_analysis`` → ContentAnalyzed. Also the gate: a rejected video stops here."""

import json

import dagster as dg
import polars as pl

from assets.analysis.features import analyze_video
from assets.common import SILVER_KW, frame, only_row, silver_ins
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events
from resources.lake import Lake
from resources.media import MediaStore
from resources.schemas import CONTENT_ANALYSIS

STAGE = "M2"


@dg.asset(group_name="M2_analysis", output_required=False, ins=silver_ins("ingested_video"), **SILVER_KW)
def content_analysis(
    context: dg.AssetExecutionContext,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    catalog: dg.ResourceParam[Catalog],
):
    """Scenes (PySceneDetect), motion level, color statistics, dominant style (taxonomy in
    ``data/style_taxonomy.yaml``), detected effects and eligible effect types of the proxy.

    Yields nothing for a rejected video, so every downstream stage of the run is skipped.
    """
    video = only_row(ingested_video, "ingested_video")
    if video["status"] != "accepted":
        context.log.info(f"skipping analysis: video {video['video_id']} was rejected")
        return
    with media.local_file(video["proxy_key"]) as path:
        result = analyze_video(path, video["proxy_fps"], catalog.style_taxonomy(), catalog.effect_catalog())
    row = {"video_id": video["video_id"], **result.to_dict()}
    row["style_scores"] = json.dumps(row["style_scores"], sort_keys=True)
    record_pipeline_events(
        lake,
        [
            event(
                "ContentAnalyzed",
                video["video_id"],
                STAGE,
                {
                    k: row[k]
                    for k in (
                        "scene_count",
                        "motion_class",
                        "temperature_class",
                        "dominant_style",
                        "detected_effects",
                        "target_effect_types",
                        "borderline",
                        "analysis_ms",
                    )
                },
            )
        ],
    )
    yield dg.Output(
        frame([row], CONTENT_ANALYSIS),
        metadata={
            "dominant_style": row["dominant_style"],
            "scenes": row["scene_count"],
            "motion": row["motion_class"],
            "targets": ", ".join(row["target_effect_types"]) or "none",
        },
    )
