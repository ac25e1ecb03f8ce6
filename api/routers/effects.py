"""``GET /v1/effects[/{slug}]``: the gallery of published effects."""

from __future__ import annotations

import json

import polars as pl
from fastapi import APIRouter, HTTPException

from api.deps import LakeDep, SettingsDep
from api.models import Effect
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, frame_page
from api.problems import problem_responses
from resources.media import media_url
from resources.services.gallery import gallery

router = APIRouter(tags=["effects"])


def _effect(r: dict, api_base_url: str) -> Effect:
    snapshot = json.loads(r["snapshot"])

    def url(key: str | None) -> str | None:
        return media_url(api_base_url, key) if key else None

    return Effect(
        slug=r["slug"],
        revision_id=r["revision_id"],
        content_hash=r["content_hash"],
        effect_type=r["effect_type"],
        provider_id=r["provider_id"],
        published_at=r["published_at"],
        preview_url=media_url(api_base_url, r["output_key"]),
        example_url=url(snapshot.get("example_key")),
        reference_url=url(snapshot.get("reference_key")),
        snapshot=snapshot,
    )


@router.get("/v1/effects", responses=problem_responses(400))
def list_effects(
    lake: LakeDep, settings: SettingsDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Effect]:
    """The gallery: published effects, newest first (a page)."""
    rows, next_cursor = frame_page(gallery(lake), [("published_at", True), ("slug", False)], cursor, limit)
    return Page[Effect](items=[_effect(r, settings.api_base_url) for r in rows], next_cursor=next_cursor)


@router.get("/v1/effects/{slug}", responses=problem_responses(404))
def get_effect(slug: str, lake: LakeDep, settings: SettingsDep) -> Effect:
    """One published effect by slug (its current pinned revision)."""
    rows = gallery(lake).filter(pl.col("slug") == slug)
    if rows.is_empty():
        raise HTTPException(404, f"no published effect {slug!r}")
    return _effect(rows.row(0, named=True), settings.api_base_url)
