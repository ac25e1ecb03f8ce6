"""``/v1/admin/*``: approvals, recommendations, top-ups, the emergency routing override and
A/B tests. Every route needs the admin key (header ``X-Admin-Key``); the work is done by
``resources/services``."""

from __future__ import annotations

import json

import polars as pl
from fastapi import APIRouter, Depends, HTTPException

from api.deps import LakeDep, ManifestStoreDep, ProvidersDep, require_admin
from api.models import (
    ABTest,
    ABTestCreated,
    ABTestRequest,
    ApprovalDecided,
    ApprovalRequest,
    Balance,
    Decision,
    Override,
    Recommendation,
    RecommendationDecided,
    RoutingOverride,
    TopUp,
)
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, frame_page
from api.problems import problem_responses
from resources.services.ab_tests import ABTestInvalid, ab_test, request_ab_test
from resources.services.accounts import top_up
from resources.services.approvals import decide, pending_requests
from resources.services.recommendations import decide_recommendation, recommendations_with_status
from resources.services.routing_admin import NoManifest, emergency_override

router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=problem_responses(401)
)

NOT_FOUND = problem_responses(404)
# A 422 is a malformed body (``errors`` lists the problems) or a request the service refused.
REFUSED = problem_responses(422)
DECISION_ERRORS = problem_responses(404, 409)


@router.post("/users/{user_id}/credits", status_code=201, responses=REFUSED)
def credit_user(user_id: str, body: TopUp, lake: LakeDep) -> Balance:
    """Top up a user's tokens (once per ``topup_id``); a paused user can upload again."""
    try:
        return Balance.model_validate(top_up(lake, user_id, body.tokens, body.topup_id, body.reason))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/routing/override", status_code=201, responses=problem_responses(409, 422))
def override_routing(body: Override, lake: LakeDep, manifest_store: ManifestStoreDep) -> RoutingOverride:
    """Emergency override: route every job of an effect type to one provider, now."""
    try:
        m = emergency_override(lake, manifest_store, body.effect_type, body.provider_id, body.reason)
    except NoManifest as exc:
        raise HTTPException(409, str(exc)) from None
    except (KeyError, ValueError) as exc:
        raise HTTPException(422, str(exc).strip("'\"")) from None
    return RoutingOverride(version=m["version"], base_version=m["base_version"], overrides=m["overrides"])


@router.post("/ab-tests", status_code=202, responses=REFUSED)
def create_ab_test(body: ABTestRequest, lake: LakeDep, providers: ProvidersDep) -> ABTestCreated:
    """Run one uploaded video on several providers side by side (the A/B sensor starts it)."""
    try:
        row = request_ab_test(lake, providers, body.video_id, body.effect_type, body.providers, body.admin)
    except ABTestInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    return ABTestCreated(experiment_id=row["experiment_id"], status_url=f"/v1/admin/ab-tests/{row['experiment_id']}")


@router.get("/ab-tests/{experiment_id}", responses=NOT_FOUND)
def get_ab_test(experiment_id: str, lake: LakeDep) -> ABTest:
    """The request and, once run, every provider's quality, time and cost."""
    found = ab_test(lake, experiment_id)
    if found is None:
        raise HTTPException(404, f"no A/B test {experiment_id}")
    return ABTest.model_validate(found)


@router.get("/approvals", responses=problem_responses(400))
def list_approvals(
    lake: LakeDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[ApprovalRequest]:
    """Pending approval requests with their side-by-side comparison, oldest first (a page)."""
    rows, next_cursor = frame_page(
        pending_requests(lake), [("requested_at", False), ("approval_id", False)], cursor, limit
    )
    items = [ApprovalRequest.model_validate({**r, "comparison": json.loads(r["comparison"])}) for r in rows]
    return Page[ApprovalRequest](items=items, next_cursor=next_cursor)


@router.post("/approvals/{approval_id}", status_code=202, responses=DECISION_ERRORS)
def decide_approval(approval_id: str, body: Decision, lake: LakeDep) -> ApprovalDecided:
    """Approve (publish) or reject (refund and notify) a pending effect."""
    row = decide(lake, approval_id, body.decision, body.admin, body.reason)
    return ApprovalDecided(approval_id=approval_id, video_id=row["video_id"], decision=row["decision"])


@router.get("/recommendations", responses=problem_responses(400))
def list_recommendations(
    lake: LakeDep, status: str | None = None, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Recommendation]:
    """Economic recommendations of the latest cycle with their decision status, newest first
    (a page; ``status``: only pending, approve or reject)."""
    recs = recommendations_with_status(lake)
    if status:
        recs = recs.filter(pl.col("status") == status)
    rows, next_cursor = frame_page(recs, [("created_at", True), ("recommendation_id", False)], cursor, limit)
    items = [Recommendation.model_validate({**r, "action": json.loads(r["action"])}) for r in rows]
    return Page[Recommendation](items=items, next_cursor=next_cursor)


@router.post("/recommendations/{recommendation_id}", status_code=202, responses=DECISION_ERRORS)
def decide_on_recommendation(recommendation_id: str, body: Decision, lake: LakeDep) -> RecommendationDecided:
    """Approve or reject a recommendation; the decision is recorded once."""
    row = decide_recommendation(lake, recommendation_id, body.decision, body.admin, body.reason)
    return RecommendationDecided(recommendation_id=recommendation_id, decision=row["decision"])
