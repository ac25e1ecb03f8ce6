"""Gemini through Google's ``google-genai`` SDK, as a plain client (no Dagster).

``client.GeminiClient`` (analysis, prompt refinement, judge), ``schemas`` (the structured
outputs), ``prompts`` (versioned prompts), ``pricing`` (usage → USD from
``data/gemini_prices.yaml``), ``cache`` (on-disk analysis cache), ``fallback`` (Gemini or local,
with the source of each field). See docs/gemini.md.
"""

from resources.gemini.client import (
    GeminiClient,
    GeminiError,
    GeminiInvalidResponse,
    GeminiUnavailable,
    MissingApiKey,
)
from resources.gemini.fallback import Outcome, merge_analysis, with_fallback
from resources.gemini.pricing import PriceTable, Usage
from resources.gemini.schemas import ContentAnalysisResult, JudgeVerdict, RefinedPrompt

__all__ = [
    "ContentAnalysisResult",
    "GeminiClient",
    "GeminiError",
    "GeminiInvalidResponse",
    "GeminiUnavailable",
    "JudgeVerdict",
    "MissingApiKey",
    "Outcome",
    "PriceTable",
    "RefinedPrompt",
    "Usage",
    "merge_analysis",
    "with_fallback",
]
