"""Effect runs: a user applies a published gallery effect to their own video and pays its price
in tokens (``resources.services.runs`` decides and queues; the run is Dagster work,
``assets/runs``).

- ``POST /v1/effects/{slug}/runs`` (multipart or URL-encoded form, ``Idempotency-Key``):
  ``video_id`` of an upload of the caller's, or ``file`` (a new upload through the upload
  intake), and optional ``params`` (a JSON object within the effect's declared ranges) →
  202 with the queued run; its price is reserved at once.
- ``GET /v1/runs/{run_id}``: its status, progress, output URL and cost in tokens (the owner
  or an admin; anyone else gets a 404).
- ``GET /v1/runs``: the caller's runs, oldest first (a page).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from api.admission import AdmissionDep, exact_admission
from api.deps import CallerDep, CatalogDep, LakeDep, MediaDep, SettingsDep, StoreDep
from api.idempotency import IdempotencyKey, form_fingerprint, respond
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, seq_page
from api.problems import problem_responses
from economics.pricing import RunPrice
from resources.media import media_url
from resources.services.runs import RunRequest, parse_params, submit_run
from resources.services.uploads import IncomingUpload
from resources.store.models import CACHE_DECISION

router = APIRouter(tags=["runs"])

ROUTE = "POST /v1/effects/{slug}/runs"


class RunPricing(BaseModel):
    """The price of a run and where it came from (``economics.pricing.run_price``), fixed
    when the run was accepted: ``tokens`` reserved; ``revision_price_tokens`` the pinned
    revision's price; ``source`` ``revision`` (that price stood) or ``runtime_parameter``
    (the effect's price in force then, set by the change ``change_id``)."""

    tokens: int
    revision_price_tokens: int
    source: str
    change_id: str | None


def run_pricing(row: dict) -> RunPricing:
    """The ``RunPricing`` of an ``effect_runs`` row."""
    price = RunPrice(row["tokens"], row["revision_price_tokens"], row["price_change_id"])
    return RunPricing(
        tokens=price.tokens,
        revision_price_tokens=price.revision_price_tokens,
        source=price.source,
        change_id=price.change_id,
    )


class RunAccepted(BaseModel):
    """A queued run: its id, where to follow it, the revision it is pinned to and the
    tokens reserved for it (charged when it delivers, given back when it cannot)."""

    run_id: str
    status: str
    status_url: str
    slug: str
    revision_id: str
    video_id: str
    params: dict
    tokens_reserved: int
    price: RunPricing


class RunRouting(BaseModel):
    """How the run was routed (admins only): the provider, its version, the decision
    (``exploit`` / ``explore`` / ``forced`` / ``cache``) and its probability, the attempts."""

    provider_id: str | None
    provider_version: str | None
    decision: str | None
    propensity: float | None
    attempts: int


class RunStatus(BaseModel):
    """A run as its owner sees it.

    ``status``: ``queued`` → ``running`` → ``delivered`` | ``refunded`` (nothing usable
    came out: the tokens were given back) | ``failed``. ``progress`` in [0, 1].
    ``output_url`` once delivered. ``tokens_reserved``: the price held for it;
    ``tokens_charged``: what it cost the user (the price once delivered, else 0).
    ``price``: the price reserved and where it came from (the revision's price, or the
    effect's runtime price parameter in force when the run was accepted).
    ``cached``: delivered from the result cache (an identical earlier run's output).
    ``routing`` is shown to admins only.
    """

    run_id: str
    slug: str
    revision_id: str
    effect_type: str
    params: dict
    video_id: str
    status: str
    progress: float
    output_url: str | None
    tokens_reserved: int
    tokens_charged: int
    price: RunPricing
    cached: bool
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    routing: RunRouting | None = None


def run_status(row: dict, api_base_url: str, admin: bool = False) -> RunStatus:
    """The ``RunStatus`` of an ``effect_runs`` row."""
    delivered = row["status"] == "delivered"
    return RunStatus(
        run_id=row["run_id"],
        slug=row["slug"],
        revision_id=row["revision_id"],
        effect_type=row["effect_type"],
        params=json.loads(row["params"]),
        video_id=row["video_id"],
        status=row["status"],
        progress=row["progress"],
        output_url=media_url(api_base_url, row["output_key"]) if delivered else None,
        tokens_reserved=row["tokens"],
        tokens_charged=row["tokens"] if delivered else 0,
        price=run_pricing(row),
        cached=row["routing_decision"] == CACHE_DECISION,
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        routing=RunRouting(
            provider_id=row["provider_id"],
            provider_version=row["provider_version"],
            decision=row["routing_decision"],
            propensity=row["propensity"],
            attempts=row["attempts"],
        )
        if admin
        else None,
    )


@router.post(
    "/v1/effects/{slug}/runs",
    status_code=202,
    response_model=RunAccepted,
    responses=problem_responses(400, 402, 404, 409, 413, 415, 422, 429),
)
def create_run(
    request: Request,
    slug: Annotated[str, Path(max_length=200)],
    caller: CallerDep,
    admission: AdmissionDep,
    store: StoreDep,
    lake: LakeDep,
    media: MediaDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    video_id: Annotated[str | None, Form(max_length=40, description="an upload of yours (or send a file)")] = None,
    params: Annotated[
        str | None,
        Form(max_length=2000, description='the effect\'s parameters as a JSON object, e.g. {"strength": 0.8}'),
    ] = None,
    file: Annotated[UploadFile | None, File(description="your video (or name an upload: video_id)")] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Run the published effect ``slug`` on your video: 202 with the queued run, its price
    reserved. Refused: 404 ``effect_not_found`` (or your ``video_id`` is not found), 422 for
    a parameter the effect does not take or out of its declared range (the reason names the
    range) or a video named both ways or not at all, 402 ``insufficient_tokens``, the upload
    refusals of ``POST /v1/uploads`` for a new file (413, 415, 400), 429/403 GPU admission."""

    def work() -> tuple[int, RunAccepted]:
        upload = (
            IncomingUpload(file.file, file.filename, file.content_type, caller.user_id, caller.workspace_id)
            if file is not None
            else None
        )
        run, revision = submit_run(
            store,
            lake,
            media,
            catalog,
            caller.user_id,
            RunRequest(slug, parse_params(params), video_id or None, upload),
            max_upload_bytes=settings.max_upload_bytes,
            admit=exact_admission(request, settings),
        )
        return 202, RunAccepted(
            run_id=run["run_id"],
            status=run["status"],
            status_url=f"/v1/runs/{run['run_id']}",
            slug=revision.slug,
            revision_id=revision.revision_id,
            video_id=run["video_id"],
            params=json.loads(run["params"]),
            tokens_reserved=run["tokens"],
            price=run_pricing(run),
        )

    fingerprint = form_fingerprint(file, slug, video_id, params) if idempotency_key else ""
    return respond(store, caller, ROUTE, idempotency_key, fingerprint, work)


@router.get("/v1/runs", responses=problem_responses(400))
def list_runs(
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RunStatus]:
    """Your runs, oldest first (a page; ``next_cursor`` continues)."""
    rows, next_cursor = seq_page(lambda after, n: store.effect_runs(caller.user_id, after, n), cursor, limit)
    return Page[RunStatus](items=[run_status(r, settings.api_base_url) for r in rows], next_cursor=next_cursor)


@router.get("/v1/runs/{run_id}", responses=problem_responses(404))
def get_run(
    run_id: Annotated[str, Path(max_length=40)], caller: CallerDep, store: StoreDep, settings: SettingsDep
) -> RunStatus:
    """One run: yours, or any for an admin (with its routing); else a 404."""
    row = store.effect_run(run_id, None if caller.is_admin else caller.user_id)
    return run_status(row, settings.api_base_url, admin=caller.is_admin)
