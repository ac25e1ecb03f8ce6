"""M10 pure logic: the immutable gallery revision of an approved effect."""

from __future__ import annotations

import hashlib
import json


def slug_for(effect_type: str, video_id: str) -> str:
    """URL slug of the effect made from ``video_id``: ``<effect-type>-<first 8 of video id>``."""
    return f"{effect_type.replace('_', '-')}-{video_id[:8]}"


def revision(snapshot: dict) -> tuple[str, str]:
    """(revision_id, content_hash) of a snapshot: sha256 of its canonical JSON.

    The same content always yields the same revision (re-publishing is a no-op); any change
    yields a new one, so a published revision is immutable by construction.
    """
    content_hash = hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()
    return content_hash[:20], content_hash
