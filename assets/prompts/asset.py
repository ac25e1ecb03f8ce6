"""M4 ``prompt_variants`` → PromptsGenerated."""

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.prompts.templates import render_prompts
from resources.catalog import Catalog
from resources.events import event, record_pipeline_events
from resources.lake import Lake
from resources.schemas import PROMPT_VARIANTS

STAGE = "M4"


@dg.asset(group_name="M4_prompts", ins=silver_ins("content_analysis"), **SILVER_KW)
def prompt_variants(
    context: dg.AssetExecutionContext,
    content_analysis: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    catalog: dg.ResourceParam[Catalog],
) -> pl.DataFrame:
    """A prompt per eligible effect type, from the versioned templates."""
    analysis = only_row(content_analysis, "content_analysis")
    rows = render_prompts(analysis["video_id"], analysis, catalog.effects(), catalog.prompt_templates())
    record_pipeline_events(
        lake,
        [
            event(
                "PromptsGenerated",
                analysis["video_id"],
                STAGE,
                {
                    "variants": [
                        {"effect_type": r["effect_type"], "template": f"{r['template_id']}@v{r['template_version']}"}
                        for r in rows
                    ]
                },
            )
        ],
    )
    context.add_output_metadata({"variants": len(rows)})
    return frame(rows, PROMPT_VARIANTS)
