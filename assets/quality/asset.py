"""M7 ``quality_scores``: the quality vector of every output, technical gate, composite,
comparative rank, and the execution's cost and margin → QualityEvaluated."""

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.execution.asset import PENDING
from assets.quality.score import (
    QualityVector,
    ScoredFrames,
    rank_outputs,
    score_output_with_frames,
    scoring_failed,
    with_judge,
)
from assets.quality.style import LOOK_FEATURES
from economics.cost_model import cost_frame
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events
from resources.gemini.client import GeminiClient
from resources.gemini.fallback import with_fallback
from resources.gemini.pricing import Usage
from resources.lake import Lake
from resources.llm_costs import record_llm_cost
from resources.media import MediaStore
from resources.schemas import QUALITY_SCORES
from resources.settings import Settings

STAGE = "M7"


def example_looks(analysis: dict) -> dict[str, dict[str, float]]:
    """Effect type → the example's look (``style.LOOK_FEATURES``) for the targets the example
    shows (M2's ``target_reasons`` with an ``example:`` reason); a target only asked for in
    words is judged by the effect-specific adherence instead."""
    reasons = json.loads(analysis.get("target_reasons") or "{}")
    look = {k: analysis.get(k) for k in LOOK_FEATURES}
    if any(v is None for v in look.values()):
        return {}
    return {t: look for t, why in reasons.items() if any(r.startswith("example:") for r in why)}


def assess(
    proxy: str, path: str | None, effect_type: str, params: dict, example_look
) -> tuple[QualityVector, ScoredFrames, str | None]:
    """``score_output_with_frames``, with a failure of the scoring itself (not of the output)
    turned into ``scoring_failed``'s unknown vector and its reason (the plan's "quality
    failure")."""
    try:
        qv, frames = score_output_with_frames(proxy, path, effect_type, params, example_look=example_look)
        return qv, frames, None
    except Exception as exc:  # noqa: BLE001 - a scoring bug must not cost the user a delivered output
        return scoring_failed(exc), ScoredFrames([], []), f"{type(exc).__name__}: {exc}"[:500]


def judged(gemini: GeminiClient, qv: QualityVector, frames: ScoredFrames, effect_type: str, effect: dict):
    """``qv`` with the vision judge's verdict when Gemini is configured and the output was
    scored (``with_judge``), and the call's usage (None when no call was made). The judge sees
    the sample frames the vector was measured on (the client sends ``judge_max_frames`` of
    them, spread evenly): no video is decoded again for it."""
    if not gemini.enabled or qv.status != "scored" or not frames.output:
        return qv, None
    outcome = with_fallback(gemini, lambda g: g.judge(frames.reference, frames.output, effect_type, effect))
    if outcome.value is None:
        return qv, outcome.usage
    return with_judge(qv, outcome.value.score, outcome.value.confidence), outcome.usage


