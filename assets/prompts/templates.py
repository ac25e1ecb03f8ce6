"""M4: one prompt per eligible effect type, rendered from versioned templates
(``data/prompt_templates.yaml``). Pure: analysis dict + catalogs in, rows out."""

from __future__ import annotations

import json

from resources.events import stable_id


class TemplateError(ValueError):
    """A template is missing for an eligible effect type, or names an unknown placeholder."""


def render_prompts(video_id: str, analysis: dict, effects: dict, templates: dict) -> list[dict]:
    """Render a prompt variant for every eligible effect type of ``analysis``.

    Args:
        video_id: partition key.
        analysis: a ``content_analysis`` row (``eligible_effect_types``, ``dominant_style``,
            ``motion_class``, ``scene_count``…).
        effects: effect catalog (effect type → entry with ``params``).
        templates: parsed prompt_templates.yaml.

    Returns:
        ``prompt_variants`` rows: video_id, variant_id, effect_type, template_id,
        template_version, prompt, params (JSON of the effect's params).

    Raises:
        TemplateError: no template for an eligible effect, or a placeholder with no value.
    """
    rows = []
    for effect_type in analysis["eligible_effect_types"]:
        tpl = templates["templates"].get(effect_type)
        if tpl is None:
            raise TemplateError(f"no prompt template for effect type {effect_type!r}")
        params = dict(effects[effect_type].get("params", {}))
        values = {**analysis, **params}
        try:
            prompt = " ".join(tpl["text"].format_map(values).split())
        except KeyError as exc:
            raise TemplateError(f"template {tpl['id']} v{tpl['version']}: no value for {exc}") from None
        rows.append(
            {
                "video_id": video_id,
                "variant_id": stable_id(video_id, effect_type, tpl["id"], tpl["version"], length=16),
                "effect_type": effect_type,
                "template_id": tpl["id"],
                "template_version": int(tpl["version"]),
                "prompt": prompt,
                "params": json.dumps(params, sort_keys=True),
            }
        )
    return rows
