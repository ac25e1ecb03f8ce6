"""M2 ``content_analysis`` → ContentAnalyzed. Also the gate: a rejected video, or one whose
analysis failed, stops here.

The local analysis always runs (it is what only a measurement can give: cuts, motion, colour,
texture); Gemini, when configured, names the style, the looks and the effect types and
describes the scenes (``resources.gemini.fallback``). The row records which field came from
where and why Gemini was not used."""

import json

import dagster as dg
import polars as pl

from assets.analysis.features import ContentAnalysis, analyze_video
from assets.analysis.targets import target_effects
from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.uploads import UPLOADS_TABLE, upload_field
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events
from resources.gemini.client import GeminiClient
from resources.gemini.fallback import merge_analysis, with_fallback
from resources.gemini.prompts import ANALYSIS
from resources.job_status import DONE, mark_job
from resources.lake import Lake
from resources.llm_costs import record_llm_cost
from resources.media import MediaStore
from resources.refunds import refund_and_notify
from resources.retry import transient_failures
from resources.schemas import CONTENT_ANALYSIS
from resources.store.client import Store
from resources.store.models import MAX_DESCRIPTION_CHARS

STAGE = "M2"
# Attempts of the local analysis before the video is given up as analysis_failed (the plan's
# "retried 3x"): a decode can fail on a momentary shortage (memory, a media store read), a
# file that fails three times will not pass a fourth.
ANALYSIS_ATTEMPTS = 3
ANALYSIS_PAUSE_S = 0.5
# Any failure of an attempt counts (a decoder error, PySceneDetect's VideoOpenFailure, a media
# store read, a bug): the plan gives the user an answer after three tries, never a stuck job.
ANALYSIS_ERRORS = (Exception,)
EVENT_FIELDS = (
    "scene_count",
    "motion_class",
    "temperature_class",
    "dominant_style",
    "detected_effects",
    "target_effect_types",
    "borderline",
    "analysis_ms",
    "analysis_source",
)


def upload_description(store: Store, video_id: str) -> str | None:
    """The uploader's description from the video's upload row in the store (None when there
    is none), cut to MAX_DESCRIPTION_CHARS."""
    raw = upload_field(store, video_id, "description")
    return raw.strip()[:MAX_DESCRIPTION_CHARS] or None if raw else None


@dg.asset(
    group_name="M2_analysis",
    output_required=False,
    ins=silver_ins("ingested_video"),
    deps=[UPLOADS_TABLE],
    **SILVER_KW,
)
def content_analysis(
    context: dg.AssetExecutionContext,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    catalog: dg.ResourceParam[Catalog],
    gemini: dg.ResourceParam[GeminiClient],
    store: dg.ResourceParam[Store],
):
    """Scenes (PySceneDetect), motion, colour and texture statistics, dominant style (taxonomy
    in ``data/style_taxonomy.yaml``), the looks the example shows and the target effect types
    the job builds from them and the uploader's description, with estimated parameters.

    Yields nothing for a rejected video, and for one whose analysis failed ANALYSIS_ATTEMPTS
    times (``AnalysisFailed``, the user told, the job refunded: nothing was reserved yet), so
    every downstream stage of the run is skipped.
    """
    video = only_row(ingested_video, "ingested_video")
    video_id = video["video_id"]
    if video["status"] != "accepted":
        context.log.info(f"skipping analysis: video {video_id} was rejected")
        return
    description = upload_description(store, video_id)
    taxonomy, effects = catalog.style_taxonomy(), catalog.effect_catalog()
    attempts = 0

    def attempt(path: str) -> ContentAnalysis:
        nonlocal attempts
        attempts += 1
        return analyze_video(path, video["proxy_fps"], taxonomy, effects, description=description)

    def log_retry(state) -> None:
        context.log.warning(f"analysis attempt {state.attempt_number} failed: {state.outcome.exception()}")

    with media.local_file(video["proxy_key"]) as path:
        try:
            policy = transient_failures(
                lambda e: isinstance(e, ANALYSIS_ERRORS), ANALYSIS_ATTEMPTS, ANALYSIS_PAUSE_S, log_retry
            )
            local = policy(attempt, path)
        except ANALYSIS_ERRORS as exc:
            _failed(context, store, lake, video, attempts, exc)
            return
        outcome = with_fallback(gemini, lambda g: g.analyze_video(path, description, taxonomy, effects["effects"]))
    record_llm_cost(lake, video_id, STAGE, outcome.usage)
    row, sources = merge_analysis(local.to_dict(), outcome.value)
    if outcome.value is not None:  # Gemini named the looks: the targets follow its names too
        targets = target_effects(
            row["detected_effects"], description, row, effects["effects"], outcome.value.eligible_effect_types
        )
        row["target_effect_types"] = [t.effect_type for t in targets]
        row["target_params"] = {t.effect_type: t.params for t in targets}
        row["target_reasons"] = {t.effect_type: t.reasons for t in targets}
        sources.update(dict.fromkeys(("target_effect_types", "target_params", "target_reasons"), "gemini"))
    row.update(
        video_id=video_id,
        description=description,
        analysis_source=outcome.source,
        field_sources=json.dumps(sources, sort_keys=True),
        fallback_reason=outcome.reason,
        gemini_model=gemini.model if gemini.enabled else None,
        prompt_version=ANALYSIS.key if gemini.enabled else None,
        analysis_attempts=attempts,
    )
    for key in ("style_scores", "target_params", "target_reasons", "scenes"):
        row[key] = json.dumps(row[key], sort_keys=True)
    payload = {k: row[k] for k in EVENT_FIELDS}
    record_pipeline_events(lake, [event("ContentAnalyzed", video_id, STAGE, payload)])
    yield dg.Output(
        frame([row], CONTENT_ANALYSIS),
        metadata={
            "dominant_style": row["dominant_style"],
            "scenes": row["scene_count"],
            "motion": row["motion_class"],
            "targets": ", ".join(row["target_effect_types"]) or "none",
            "source": outcome.source,
        },
    )


def _failed(context, store: Store, lake: Lake, video: dict, attempts: int, exc: Exception) -> None:
    """analysis_failed: the event, the user told, the job refunded (nothing is reserved before
    M5, so nothing is charged: the refund gives back 0 and says so)."""
    context.log.error(f"video {video['video_id']}: analysis failed {attempts} times: {exc}")
    refund_and_notify(
        store,
        lake,
        STAGE,
        "analysis failed",
        outcome="AnalysisFailed",
        details={"attempts": attempts, "error_class": type(exc).__name__, "error": str(exc)[:300]},
        user_id=video["user_id"],
        video_id=video["video_id"],
        kind="analysis_failed",
        title="We could not analyse your video",
        body="Your example video could not be analysed; nothing was charged ({tokens} tokens refunded).",
    )
    mark_job(store, video["video_id"], DONE)  # no GPU work will follow
