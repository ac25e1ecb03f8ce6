"""``GET /v1/effects[/{slug}]``: the gallery of published effects."""

from __future__ import annotations

import json

import polars as pl
from fastapi import APIRouter, HTTPException

from api.deps import LakeDep, SettingsDep
from api.models import Effect, ErrorDetail
from api.status import gallery
from resources.media import media_url

router = APIRouter(tags=["effects"])


def _effect(r: dict, api_base_url: str) -> Effect:
    return Effect(
        slug=r["slug"],
        revision_id=r["revision_id"],
        content_hash=r["content_hash"],
        effect_type=r["effect_type"],
        provider_id=r["provider_id"],
        published_at=r["published_at"],
        preview_url=media_url(api_base_url, r["output_key"]),
        snapshot=json.loads(r["snapshot"]),
    )


@router.get("/v1/effects")
def list_effects(lake: LakeDep, settings: SettingsDep) -> list[Effect]:
    """The gallery: published effects, newest first."""
    return [_effect(r, settings.api_base_url) for r in gallery(lake).iter_rows(named=True)]


@router.get("/v1/effects/{slug}", responses={404: {"model": ErrorDetail}})
def get_effect(slug: str, lake: LakeDep, settings: SettingsDep) -> Effect:
    """One published effect by slug (its current pinned revision)."""
    rows = gallery(lake).filter(pl.col("slug") == slug)
    if rows.is_empty():
        raise HTTPException(404, f"no published effect {slug!r}")
    return _effect(rows.row(0, named=True), settings.api_base_url)
