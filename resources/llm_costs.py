"""A job's cost lines for paid calls outside the providers (Gemini), in the lake's
``bronze/llm_costs``: one row per call, keyed so that a re-run stage writes each line once."""

from __future__ import annotations

import polars as pl

from resources.events import stable_id, utcnow
from resources.gemini.pricing import Usage
from resources.lake import Lake
from resources.schemas import LLM_COSTS, conform


def record_llm_cost(lake: Lake, video_id: str, stage: str, usage: Usage | None, identity: str = "") -> dict | None:
    """Append ``usage.cost_line()`` as the job's cost line (``line_id`` = stable id of video,
    stage, operation and ``identity``, e.g. a task id for the judge); nothing for None.

    Returns:
        The row written (or already there), or None when there was no usage.
    """
    if usage is None:
        return None
    line = usage.cost_line()
    row = {
        "line_id": stable_id("llm", video_id, stage, line["operation"], identity),
        "correlation_id": video_id,
        "stage": stage,
        **{k: line[k] for k in ("kind", "provider", "model", "operation", "prompt_version", "requests")},
        **{k: line[k] for k in ("prompt_tokens", "output_tokens", "usd", "cache_hit")},
        "recorded_at": utcnow(),
    }
    lake.append(LLM_COSTS, conform(pl.DataFrame([row]), LLM_COSTS))
    return row
