"""``GET /v1/effects[/{slug}[/revisions]]``: the gallery of published effects, read from the
transactional store's revisions and pins (``resources.services.gallery``). Public: no key."""

from __future__ import annotations

import polars as pl
from fastapi import APIRouter

from api.deps import LinksDep, StoreDep
from api.models import Effect, EffectRevision
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, frame_page, seq_page
from api.problems import ProblemError, problem_responses
from resources.media_links import MediaLinks
from resources.services.gallery import Revision, gallery, pinned_revision, revisions
from resources.store.errors import EffectNotFound

router = APIRouter(tags=["effects"])


def effect_fields(r: Revision, links: MediaLinks) -> dict:
    """The ``Effect`` fields of a revision, its media as public URLs (``MediaLinks``)."""
    media = r.snapshot.get("media") or {}
    return {
        "slug": r.slug,
        "revision_id": r.revision_id,
        "content_hash": r.content_hash,
        "effect_type": r.effect_type,
        "provider_id": r.provider_id,
        "params": r.params,
        "template": r.template,
        "price_tokens": r.price_tokens,
        "published_at": r.created_at,
        "pinned_at": r.pinned_at,
        "preview_url": links.url(r.preview_key),
        "example_url": links.url(media.get("example")),
        "reference_url": links.url(media.get("reference")),
        "snapshot": r.snapshot,
    }


def _not_found(slug: str) -> ProblemError:
    return ProblemError(404, EffectNotFound.code, f"no published effect {slug!r}")


@router.get("/v1/effects", responses=problem_responses(400))
def list_effects(
    store: StoreDep, links: LinksDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Effect]:
    """The gallery: every published effect as its pinned revision, newest revision first (a
    page)."""
    shown = {r.slug: r for r in gallery(store)}
    order = pl.DataFrame(
        {"published_at": [r.created_at for r in shown.values()], "slug": list(shown)},
        schema={"published_at": pl.Datetime("us", "UTC"), "slug": pl.String},
    )
    rows, next_cursor = frame_page(order, [("published_at", True), ("slug", False)], cursor, limit)
    items = [Effect.model_validate(effect_fields(shown[r["slug"]], links)) for r in rows]
    return Page[Effect](items=items, next_cursor=next_cursor)


@router.get("/v1/effects/{slug}", responses=problem_responses(404))
def get_effect(slug: str, store: StoreDep, links: LinksDep) -> Effect:
    """One published effect by slug: the revision its pin names now."""
    found = pinned_revision(store, None, slug)
    if found is None:
        raise _not_found(slug)
    return Effect.model_validate(effect_fields(found, links))


@router.get("/v1/effects/{slug}/revisions", responses=problem_responses(400, 404))
def list_revisions(
    slug: str, store: StoreDep, links: LinksDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[EffectRevision]:
    """Every revision of an effect in the order they were published, oldest first (a page);
    ``pinned`` marks the one the gallery shows."""

    def fetch(after: int, n: int) -> list[dict]:
        return [{"seq": seq, "revision": r} for seq, r in revisions(store, slug, after, n)]

    rows, next_cursor = seq_page(fetch, cursor, limit)
    if not rows and cursor is None:
        raise _not_found(slug)
    items = [
        EffectRevision.model_validate({**effect_fields(x["revision"], links), "pinned": x["revision"].pinned})
        for x in rows
    ]
    return Page[EffectRevision](items=items, next_cursor=next_cursor)
