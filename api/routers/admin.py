"""``/v1/admin/*``: workspaces and users, top-ups, approvals, recommendations (approving one
applies it), the runtime parameters and their audit trail with rollback, alerts, the emergency
routing override, A/B tests and the gallery's pins. Every route needs an admin's API key (``Authorization:
Bearer``; a user's key is a 403); every POST takes an ``Idempotency-Key``. The work is done
by the store and ``resources/services``."""

from __future__ import annotations

import json
from typing import Literal

import polars as pl
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from api.deps import (
    AdminDep,
    Caller,
    ClientsDep,
    LakeDep,
    ManifestStoreDep,
    ProvidersDep,
    SettingsDep,
    StoreDep,
    admin_caller,
)
from api.idempotency import IdempotencyKey, body_fingerprint, respond
from api.models import (
    ABTest,
    ABTestCreated,
    ABTestRequest,
    Alert,
    AlertTransition,
    ApprovalDecided,
    ApprovalRequest,
    Balance,
    Decision,
    NewUser,
    NewWorkspace,
    Override,
    ParameterChange,
    PinRequest,
    PinState,
    Recommendation,
    RecommendationDecided,
    Rollback,
    RoutingOverride,
    RuntimeParameter,
    TopUp,
    UserCreated,
    Workspace,
)
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, frame_page, seq_page
from api.problems import problem_responses
from resources.services.ab_tests import ABTestInvalid, ab_test, request_ab_test
from resources.services.approvals import decide, pending_requests
from resources.services.gallery import pin
from resources.services.recommendations import decide_recommendation, recommendations_with_status, rollback
from resources.services.routing_admin import NoManifest, emergency_override
from resources.store.alerts import AlertConflict, AlertNotFound
from resources.store.client import Store
from resources.store.models import ALERT_STATES

router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin_caller)], responses=problem_responses(401, 403)
)

NOT_FOUND = problem_responses(404)
# A 422 is a malformed body (``errors`` lists the problems) or a request the service refused.
REFUSED = problem_responses(422)
# 409: a conflict, or the first request with this Idempotency-Key still runs.
REPLAY = problem_responses(409)
DECISION_ERRORS = problem_responses(404, 409, 422)


