"""M7 ``quality_scores``: the quality vector of every output, technical gate, composite,
comparative rank, and the execution's cost and margin → QualityEvaluated."""

import json
from contextlib import ExitStack

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.quality.score import rank_outputs, score_output
from economics.cost_model import cost_frame
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events
from resources.lake import Lake
from resources.media import MediaStore
from resources.schemas import QUALITY_SCORES
from resources.settings import Settings

STAGE = "M7"


@dg.asset(group_name="M7_quality", ins=silver_ins("provider_outputs", "test_batch", "ingested_video"), **SILVER_KW)
def quality_scores(
    context: dg.AssetExecutionContext,
    provider_outputs: pl.DataFrame,
    test_batch: pl.DataFrame,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
) -> pl.DataFrame:
    """Per output, against the proxy it was made from: fidelity (VMAF or SSIM per frame), artifacts,
    style adherence, temporal consistency, pHash distance, technical gate, composite and rank
    within its effect type, and the per-frame series. A failed or unreadable output is ``unknown``
    with confidence 0.
    """
    video = only_row(ingested_video, "ingested_video")
    params = dict(zip(test_batch["task_id"], test_batch["params"], strict=True))
    # A fallback task (M6: a ranked task's provider failed for good) is not in the batch; it
    # ran its effect type's parameters, which every task of that type shares.
    by_effect = dict(zip(test_batch["effect_type"], test_batch["params"], strict=True))
    for out in provider_outputs.iter_rows(named=True):
        params.setdefault(out["task_id"], by_effect.get(out["effect_type"], "{}"))
    # Each output's margin as if it were the one delivered: the job's one charge (its
    # reservation, on every test_batch row) against this task's cost (economics.revenue).
    job_price = int(test_batch["tokens_reserved"].max() or 0)
    prices = dict.fromkeys(catalog.prices(), job_price)
    costs = cost_frame(provider_outputs, catalog.rate_card(), prices, platform.token_usd_rate)
    rows = []
    with media.local_file(video["proxy_key"]) as proxy:
        for out in costs.iter_rows(named=True):
            with ExitStack() as stack:
                path = stack.enter_context(media.local_file(out["output_key"])) if out["output_key"] else None
                qv = score_output(proxy, path, out["effect_type"], json.loads(params[out["task_id"]]))
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
                    "cost_usd": out["cost_usd"],
                    "tokens_charged": out["tokens_charged"],
                    "margin": out["margin"],
                }
            )
    df = frame(rows, QUALITY_SCORES)
    ranks = {}
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
    context.add_output_metadata(
        {
            "outputs": df.height,
            "scored": int((df["status"] == "scored").sum()),
            "gate_passed": int(df["gate_passed"].fill_null(False).sum()),
        }
    )
    return df
