"""Gallery revisions are immutable and a pin per slug moves between them: the store's rules on
SQLite and PostgreSQL (nothing updates or deletes a revision, not even raw SQL), landing into
bronze, and the API (gallery, revision list, admin pin with rollback, problem documents)."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from api.app import create_app
from assets.landing.asset import LANDING_ASSETS
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import EFFECT_PIN_EVENTS, EFFECT_REVISIONS
from resources.services.gallery import pinned_revision, revisions
from resources.store.errors import (
    EffectNotFound,
    ImmutableRow,
    InvalidInput,
    PinConflict,
    RevisionNotFound,
    RevisionOfAnotherEffect,
)
from resources.store.models import EffectRevision
from resources.store.revisions import revision_id_for
from tests.api_users import ADMIN, new_user
from tests.harness import Driver
from tests.server import serve

pytest_plugins = ["tests.store_fixtures"]


def _slug() -> str:
    return f"warm-grade-{uuid.uuid4().hex[:8]}"


def _values(slug: str, content: str, **overrides) -> dict:
    """A revision of ``slug`` whose content is named by ``content`` (its hash is derived)."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    return {
        "slug": slug,
        "effect_type": "warm_grade",
        "provider_id": "ffmpeg-colortemp",
        "content_hash": digest,
        "params": {"strength": 0.6},
        "template_id": "warm_grade",
        "template_version": 1,
        "prompt": f"a warm grade ({content})",
        "price_tokens": 2,
        "snapshot": {"display_name": "Warm color grade", "media": {"example": f"published/{digest}.mp4"}},
        "render_spec": {"workflow_hash": digest},
        "output_key": f"outputs/v/{content}.mp4",
        "preview_key": f"published/{digest}.mp4",
        "approval_id": f"a-{content}",
        "source_video_id": f"v-{slug}",
        "created_by": "alice",
    } | overrides


# --- the store ------------------------------------------------------------------------------


def test_first_publication_pins_and_the_same_content_again_writes_nothing(store):
    slug = _slug()
    first = store.publish_revision(_values(slug, "one"))
    assert first.created and first.pin_moved and first.pin["revision_id"] == first.revision["revision_id"]
    assert first.revision["revision_id"] == revision_id_for(slug, first.revision["content_hash"])
    # A re-run that yields the same content (another approval id even): no row, no pin move.
    again = store.publish_revision(_values(slug, "one", approval_id="a-rerun", created_by="bob"))
    assert (again.created, again.pin_moved) == (False, False)
    assert again.revision == first.revision  # the first revision stands as written
    assert len(store.revisions(slug)) == 1
    [event] = store.pin_events(slug)
    assert (event["kind"], event["previous_revision_id"], event["pinned_by"]) == ("published", None, "alice")


def test_new_content_is_a_new_revision_and_its_approval_moves_the_pin(store):
    slug = _slug()
    one = store.publish_revision(_values(slug, "one")).revision
    two = store.publish_revision(_values(slug, "two"))
    assert two.created and two.pin_moved and two.revision["revision_id"] != one["revision_id"]
    assert [r["revision_id"] for r in store.revisions(slug)] == [one["revision_id"], two.revision["revision_id"]]
    assert pinned_revision(store, None, slug).revision_id == two.revision["revision_id"]
    assert [(e["kind"], e["previous_revision_id"]) for e in store.pin_events(slug)] == [
        ("published", None),
        ("published", one["revision_id"]),
    ]


def test_rollback_is_pinning_an_earlier_revision_and_a_republication_leaves_it(store):
    slug = _slug()
    one = store.publish_revision(_values(slug, "one")).revision["revision_id"]
    two = store.publish_revision(_values(slug, "two")).revision["revision_id"]
    back = store.pin_revision(slug, one, "u_admin", "two looks wrong", expected_revision_id=two)
    assert back.moved and back.previous_revision_id == two and back.event["kind"] == "rollback"
    assert pinned_revision(store, None, slug).revision_id == one
    # The video that made `two` is re-run and yields `two` again: the rollback stands.
    assert store.publish_revision(_values(slug, "two")).pin_moved is False
    assert pinned_revision(store, None, slug).revision_id == one
    # Pinning what is pinned changes nothing; forward again is a `pin`.
    same = store.pin_revision(slug, one, "u_admin")
    assert (same.moved, same.event) == (False, None)
    forward = store.pin_revision(slug, two, "u_admin", "fixed")
    assert forward.event["kind"] == "pin"
    assert [e["kind"] for e in store.pin_events(slug)] == ["published", "published", "rollback", "pin"]
    listed = revisions(store, slug)
    assert [r.pinned for _, r in listed] == [False, True]


def test_pin_refusals(store):
    slug, other = _slug(), _slug()
    one = store.publish_revision(_values(slug, "one")).revision["revision_id"]
    theirs = store.publish_revision(_values(other, "x")).revision["revision_id"]
    with pytest.raises(EffectNotFound):
        store.pin_revision(_slug(), one, "u")
    with pytest.raises(RevisionNotFound):
        store.pin_revision(slug, "r_" + "0" * 24, "u")
    with pytest.raises(RevisionOfAnotherEffect):
        store.pin_revision(slug, theirs, "u")
    with pytest.raises(PinConflict):
        store.pin_revision(slug, one, "u", expected_revision_id=theirs)
    with pytest.raises(InvalidInput):
        store.publish_revision(_values("Not A Slug", "y"))
    with pytest.raises(InvalidInput):
        store.publish_revision(_values(slug, "y", price_tokens=-1))
    with pytest.raises(InvalidInput):
        store.publish_revision(_values(slug, "y", content_hash="abc"))


