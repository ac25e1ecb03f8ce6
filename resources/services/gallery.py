"""The gallery: the published effects, and the revision of an effect a run is pinned to.

``pinned_revision`` is the one way any caller (the run route, the runs' economics) learns
which revision of a published effect a new run uses and what it costs. Today it reads the
current published gallery (silver ``gallery_revisions``: the newest published revision of a
slug) and prices it from ``data/effects.yaml``; a store-backed publish pin may replace its
body, keeping its signature and its ``Revision``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import polars as pl

from resources.catalog import Catalog
from resources.lake import Lake
from resources.schemas import GALLERY_REVISIONS
from resources.settings import get_settings
from resources.store.client import Store


def gallery(lake: Lake) -> pl.DataFrame:
    """Published effects, newest revision per slug first (``gallery_revisions`` rows)."""
    return (
        lake.read(GALLERY_REVISIONS, pl.col("published").fill_null(False))
        .sort("published_at", descending=True)
        .unique("slug", keep="first", maintain_order=True)
    )


@dataclass(frozen=True)
class Revision:
    """The revision of a published effect that new runs of its slug use.

    Attributes:
        slug: the gallery slug (``warm-grade-v_1234ab``).
        revision_id: the immutable revision's id (what a run records it used).
        effect_type: the catalog effect type it applies.
        provider_id: the provider that rendered the published preview (runs are routed by
            the manifest for ``effect_type``, not pinned to it).
        params: the effect's parameters as published (a run's defaults), JSON-able.
        price_tokens: what one run costs the user, tokens (> 0 for every catalog effect).
        content_hash: sha256 of the revision's snapshot.
    """

    slug: str
    revision_id: str
    effect_type: str
    provider_id: str
    params: dict = field(hash=False)
    price_tokens: int
    content_hash: str


def pinned_revision(store: Store, lake: Lake, slug: str) -> Revision | None:
    """The revision new runs of ``slug`` use, or None when no published effect has this slug.

    Here: the newest published revision of the slug in the gallery, its parameters from its
    snapshot and its price the effect type's ``price_tokens`` in ``data/effects.yaml`` (the
    catalog of the environment's settings). ``store`` is where a publish pin lives once pins
    are kept in the store; this body does not read it yet.
    """
    rows = gallery(lake).filter(pl.col("slug") == slug)
    if rows.is_empty():
        return None
    row = rows.row(0, named=True)
    snapshot = json.loads(row["snapshot"] or "{}")
    prices = Catalog(data_dir=get_settings().data_dir).prices()
    return Revision(
        slug=row["slug"],
        revision_id=row["revision_id"],
        effect_type=row["effect_type"],
        provider_id=row["provider_id"],
        params=dict(snapshot.get("params") or {}),
        price_tokens=int(prices[row["effect_type"]]),
        content_hash=row["content_hash"],
    )
