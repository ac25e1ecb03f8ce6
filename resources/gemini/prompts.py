"""The versioned prompts sent to Gemini.

A prompt's ``version`` goes up whenever its text or its output schema changes in a way that
could change an answer: the analysis cache is keyed by it, so a new version never serves an
answer made for the old one, and every recorded result names the version that produced it
(``Prompt.key``, e.g. ``content-analysis@v1``).

The instructions are the system instruction; the request's own data (catalogs, the uploader's
description, the template prompt) goes in the user turn, rendered by ``Prompt.render``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """One versioned prompt.

    Attributes:
        id: stable name, e.g. ``content-analysis``.
        version: bumped on any change that may change an answer.
        system: the system instruction.
        user: the user turn, a ``str.format`` template of the request's data.
    """

    id: str
    version: int
    system: str
    user: str

    @property
    def key(self) -> str:
        """``<id>@v<version>``: what results and cache entries record."""
        return f"{self.id}@v{self.version}"

    def render(self, **values: object) -> str:
        """The user turn with ``values`` filled in.

        Raises:
            KeyError: a placeholder has no value.
        """
        return self.user.format(**values)


ANALYSIS = Prompt(
    id="content-analysis",
    version=2,
    system=(
        "You analyse short example videos for a video-effects service. Describe only what is "
        "visible in the video. Split it into its shots in order and describe each. Name the "
        "dominant visual style using exactly one of the listed styles, the motion class and the "
        "camera and subject motion, and the looks from the listed detectable looks that the video "
        "shows. The video is an example: the uploader shows in it the effect they want made. In "
        "eligible_effect_types name the effect types from the catalog whose look the example "
        "shows (a warm grade, a cartoon look, slow motion...) or that the uploader's "
        "description asks for; none when it shows and asks for none of them. Say in "
        "description_use how the description shaped the answer. Answer in the JSON schema given."
    ),
    user=(
        "Styles (name: meaning):\n{styles}\n\n"
        "Detectable looks: {detected_effects}\n\n"
        "Effect catalog (type: name):\n{effects}\n\n"
        "Uploader's description: {description}"
    ),
)

REFINE = Prompt(
    id="prompt-refine",
    version=1,
    system=(
        "You write the prompt an AI video-effects provider receives. Start from the template "
        "prompt and adapt it to this video using its analysis: keep the effect and every "
        "parameter the template states, add what the analysis says about the scenes, style and "
        "motion when it helps the provider, remove nothing that constrains the output. One "
        "paragraph, no preamble. Answer in the JSON schema given."
    ),
    user=(
        "Effect: {effect_name} ({effect_type}), parameters: {params}\n\n"
        "Template prompt:\n{template_prompt}\n\n"
        "Video analysis:\n{analysis}"
    ),
)

JUDGE = Prompt(
    id="quality-judge",
    version=1,
    system=(
        "You judge the output of a video effect. You get frames of the reference (the input "
        "video) and frames of the output at the same instants. Score from 0 to 1 how well the "
        "output applies the requested effect while keeping the reference's content and "
        "composition: 1 = the effect is clearly and cleanly applied and nothing else changed; "
        "0.5 = applied but weak or with visible defects; 0 = not applied, or the content is "
        "lost. Give the reasons and your confidence from 0 to 1 (low when the frames do not "
        "let you tell). Answer in the JSON schema given."
    ),
    user="Effect: {effect_name} ({effect_type}), parameters: {params}",
)

#: Every prompt by id (for docs and records).
PROMPTS = {p.id: p for p in (ANALYSIS, REFINE, JUDGE)}