@router.post("/workspaces", status_code=201, response_model=Workspace, responses=REFUSED | REPLAY)
def create_workspace(
    body: NewWorkspace, caller: AdminDep, store: StoreDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """A new workspace (tenant) with its GPU quota."""

    def work():
        return 201, Workspace.model_validate(store.create_workspace(body.name, body.max_concurrent_gpu_jobs))

    return respond(store, caller, "POST /v1/admin/workspaces", idempotency_key, body_fingerprint(body), work)


@router.post("/users", status_code=201, response_model=UserCreated, responses=NOT_FOUND | REFUSED | REPLAY)
def create_user(
    body: NewUser, caller: AdminDep, store: StoreDep, settings: SettingsDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """A new user of a workspace with its API key, shown in this response only; the welcome
    credit (``EFFECTLAKE_WELCOME_CREDIT``) is granted now, once. An Idempotency-Key replays
    the same key, so a retried request does not make a second user."""

    def work():
        user, key = store.create_user(body.workspace_id, body.role, body.name, settings.welcome_credit_tokens)
        return 201, UserCreated.model_validate({**user, "api_key": key, "balance": store.balance(user["user_id"])})

    return respond(store, caller, "POST /v1/admin/users", idempotency_key, body_fingerprint(body), work)


@router.post("/users/{user_id}/credits", status_code=201, response_model=Balance, responses=NOT_FOUND | REFUSED)
def credit_user(
    user_id: str, body: TopUp, caller: AdminDep, store: StoreDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Top up a user's tokens (once per ``topup_id``); a paused user can upload again."""

    def work():
        store.credit(user_id, body.tokens, body.topup_id, body.reason)
        return 201, Balance.model_validate(store.balance(user_id))

    route = "POST /v1/admin/users/{user_id}/credits"
    return respond(store, caller, route, idempotency_key, body_fingerprint(body, user_id), work)


@router.post(
    "/routing/override",
    status_code=201,
    response_model=RoutingOverride,
    responses=REPLAY | REFUSED,
)
def override_routing(
    body: Override,
    caller: AdminDep,
    lake: LakeDep,
    store: StoreDep,
    manifest_store: ManifestStoreDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Emergency override: route every job of an effect type to one provider, now."""

    def work():
        try:
            m = emergency_override(lake, manifest_store, body.effect_type, body.provider_id, body.reason)
        except NoManifest as exc:
            raise HTTPException(409, str(exc)) from None
        except (KeyError, ValueError) as exc:
            raise HTTPException(422, str(exc).strip("'\"")) from None
        return 201, RoutingOverride(version=m["version"], base_version=m["base_version"], overrides=m["overrides"])

    return respond(store, caller, "POST /v1/admin/routing/override", idempotency_key, body_fingerprint(body), work)


@router.post("/ab-tests", status_code=202, response_model=ABTestCreated, responses=REFUSED | REPLAY)
def create_ab_test(
    body: ABTestRequest,
    caller: AdminDep,
    lake: LakeDep,
    store: StoreDep,
    providers: ProvidersDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Run one uploaded video on several providers side by side (the A/B sensor starts it)."""

    def work():
        try:
            row = request_ab_test(lake, providers, body.video_id, body.effect_type, body.providers, body.admin)
        except ABTestInvalid as exc:
            raise HTTPException(422, str(exc)) from None
        experiment = row["experiment_id"]
        return 202, ABTestCreated(experiment_id=experiment, status_url=f"/v1/admin/ab-tests/{experiment}")

    return respond(store, caller, "POST /v1/admin/ab-tests", idempotency_key, body_fingerprint(body), work)


@router.get("/ab-tests/{experiment_id}", responses=NOT_FOUND)
def get_ab_test(experiment_id: str, lake: LakeDep) -> ABTest:
    """The request and, once run, every provider's quality, time and cost."""
    found = ab_test(lake, experiment_id)
    if found is None:
        raise HTTPException(404, f"no A/B test {experiment_id}")
    return ABTest.model_validate(found)


@router.get("/approvals", responses=problem_responses(400))
def list_approvals(
    lake: LakeDep, store: StoreDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[ApprovalRequest]:
    """Pending approval requests with their side-by-side comparison, oldest first (a page)."""
    rows, next_cursor = frame_page(
        pending_requests(lake, store), [("requested_at", False), ("approval_id", False)], cursor, limit
    )
    items = [ApprovalRequest.model_validate({**r, "comparison": json.loads(r["comparison"])}) for r in rows]
    return Page[ApprovalRequest](items=items, next_cursor=next_cursor)


@router.post("/approvals/{approval_id}", status_code=202, response_model=ApprovalDecided, responses=DECISION_ERRORS)
def decide_approval(
    approval_id: str,
    body: Decision,
    caller: AdminDep,
    lake: LakeDep,
    store: StoreDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Approve (publish) or reject (refund and notify) a pending effect."""

    def work():
        row = decide(lake, store, approval_id, body.decision, body.admin, body.reason)
        return 202, ApprovalDecided(approval_id=approval_id, video_id=row["video_id"], decision=row["decision"])

    route = "POST /v1/admin/approvals/{approval_id}"
    return respond(store, caller, route, idempotency_key, body_fingerprint(body, approval_id), work)


@router.get("/recommendations", responses=problem_responses(400))
def list_recommendations(
    lake: LakeDep,
    store: StoreDep,
    status: str | None = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[Recommendation]:
    """Economic recommendations of the latest cycle with their decision status, newest first
    (a page; ``status``: only pending, approve or reject)."""
    recs = recommendations_with_status(lake, store)
    if status:
        recs = recs.filter(pl.col("status") == status)
    rows, next_cursor = frame_page(recs, [("created_at", True), ("recommendation_id", False)], cursor, limit)
    items = [Recommendation.model_validate({**r, "action": json.loads(r["action"])}) for r in rows]
    return Page[Recommendation](items=items, next_cursor=next_cursor)


@router.post(
    "/recommendations/{recommendation_id}",
    status_code=202,
    response_model=RecommendationDecided,
    responses=DECISION_ERRORS,
)
def decide_on_recommendation(
    recommendation_id: str,
    body: Decision,
    caller: AdminDep,
    clients: ClientsDep,
    store: StoreDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Approve or reject a recommendation; the decision is recorded once. Approving applies
    it (a routing pin, a price revision, a provider's concurrency), recorded in the audit
    trail (``GET /v1/admin/changes``) and reversible (``POST /v1/admin/changes/{id}/rollback``);
    a recommendation for the fleet or a workflow file is recorded with a ``note``. 409
    ``recommendation_stale`` when it was computed from a value no longer in force."""

    def work():
        row = decide_recommendation(
            clients.lake,
            store,
            clients.manifest_store,
            clients.catalog,
            recommendation_id,
            body.decision,
            body.admin,
            body.reason,
        )
        return 202, RecommendationDecided.model_validate(row)

    route = "POST /v1/admin/recommendations/{recommendation_id}"
    return respond(store, caller, route, idempotency_key, body_fingerprint(body, recommendation_id), work)


@router.post("/effects/{slug}/pin", response_model=PinState, responses=DECISION_ERRORS)
def pin_effect(
    slug: str, body: PinRequest, caller: AdminDep, store: StoreDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Show ``revision`` in the gallery entry of ``slug``: move the slug's pin to it (pinning
    an earlier revision is the rollback; pinning the one already pinned changes nothing).
    404 ``effect_not_found`` / ``revision_not_found``; 422 ``revision_of_another_effect``;
    409 ``pin_conflict`` when ``expected_revision`` is not the pinned one any more. The move is
    recorded with the caller's user id (``effect_pin_events``)."""

    def work():
        done = pin(store, slug, body.revision, caller.user_id, body.reason, body.expected_revision)
        return 200, PinState(
            slug=slug,
            revision_id=done.pin["revision_id"],
            previous_revision_id=done.previous_revision_id,
            moved=done.moved,
            kind=done.event["kind"] if done.event else None,
            pinned_by=done.pin["pinned_by"],
            reason=done.pin["reason"],
            pinned_at=done.pin["pinned_at"],
        )

    route = "POST /v1/admin/effects/{slug}/pin"
    return respond(store, caller, route, idempotency_key, body_fingerprint(body, slug), work)


@router.get("/changes", responses=problem_responses(400))
def list_changes(
    store: StoreDep, source: str | None = None, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[ParameterChange]:
    """The audit trail of runtime parameters, oldest first (a page; ``source``: only
    ``bottleneck``, ``recommendation`` or ``rollback`` changes): every automatic action,
    applied recommendation and rollback with the value before and after."""
    rows, next_cursor = seq_page(
        lambda after, n: store.parameter_changes(source=source, after_seq=after, limit=n), cursor, limit
    )
    return Page[ParameterChange](items=[ParameterChange.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/parameters")
def list_parameters(store: StoreDep) -> list[RuntimeParameter]:
    """The runtime parameters in force (a provider's dispatch concurrency, an effect's price,
    a routing pin or demotion), each with the change that set it; a fleet autoscaler reads
    the provider concurrencies here."""
    return [RuntimeParameter.model_validate(r) for r in store.parameters().values()]


@router.post(
    "/changes/{change_id}/rollback",
    status_code=201,
    response_model=ParameterChange,
    responses=problem_responses(404, 409) | REPLAY,
)
def rollback_change(
    change_id: str,
    body: Rollback,
    caller: AdminDep,
    clients: ClientsDep,
    store: StoreDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Roll a change back: its parameter gets the value before exactly (a routing change is
    published at once). 409 when it was rolled back already or a later change of the same
    parameter is in force (roll that one back first)."""

    def work():
        undo = rollback(clients.lake, store, clients.manifest_store, change_id, body.admin, body.reason)
        return 201, ParameterChange.model_validate(undo)

    route = "POST /v1/admin/changes/{change_id}/rollback"
    return respond(store, caller, route, idempotency_key, body_fingerprint(body, change_id), work)


def _alerts_frame(rows: list[dict]) -> pl.DataFrame:
    # The page is cut on (opened_at, alert_id); the rest of each alert rides along as its JSON.
    return pl.DataFrame(
        {
            "opened_at": [r["opened_at"] for r in rows],
            "alert_id": [r["alert_id"] for r in rows],
            "row": [json.dumps(r, default=str) for r in rows],
        },
        schema={"opened_at": pl.Datetime("us", "UTC"), "alert_id": pl.String, "row": pl.String},
    )


@router.get("/alerts", responses=problem_responses(400, 422))
def list_alerts(
    store: StoreDep,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[Alert]:
    """Alerts, newest first (a page; ``state``: only open, acknowledged or resolved) — the
    admins' in-app alert list, each with its classifications and email deliveries."""
    rows = store.alerts((state,) if state else ALERT_STATES)
    page, next_cursor = frame_page(_alerts_frame(rows), [("opened_at", True), ("alert_id", False)], cursor, limit)
    return Page[Alert](items=[Alert.model_validate_json(r["row"]) for r in page], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", responses=NOT_FOUND)
def get_alert(alert_id: str, store: StoreDep) -> Alert:
    """One alert."""
    try:
        return Alert.model_validate(store.alert(alert_id))
    except AlertNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _transition(
    verb: str, alert_id: str, body: AlertTransition, caller: Caller, store: Store, idempotency_key: str | None
) -> Response:
    move = {"acknowledge": store.acknowledge_alert, "resolve": store.resolve_alert}[verb]

    def work():
        try:
            return 200, Alert.model_validate(move(alert_id, body.admin, body.note))
        except AlertNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except AlertConflict as exc:
            raise HTTPException(409, str(exc)) from None

    route = f"POST /v1/admin/alerts/{{alert_id}}/{verb}"
    return respond(store, caller, route, idempotency_key, body_fingerprint(body, alert_id), work)


@router.post("/alerts/{alert_id}/acknowledge", response_model=Alert, responses=DECISION_ERRORS)
def acknowledge_alert(
    alert_id: str, body: AlertTransition, caller: AdminDep, store: StoreDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """open → acknowledged (a repeat keeps the first); a resolved alert is a 409."""
    return _transition("acknowledge", alert_id, body, caller, store, idempotency_key)


@router.post("/alerts/{alert_id}/resolve", response_model=Alert, responses=DECISION_ERRORS)
def resolve_alert(
    alert_id: str, body: AlertTransition, caller: AdminDep, store: StoreDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """open or acknowledged → resolved by an admin (a repeat is a no-op). The next
    classification of the same group opens a new alert."""
    return _transition("resolve", alert_id, body, caller, store, idempotency_key)
