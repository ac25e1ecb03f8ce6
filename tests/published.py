"""A published gallery effect for tests that run effects without creating one first: the
``gallery_revisions`` row M10 writes when an admin approves."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from resources.lake import Lake
from resources.schemas import GALLERY_REVISIONS

SLUG = "warm-grade-v_abcdef"


def publish(
    lake: Lake,
    slug: str = SLUG,
    strength: float = 0.45,
    at: datetime | None = None,
    effect_type: str = "warm_grade",
    params: dict | None = None,
) -> None:
    """A published revision (warm grade by default), as M10 writes it."""
    params = {"strength": strength} if params is None else params
    snapshot = {"slug": slug, "effect_type": effect_type, "params": params}
    lake.append(
        GALLERY_REVISIONS,
        pl.DataFrame(
            [
                {
                    "video_id": "v_example",
                    "revision_id": f"rev-{strength}" if effect_type == "warm_grade" else f"rev-{slug}",
                    "slug": slug,
                    "approval_id": "a1",
                    "decision": "approve",
                    "effect_type": effect_type,
                    "provider_id": "ffmpeg-colortemp",
                    "task_id": "t1",
                    "snapshot": json.dumps(snapshot),
                    "content_hash": "c" * 64,
                    "published": True,
                    "output_key": "outputs/v_example/t1.mp4",
                    "published_at": at or datetime.now(UTC),
                }
            ]
        ),
    )
