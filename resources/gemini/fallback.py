"""Gemini when it can, the local analysis when it cannot — and which one each field came from.

``with_fallback`` runs one client operation and never raises a ``GeminiError``: it returns an
``Outcome`` whose ``value`` is None (with the ``reason``) when there is no API key, when the
API kept failing after the retries, or when its answer did not validate. The caller then runs
its local code and records ``source = "local"`` with that reason.

``merge_analysis`` is M2's policy for mixing the two: what only a measurement can say (cuts,
motion level, color and texture statistics, style scores, the parameter estimates) stays
local; the names (dominant style, motion class, detected looks) and the descriptions come from
Gemini when it answered. The effect types Gemini names are evidence for the job's targets,
which M2 derives after the merge (``assets.analysis.targets.target_effects``). The result maps
every field to its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from resources.gemini.client import GeminiClient, GeminiError
from resources.gemini.pricing import Usage
from resources.gemini.schemas import ContentAnalysisResult

T = TypeVar("T")
Source = Literal["gemini", "local"]

#: content_analysis fields Gemini answers for when it is available.
GEMINI_FIELDS = ("dominant_style", "motion_class", "detected_effects")
#: Fields only Gemini gives (None / empty when the analysis is local).
GEMINI_ONLY_FIELDS = ("summary", "scenes", "motion_pattern", "description_use")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one attempt to use Gemini gave.

    Attributes:
        value: the operation's result, or None when the caller must use its local code.
        usage: tokens and USD spent (also on an answer that failed validation), or None when
            nothing was spent.
        source: ``gemini`` when ``value`` is set, else ``local``.
        reason: why Gemini was not used (None when it was).
    """

    value: T | None
    usage: Usage | None
    source: Source
    reason: str | None


def with_fallback(client: GeminiClient | None, call: Callable[[GeminiClient], tuple[T, Usage]]) -> Outcome[T]:
    """Run ``call(client)`` (e.g. ``lambda g: g.analyze_video(...)``) unless Gemini cannot be
    used.

    Args:
        client: the Gemini client, or None when none is configured.
        call: the operation; returns ``(result, Usage)``.

    Returns:
        ``Outcome(result, usage, "gemini", None)``, or ``Outcome(None, usage_or_None, "local",
        reason)`` when there is no client or key (no request made) or the operation raised a
        ``GeminiError``. Other exceptions (a bug, an unreadable file) propagate.
    """
    if client is None or not client.enabled:
        return Outcome(None, None, "local", "GOOGLE_API_KEY is not set")
    try:
        value, usage = call(client)
    except GeminiError as exc:
        return Outcome(None, exc.usage, "local", exc.reason)
    return Outcome(value, usage, "gemini", None)


def merge_analysis(
    local: Mapping[str, Any], gemini: ContentAnalysisResult | None
) -> tuple[dict[str, Any], dict[str, Source]]:
    """M2's row from the local analysis and, when it answered, Gemini's.

    Args:
        local: the local analysis (``assets.analysis.features.ContentAnalysis.to_dict()``).
        gemini: Gemini's result, or None (the local values stand).

    Returns:
        (row, sources): ``row`` is ``local`` with GEMINI_FIELDS replaced by Gemini's answer
        and GEMINI_ONLY_FIELDS added (``scenes`` as a list of ``{start_s, end_s,
        description}``; None / [] without Gemini); ``sources`` maps every field of ``row`` to
        ``gemini`` or ``local``.
    """
    row = dict(local)
    sources: dict[str, Source] = dict.fromkeys(row, "local")
    if gemini is None:
        row.update({"summary": None, "scenes": [], "motion_pattern": None, "description_use": None})
        sources.update(dict.fromkeys(GEMINI_ONLY_FIELDS, "local"))
        return row, sources
    row.update(
        {
            "dominant_style": gemini.dominant_style,
            "motion_class": gemini.motion_class,
            "detected_effects": list(gemini.detected_effects),
            "summary": gemini.summary,
            "scenes": [scene.model_dump() for scene in gemini.scenes],
            "motion_pattern": gemini.motion_pattern,
            "description_use": gemini.description_use,
        }
    )
    sources.update(dict.fromkeys((*GEMINI_FIELDS, *GEMINI_ONLY_FIELDS), "gemini"))
    return row, sources
