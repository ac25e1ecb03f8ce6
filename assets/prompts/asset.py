"""M4 ``prompt_variants`` → PromptsGenerated."""

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.prompts.templates import render_prompts
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events
from resources.gemini.client import GeminiClient
from resources.gemini.fallback import with_fallback
from resources.lake import Lake
from resources.llm_costs import record_llm_cost
from resources.schemas import PROMPT_VARIANTS

STAGE = "M4"


@dg.asset(group_name="M4_prompts", ins=silver_ins("content_analysis"), **SILVER_KW)
def prompt_variants(
    context: dg.AssetExecutionContext,
    content_analysis: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    catalog: dg.ResourceParam[Catalog],
    gemini: dg.ResourceParam[GeminiClient],
) -> pl.DataFrame:
    """A prompt per target effect type, from the versioned templates (the generic one when the
    effect's own fails), refined by Gemini when it is configured (``prompt_source`` gemini; the
    template's prompt, ``local``, when it is not or its call fails)."""
    analysis = only_row(content_analysis, "content_analysis")
    video_id = analysis["video_id"]
    effects = catalog.effects()
    rows = render_prompts(video_id, analysis, effects, catalog.prompt_templates())
    for r in rows:
        if r["template_error"]:
            context.log.warning(f"{r['effect_type']}: generic template used ({r['template_error']})")
        effect = {**effects[r["effect_type"]], "params": r["params"]}
        outcome = with_fallback(
            gemini, lambda g, r=r, effect=effect: g.refine_prompt(r["prompt"], analysis, r["effect_type"], effect)
        )
        record_llm_cost(lake, video_id, STAGE, outcome.usage, identity=r["effect_type"])
        if outcome.value is not None:
            r["prompt"], r["prompt_source"] = outcome.value, "gemini"
    record_pipeline_events(
        lake,
        [
            event(
                "PromptsGenerated",
                video_id,
                STAGE,
                {
                    "variants": [
                        {
                            "effect_type": r["effect_type"],
                            "template": f"{r['template_id']}@v{r['template_version']}",
                            "prompt_source": r["prompt_source"],
                            "template_error": r["template_error"],
                        }
                        for r in rows
                    ]
                },
            )
        ],
    )
    context.add_output_metadata({"variants": len(rows)})
    return frame(rows, PROMPT_VARIANTS)
