"""M4: one prompt per target effect type, rendered from versioned templates
(``data/prompt_templates.yaml``). Pure: analysis dict + catalogs in, rows out.

A target whose own template is missing or cannot be rendered (a placeholder with no value) gets
the ``generic`` template instead, and the row records why (``template_error``): a wording
problem never stops the job."""

from __future__ import annotations

import json

from resources.events import stable_id


class TemplateError(ValueError):
    """A template is missing for an effect type, or names an unknown placeholder."""


def target_params(analysis: dict, effect_type: str, effects: dict) -> dict:
    """The parameters of ``effect_type`` for this job: M2's estimates (``target_params``, JSON)
    when it has them, else the catalog defaults."""
    estimated = json.loads(analysis.get("target_params") or "{}")
    return dict(estimated.get(effect_type) or effects[effect_type].get("params", {}))


def render(tpl: dict, values: dict) -> str:
    """``tpl['text']`` with ``values`` filled in, whitespace collapsed.

    Raises:
        TemplateError: a placeholder has no value.
    """
    try:
        return " ".join(tpl["text"].format_map(values).split())
    except KeyError as exc:
        raise TemplateError(f"template {tpl['id']} v{tpl['version']}: no value for {exc}") from None


def render_prompts(video_id: str, analysis: dict, effects: dict, templates: dict) -> list[dict]:
    """Render a prompt variant for every target effect type of ``analysis``.

    Args:
        video_id: partition key.
        analysis: a ``content_analysis`` row (``target_effect_types``, ``target_params``,
            ``dominant_style``, ``motion_class``, ``scene_count``…).
        effects: effect catalog (effect type → entry with ``params``, ``display_name``).
        templates: parsed prompt_templates.yaml (``templates`` by effect type, ``generic``).

    Returns:
        ``prompt_variants`` rows: video_id, variant_id, effect_type, template_id,
        template_version, prompt, params (JSON), template_error (None, or why the generic
        template was used), prompt_source ``local``.

    Raises:
        TemplateError: the generic template is missing or cannot be rendered either.
    """
    rows = []
    for effect_type in analysis["target_effect_types"]:
        params = target_params(analysis, effect_type, effects)
        values = {
            **analysis,
            **params,
            "effect_type": effect_type,
            "display_name": effects[effect_type].get("display_name", effect_type),
            "params_text": json.dumps(params, sort_keys=True),
        }
        tpl, error = templates["templates"].get(effect_type), None
        try:
            if tpl is None:
                raise TemplateError(f"no prompt template for effect type {effect_type!r}")
            prompt = render(tpl, values)
        except TemplateError as exc:
            tpl, error = templates.get("generic"), str(exc)
            if tpl is None:
                raise TemplateError(f"{exc}, and no generic template") from None
            prompt = render(tpl, values)
        rows.append(
            {
                "video_id": video_id,
                "variant_id": stable_id(video_id, effect_type, tpl["id"], tpl["version"], length=16),
                "effect_type": effect_type,
                "template_id": tpl["id"],
                "template_version": int(tpl["version"]),
                "prompt": prompt,
                "params": json.dumps(params, sort_keys=True),
                "prompt_source": "local",
                "template_error": error,
            }
        )
    return rows
