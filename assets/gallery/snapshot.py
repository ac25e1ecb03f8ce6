"""M10 pure logic: what a gallery revision is made of, and its content hash."""

from __future__ import annotations

from typing import Any

from resources.hashing import json_sha256


def slug_for(effect_type: str, video_id: str) -> str:
    """URL slug of the effect made from ``video_id``: ``<effect-type>-<first 8 of video id>``."""
    return f"{effect_type.replace('_', '-')}-{video_id[:8]}"


def revision_content(
    *,
    slug: str,
    effect_type: str,
    provider_id: str,
    params: dict[str, Any],
    prompt: str,
    template: str,
    workflow_hash: str | None,
    media: dict[str, str],
) -> dict[str, Any]:
    """What a revision shows and does — the part its content hash covers: the effect, its
    provider, parameters, prompt and template (``id@vN``), the render's workflow hash
    (``render_spec.workflow_hash``; None when unrecorded) and its media as content-addressed
    keys (``published/<sha256>.mp4``: preview, example, reference), so the bytes are covered.

    Left out on purpose: who approved it and when, the approval id, quality scores, cost and
    margin — a re-run that renders the same thing is the same revision however it was
    measured or priced.
    """
    return {
        "slug": slug,
        "effect_type": effect_type,
        "provider_id": provider_id,
        "params": params,
        "prompt": prompt,
        "template": template,
        "workflow_hash": workflow_hash,
        "media": dict(media),
    }


def content_hash(content: dict[str, Any]) -> str:
    """Hex sha256 of ``content``'s canonical JSON (``resources.hashing.json_sha256``): the same
    content always hashes the same (a re-publication is then a no-op), any change differs."""
    return json_sha256(content)