def test_revisions_and_pin_events_cannot_be_changed_by_the_orm_or_by_sql(store):
    slug = _slug()
    published = store.publish_revision(_values(slug, "one"))
    revision_id = published.revision["revision_id"]
    # The Store API has no update; the ORM refuses one (and a delete) before any SQL is sent.
    with pytest.raises(ImmutableRow), store.write() as s:
        s.query(EffectRevision).filter_by(revision_id=revision_id).one().price_tokens = 0
    with pytest.raises(ImmutableRow), store.write() as s:
        s.delete(s.query(EffectRevision).filter_by(revision_id=revision_id).one())
    # Raw SQL: the migration's triggers refuse it on both backends.
    for statement in (
        "UPDATE effect_revisions SET price_tokens = 0 WHERE revision_id = :id",
        "DELETE FROM effect_revisions WHERE revision_id = :id",
        "UPDATE effect_pin_events SET kind = 'pin' WHERE revision_id = :id",
        "DELETE FROM effect_pin_events WHERE revision_id = :id",
    ):
        with pytest.raises((DBAPIError, IntegrityError), match="immutable"), store.engine.begin() as conn:
            conn.execute(text(statement), {"id": revision_id})
    assert store.revision(revision_id) == published.revision
    assert len(store.pin_events(slug)) == 1


# --- landing: the lake keeps its analytics copy ---------------------------------------------


def test_revisions_and_pin_moves_are_landed_into_bronze(settings, instance):
    from resources.store.client import Store

    store = Store(settings.database_url)
    slug = _slug()
    one = store.publish_revision(_values(slug, "one")).revision["revision_id"]
    store.publish_revision(_values(slug, "two"))
    store.pin_revision(slug, one, "u_admin", "rollback")
    driver = Driver(build_definitions(settings), instance)
    assert driver.land() >= 1
    lake = Lake(uri=settings.lake_uri)
    landed = lake.read(EFFECT_REVISIONS).sort("seq")
    assert landed["slug"].to_list() == [slug, slug] and landed["price_tokens"].to_list() == [2, 2]
    assert landed["revision_id"][0] == one
    moves = lake.read(EFFECT_PIN_EVENTS).sort("seq")
    assert moves["kind"].to_list() == ["published", "published", "rollback"]
    assert driver.land() == 0  # nothing new: nothing landed twice
    assert {a.key.path[-1] for a in LANDING_ASSETS} >= {"effect_revisions", "effect_pin_events"}
    store.close()


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def api(settings):
    app = create_app(settings)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, app.state.clients.store


def test_gallery_shows_the_pinned_revision_and_lists_every_revision(api):
    client, store = api
    slug = _slug()
    one = store.publish_revision(_values(slug, "one")).revision["revision_id"]
    two = store.publish_revision(_values(slug, "two")).revision["revision_id"]
    effect = client.get(f"/v1/effects/{slug}").json()
    assert (effect["revision_id"], effect["price_tokens"], effect["params"]) == (two, 2, {"strength": 0.6})
    assert effect["preview_url"] == f"http://testserver/v1/media/published/{effect['content_hash']}.mp4"
    assert [e["slug"] for e in client.get("/v1/effects").json()["items"]] == [slug]

    page = client.get(f"/v1/effects/{slug}/revisions", params={"limit": 1}).json()
    assert [(r["revision_id"], r["pinned"]) for r in page["items"]] == [(one, False)]
    rest = client.get(f"/v1/effects/{slug}/revisions", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [(r["revision_id"], r["pinned"]) for r in rest["items"]] == [(two, True)] and rest["next_cursor"] is None

    missing = client.get(f"/v1/effects/{_slug()}/revisions")
    assert missing.status_code == 404 and missing.json()["code"] == "effect_not_found"
    assert missing.headers["content-type"] == "application/problem+json"


def test_admin_pin_rolls_back_with_problem_documents_for_every_refusal(api):
    client, store = api
    slug, other = _slug(), _slug()
    one = store.publish_revision(_values(slug, "one")).revision["revision_id"]
    two = store.publish_revision(_values(slug, "two")).revision["revision_id"]
    theirs = store.publish_revision(_values(other, "x")).revision["revision_id"]
    url = f"/v1/admin/effects/{slug}/pin"

    user = new_user(client)
    assert client.post(url, headers=user["headers"], json={"revision": one}).status_code == 403
    headers = ADMIN | {"Idempotency-Key": "rollback-1"}
    body = {"revision": one, "reason": "two looks wrong", "expected_revision": two}
    r = client.post(url, headers=headers, json=body)
    assert r.status_code == 200, r.text
    state = r.json()
    assert (state["revision_id"], state["previous_revision_id"], state["kind"], state["moved"]) == (
        one,
        two,
        "rollback",
        True,
    )
    assert client.get(f"/v1/effects/{slug}").json()["revision_id"] == one
    # The same key and body replay the first answer; no second move is recorded.
    assert client.post(url, headers=headers, json=body).json() == state
    assert [e["kind"] for e in store.pin_events(slug)] == ["published", "published", "rollback"]

    def refused(status: int, code: str, path: str, json: dict) -> None:
        resp = client.post(path, headers=ADMIN, json=json)
        assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text
        assert resp.headers["content-type"] == "application/problem+json"

    refused(404, "effect_not_found", f"/v1/admin/effects/{_slug()}/pin", {"revision": one})
    refused(404, "revision_not_found", url, {"revision": "r_" + "0" * 24})
    refused(422, "revision_of_another_effect", url, {"revision": theirs})
    refused(409, "pin_conflict", url, {"revision": two, "expected_revision": two})  # it is `one` now
    refused(422, "validation_failed", url, {"revision": ""})
    reused = client.post(url, headers=headers, json={"revision": two})
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert client.get(f"/v1/effects/{slug}").json()["revision_id"] == one  # no refusal moved it
