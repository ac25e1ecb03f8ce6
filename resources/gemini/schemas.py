"""The structured outputs asked of Gemini, as pydantic models.

Each model is sent as the request's ``response_schema`` (google-genai turns it into the API's
OpenAPI-subset schema: types, ``enum``, ``minimum`` / ``maximum``, ``required``) and the answer
is validated against the same model, so what the stages receive always has these shapes and
ranges; an answer that does not validate is a failed call (``GeminiInvalidResponse``), never
a partly-filled result.

The analysis names styles, detected looks and effect types from the shipped catalogs
(``data/style_taxonomy.yaml``, ``data/effects.yaml``); ``analysis_schema`` builds a subclass of
``ContentAnalysisResult`` whose fields are enums of exactly those names, so the model can only
answer with names the platform knows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

#: motion_class values; the same classes as M2's local measure (assets/analysis/features.py
#: MOTION_CLASSES), so either source fills the same column.
MOTION_CLASSES = ("static", "low", "medium", "high")


class Scene(BaseModel):
    """One shot of the video.

    Attributes:
        start_s / end_s: the shot's start and end, seconds from the start of the video.
        description: what happens in it, one or two sentences.
    """

    start_s: float = Field(ge=0, description="Start of the shot, seconds from the start of the video.")
    end_s: float = Field(ge=0, description="End of the shot, seconds from the start of the video.")
    description: str = Field(min_length=1, description="What happens in the shot, one or two sentences.")


class ContentAnalysisResult(BaseModel):
    """Gemini's content analysis of an example video (M2, the ``ContentAnalyzed`` fields).

    Attributes:
        summary: the video in one or two sentences.
        scenes: the shots in order, each with a description (at least one).
        dominant_style: a style of ``data/style_taxonomy.yaml``.
        style_rationale: why that style, one sentence.
        motion_class: ``static`` | ``low`` | ``medium`` | ``high`` (MOTION_CLASSES).
        motion_pattern: camera and subject motion in words (e.g. "handheld, subject walking
            left to right").
        detected_effects: looks of the taxonomy's ``detected_effects`` already present.
        eligible_effect_types: effect types of ``data/effects.yaml`` whose look the example
            shows or the description asks for (M2 makes them targets of the job).
        description_use: how the uploader's description shaped the answer ("" when there was
            none).
        confidence: 0..1, the model's own confidence in the analysis.

    ``analysis_schema`` narrows the name fields to enums of the catalogs' names.
    """

    summary: str = Field(min_length=1)
    scenes: list[Scene] = Field(min_length=1)
    dominant_style: str
    style_rationale: str
    motion_class: Literal["static", "low", "medium", "high"]
    motion_pattern: str
    detected_effects: list[str]
    eligible_effect_types: list[str]
    description_use: str
    confidence: float = Field(ge=0, le=1)


def _name_list(values: tuple[str, ...]) -> Any:
    """A list of names from ``values`` (a Literal enum); with no names, a list that must be empty."""
    if not values:
        return Annotated[list[str], Field(max_length=0)]
    name: Any = Literal[values]
    return list[name]


@lru_cache(maxsize=16)
def analysis_schema(
    styles: tuple[str, ...], detected_effects: tuple[str, ...], effect_types: tuple[str, ...]
) -> type[ContentAnalysisResult]:
    """``ContentAnalysisResult`` with ``dominant_style``, ``detected_effects`` and
    ``eligible_effect_types`` restricted to the given names (enums in the response schema).

    Raises:
        ValueError: ``styles`` is empty (the analysis must name a style).
    """
    if not styles:
        raise ValueError("the style taxonomy names no style")
    style: Any = Literal[styles]  # a type built at run time: mypy cannot check it statically
    return create_model(
        "ContentAnalysisResult",
        __base__=ContentAnalysisResult,
        dominant_style=(style, ...),
        detected_effects=(_name_list(detected_effects), ...),
        eligible_effect_types=(_name_list(effect_types), ...),
    )


class RefinedPrompt(BaseModel):
    """M4: the template's prompt rewritten for this video.

    Attributes:
        prompt: the refined prompt, one paragraph (1..2000 characters).
        changes: what was changed from the template and why, one sentence.
    """

    prompt: str = Field(min_length=1, max_length=2000)
    changes: str


class JudgeVerdict(BaseModel):
    """M7: a vision model's judgement of one output against its reference.

    Attributes:
        score: 0..1, how well the output applies the effect while keeping the content.
        rationale: the reasons, two or three sentences.
        confidence: 0..1, the judge's confidence in its score.

    A verdict is one quality dimension among the measured ones; it never decides alone.
    """

    score: float = Field(ge=0, le=1)
    rationale: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)