@dg.asset(
    group_name="M7_quality",
    # Nothing while some output is still rendering remotely: the intake run evaluates only a
    # video whose tasks all finished inline; the others are evaluated after their collect.
    output_required=False,
    ins=silver_ins("provider_outputs", "test_batch", "ingested_video", "content_analysis"),
    **SILVER_KW,
)
def quality_scores(
    context: dg.AssetExecutionContext,
    provider_outputs: pl.DataFrame,
    test_batch: pl.DataFrame,
    ingested_video: pl.DataFrame,
    content_analysis: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
    gemini: dg.ResourceParam[GeminiClient],
) -> Iterator[dg.Output[pl.DataFrame]]:
    """Per output, against the input it was made from (the job's reference clip): fidelity
    (VMAF or SSIM per frame), artifacts, style adherence (closeness to the example's look when
    the example shows the effect), temporal consistency, pHash distance, technical gate,
    composite (with the vision judge's small weight when Gemini is configured) and rank within
    its effect type, and the per-frame series. A failed or unreadable output is ``unknown`` with
    confidence 0; so is one whose scoring raised (``quality_error``), which stays usable.

    Yields nothing (and the run skips ``best_result`` and ``approval_requests``) while an
    output is ``pending``: a remote task still rendering. ``collect_job`` stores it and
    evaluates the video then.
    """
    if (provider_outputs["status"] == PENDING).any():
        context.log.info("remote outputs still pending: evaluated once they are collected")
        return
    video = only_row(ingested_video, "ingested_video")
    looks = example_looks(only_row(content_analysis, "content_analysis"))
    effects = catalog.effects()
    params = dict(zip(test_batch["task_id"], test_batch["params"], strict=True))
    # A fallback task (M6: a ranked task's provider failed for good) is not in the batch; it
    # ran its effect type's parameters, which every task of that type shares, on the same input.
    by_effect = dict(zip(test_batch["effect_type"], test_batch["params"], strict=True))
    input_keys = dict(zip(test_batch["task_id"], test_batch["input_key"], strict=True))
    input_by_effect = dict(zip(test_batch["effect_type"], test_batch["input_key"], strict=True))
    for out in provider_outputs.iter_rows(named=True):
        params.setdefault(out["task_id"], by_effect.get(out["effect_type"], "{}"))
        input_keys.setdefault(out["task_id"], input_by_effect.get(out["effect_type"]))
    # Each output's margin as if it were the one delivered: the job's one charge (its
    # reservation, on every test_batch row) against this task's cost (economics.revenue).
    job_price = int(test_batch["tokens_reserved"].max() or 0)
    prices = dict.fromkeys(catalog.prices(), job_price)
    costs = cost_frame(provider_outputs, catalog.rate_card(), prices, platform.token_usd_rate)
    outputs = list(costs.iter_rows(named=True))

    def score(out: dict, reference: str) -> tuple[QualityVector, str | None, Usage | None]:
        effect_type, task_params = out["effect_type"], json.loads(params[out["task_id"]])
        with ExitStack() as stack:
            path = stack.enter_context(media.local_file(out["output_key"])) if out["output_key"] else None
            qv, frames, error = assess(reference, path, effect_type, task_params, looks.get(effect_type))
            effect = {**effects.get(effect_type, {}), "params": task_params}
            qv, usage = judged(gemini, qv, frames, effect_type, effect)
        return qv, error, usage

    with ExitStack() as inputs:
        opened: dict[str, str] = {}
        for out in outputs:
            key = input_keys.get(out["task_id"]) or video["proxy_key"]
            if key not in opened:
                opened[key] = inputs.enter_context(media.local_file(key))
        references = [opened[input_keys.get(o["task_id"]) or video["proxy_key"]] for o in outputs]
        # The outputs are scored side by side (as M6 ran them): each is ffmpeg's libvmaf in a
        # child process plus PyAV / NumPy / OpenCV work that releases the GIL, so a video's
        # first preview waits for its slowest output rather than for the sum of them.
        with ThreadPoolExecutor(max(1, min(platform.max_parallel_tasks, len(outputs)))) as pool:
            scored = list(pool.map(score, outputs, references))
    rows = []
    for out, (qv, error, usage) in zip(outputs, scored, strict=True):
        # One writer at a time into the lake: the LLM cost lines after the pool, in order.
        record_llm_cost(lake, out["video_id"], STAGE, usage, identity=out["task_id"])
        if error:
            context.log.warning(f"task {out['task_id']}: quality scoring failed ({error}); kept as unknown")
        q = qv.to_dict()
        rows.append(
            {
                "video_id": out["video_id"],
                "task_id": out["task_id"],
                "effect_type": out["effect_type"],
                "provider_id": out["provider_id"],
                # The whole vector; its measurements as JSON (frame rejects a field the
                # table does not declare, so a new one cannot be dropped silently).
                **q,
                "measurements": json.dumps(q["measurements"], sort_keys=True),
                "quality_error": error,
                "cost_usd": out["cost_usd"],
                "tokens_charged": out["tokens_charged"],
                "margin": out["margin"],
            }
        )
    df = frame(rows, QUALITY_SCORES)
    ranks: dict[str, int] = {}
    for _, part in df.group_by("effect_type"):
        ranks.update(zip(part["task_id"], rank_outputs(part["composite"].to_list()), strict=True))
    df = df.with_columns(rank=pl.col("task_id").replace_strict(ranks, return_dtype=pl.Int64))
    record_pipeline_events(
        lake,
        [
            event(
                "QualityEvaluated",
                video["video_id"],
                STAGE,
                {
                    "outputs": [
                        {
                            "task_id": r["task_id"],
                            "provider_id": r["provider_id"],
                            "effect_type": r["effect_type"],
                            "composite": r["composite"],
                            "gate_passed": r["gate_passed"],
                        }
                        for r in df.iter_rows(named=True)
                    ]
                },
            )
        ],
    )
    yield dg.Output(
        df,
        metadata={
            "outputs": df.height,
            "scored": int((df["status"] == "scored").sum()),
            "gate_passed": int(df["gate_passed"].fill_null(False).sum()),
        },
    )
