"""A published gallery effect for tests that run effects without creating one first: the
revision and pin M10 writes in the store when an admin approves (``Store.publish_revision``)."""

from __future__ import annotations

from datetime import datetime

from resources.hashing import json_sha256
from resources.store.client import Store

SLUG = "warm-grade-v_abcdef"
PRICES = {"warm_grade": 2, "cartoon": 4}  # data/effects.yaml


def publish(
    store: Store,
    slug: str = SLUG,
    strength: float = 0.45,
    at: datetime | None = None,
    effect_type: str = "warm_grade",
    params: dict | None = None,
) -> str:
    """Publish a revision (a warm grade by default) as M10 does and return its id; new content
    on a slug moves its pin to it."""
    params = {"strength": strength} if params is None else params
    content = {"slug": slug, "effect_type": effect_type, "params": params}
    published = store.publish_revision(
        {
            "slug": slug,
            "effect_type": effect_type,
            "provider_id": "ffmpeg-colortemp",
            "content_hash": json_sha256(content),
            "params": params,
            "template_id": "t",
            "template_version": 1,
            "prompt": "p",
            "price_tokens": PRICES[effect_type],
            "snapshot": content,
            "render_spec": None,
            "output_key": "outputs/v_example/t1.mp4",
            "preview_key": "outputs/v_example/t1.mp4",
            "approval_id": "a1",
            "source_video_id": "v_example",
            "created_by": "admin",
        },
        at,
    )
    return published.revision["revision_id"]
