"""The gallery as the API, the dashboard and the effect runs see it: published effects, each
showing the revision its pin names, read from the transactional store (``resources/store/
revisions.py``; the lake's ``bronze/effect_revisions`` is the analytics copy).

``pinned_revision(store, lake, slug)`` is what an effect run uses: the revision it charges
and renders (its ``price_tokens``, ``provider_id``, ``params`` and ``render_spec``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from resources.lake import Lake
from resources.store.client import Store
from resources.store.revisions import Pinned


@dataclass(frozen=True)
class Revision:
    """One immutable revision of a gallery effect.

    Attributes:
        slug: the effect's URL name (``<effect-type>-<first 8 of the source video id>``).
        revision_id: ``r_`` + 24 hex (``resources.store.revisions.revision_id_for``).
        effect_type: catalog effect type, e.g. ``warm_grade``.
        provider_id: the provider that rendered it.
        params: the effect parameters it was rendered with (``{"strength": 0.6}``).
        price_tokens: the effect's list price when published (``data/effects.yaml``), tokens.
        content_hash: hex sha256 of its content (``assets/gallery/snapshot.py``).
        template_id / template_version: the prompt template it was made from.
        prompt: the prompt text.
        render_spec: how its preview was rendered (``resources/providers/render_spec.py``),
            None when the output predates render specs.
        output_key: media key of the task's output; ``preview_key`` its content-addressed
            published copy (``published/<sha256>.mp4``).
        snapshot: the published record (display name, media keys, quality, cost…).
        approval_id / source_video_id / created_by: the approval that published it, the job's
            video, the admin who approved it.
        created_at: when it was written (UTC).
        pinned_at: when the pin moved to it, for the pinned revision; else None.
    """

    slug: str
    revision_id: str
    effect_type: str
    provider_id: str
    params: dict[str, Any]
    price_tokens: int
    content_hash: str
    template_id: str = ""
    template_version: int = 0
    prompt: str = ""
    render_spec: dict[str, Any] | None = None
    output_key: str = ""
    preview_key: str = ""
    snapshot: dict[str, Any] = field(default_factory=dict)
    approval_id: str = ""
    source_video_id: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    pinned_at: datetime | None = None

    @property
    def pinned(self) -> bool:
        """True for a slug's pinned revision (as returned by ``pinned_revision``/``gallery``)."""
        return self.pinned_at is not None

    @property
    def template(self) -> str:
        """``<template_id>@v<version>``."""
        return f"{self.template_id}@v{self.template_version}"

    @classmethod
    def from_row(cls, row: dict, pinned_at: datetime | None = None) -> Revision:
        """From a store row of ``effect_revisions`` (JSON fields parsed)."""
        return cls(
            slug=row["slug"],
            revision_id=row["revision_id"],
            effect_type=row["effect_type"],
            provider_id=row["provider_id"],
            params=json.loads(row["params"]),
            price_tokens=int(row["price_tokens"]),
            content_hash=row["content_hash"],
            template_id=row["template_id"],
            template_version=int(row["template_version"]),
            prompt=row["prompt"],
            render_spec=json.loads(row["render_spec"]) if row["render_spec"] else None,
            output_key=row["output_key"],
            preview_key=row["preview_key"],
            snapshot=json.loads(row["snapshot"]),
            approval_id=row["approval_id"],
            source_video_id=row["source_video_id"],
            created_by=row["created_by"],
            created_at=row["created_at"],
            pinned_at=pinned_at if pinned_at is not None else row.get("pinned_at"),
        )


def pinned_revision(store: Store, lake: Lake | None, slug: str) -> Revision | None:
    """The revision ``slug``'s gallery entry shows now (its pin), or None when the slug was
    never published.

    Args:
        store: the transactional store (revisions and pins live there).
        lake: unused; kept so callers written against the lake-backed gallery keep working.
    """
    rows = store.pinned_revisions(slug)
    return Revision.from_row(rows[0]) if rows else None


def gallery(store: Store) -> list[Revision]:
    """Every published effect as its pinned revision, newest revision first (then slug)."""
    revisions = [Revision.from_row(r) for r in store.pinned_revisions()]
    return sorted(revisions, key=lambda r: (-(r.created_at.timestamp() if r.created_at else 0), r.slug))


def revisions(store: Store, slug: str, after_seq: int = 0, limit: int = 50) -> list[tuple[int, Revision]]:
    """(seq, revision) of ``slug``'s revisions in the order they were published, after the
    cursor ``after_seq``; the pinned one has ``pinned_at`` set."""
    current = pinned_revision(store, None, slug)
    out = []
    for row in store.revisions(slug, after_seq, limit):
        pinned_at = current.pinned_at if current and current.revision_id == row["revision_id"] else None
        out.append((row["seq"], Revision.from_row(row, pinned_at)))
    return out


def video_revision(store: Store, video_id: str) -> Revision | None:
    """The latest revision published from ``video_id``'s job (with ``pinned_at`` when it is
    the one its slug shows), or None."""
    rows = store.video_revisions(video_id)
    if not rows:
        return None
    latest = Revision.from_row(rows[-1])
    current = pinned_revision(store, None, latest.slug)
    if current is not None and current.revision_id == latest.revision_id:
        return current
    return latest


def pin(
    store: Store, slug: str, revision_id: str, admin: str, reason: str = "", expected_revision_id: str | None = None
) -> Pinned:
    """Move ``slug``'s pin to ``revision_id`` (``resources.store.revisions.pin``: rollback is
    pinning an older revision; the errors are the store's, each with its HTTP status)."""
    return store.pin_revision(slug, revision_id, admin, reason, expected_revision_id)
