"""The API's request bodies and response models.

Responses that carry lake rows (a video's upload, analysis, outputs…) use row models built
from the table schemas in ``resources/schemas.py`` (``row_model``), so a column is declared in
one place and the OpenAPI document still lists every field with its type. Row models allow
extra keys: a column added to a table reaches clients without a change here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, create_model

from economics.ledger import BALANCE_SCHEMA
from economics.recommendations import RECOMMENDATION_SCHEMA
from resources.schemas import (
    AB_REQUESTS,
    AB_RESULTS,
    APPROVAL_REQUESTS,
    BEST_RESULT,
    CONTENT_ANALYSIS,
    INGESTED_VIDEO,
    NOTIFICATIONS,
    QUALITY_SCORES,
)
from resources.store.tokens import MAX_TOKENS_PER_OPERATION


def _python_type(dtype: pl.DataType) -> Any:
    """The Python type of a Polars dtype's values (``List(Int64)`` → ``list[int]``)."""
    if isinstance(dtype, pl.List):
        return list[_python_type(dtype.inner)]
    return dtype.to_python()


class Row(BaseModel):
    """Base of the row models: extra keys pass through unchanged."""

    model_config = ConfigDict(extra="allow")


def row_model(name: str, schema: pl.Schema, doc: str, **overrides: Any) -> type[Row]:
    """A response model of one row of ``schema``: every column, in schema order, required and
    nullable (Delta columns are nullable), typed from its Polars dtype.

    Args:
        name: the model's name (shown in the OpenAPI document).
        doc: its description.
        overrides: column → Python type, for JSON columns the API returns parsed; a name not in
            the schema adds a field after the columns.
    """
    fields: dict[str, Any] = {col: (_python_type(dtype) | None, ...) for col, dtype in schema.items()}
    fields.update({col: (typ, ...) for col, typ in overrides.items()})
    return create_model(name, __base__=Row, __doc__=doc, **fields)


JSONObject = dict[str, Any]

# -- rows ------------------------------------------------------------------------------------


class UploadRow(BaseModel):
    """An upload as its owner sees it (the store's ``uploads`` row)."""

    video_id: str
    user_id: str
    workspace_id: str
    filename: str
    content_type: str
    bytes: int | None
    sha256: str | None
    duplicate_of: str | None
    source: str
    status: str
    uploaded_at: datetime
    description: str | None = None


IngestedVideoRow = row_model("IngestedVideoRow", INGESTED_VIDEO.schema, "A row of silver ``ingested_video``.")
ContentAnalysisRow = row_model("ContentAnalysisRow", CONTENT_ANALYSIS.schema, "A row of silver ``content_analysis``.")
OutputRow = row_model(
    "OutputRow",
    QUALITY_SCORES.schema,
    "A row of silver ``quality_scores``, ``measurements`` parsed; ``frame_vmaf``, ``frame_psnr_y``, "
    "``frame_ssim`` (per input frame), ``frame_artifacts`` and ``damaged_frames`` (per output frame) "
    "are the per-frame series.",
    measurements=JSONObject,
)
BestResultRow = row_model("BestResultRow", BEST_RESULT.schema, "A row of silver ``best_result``.")
Notification = row_model("Notification", NOTIFICATIONS.schema, "An in-app notification (bronze ``notifications``).")
Balance = row_model(
    "Balance",
    BALANCE_SCHEMA,
    "A user's token balance (``economics.ledger.balance_of``): credited, reserved, "
    "reserved_outstanding, consumed, refunded, refunded_consumed, spent, available, "
    "flagged (tokens).",
)
ApprovalRequest = row_model(
    "ApprovalRequest",
    APPROVAL_REQUESTS.schema,
    "A pending approval request with its side-by-side ``comparison`` parsed.",
    comparison=JSONObject,
)
Recommendation = row_model(
    "Recommendation",
    RECOMMENDATION_SCHEMA,
    "An economic recommendation (the economics job's, or one an automatic action raised: "
    "CAPACITY_SCALE_UP, WARM_POOL, WORKFLOW_REVIEW) with its ``action`` parsed, its decision ``status`` "
    "(pending, approve, reject) and its application: ``change_id`` (the parameter change applying it "
    "made), ``applied_at``, ``rolled_back_by`` (null when nothing was applied or it stands).",
    action=Any,
    status=str,
    change_id=str | None,
    applied_at=datetime | None,
    rolled_back_by=str | None,
)
ABResultRow = row_model("ABResultRow", AB_RESULTS.schema, "One provider's result in an A/B test.")
ABTest = row_model(
    "ABTest",
    AB_REQUESTS.schema,
    "An A/B test request, its ``status`` (pending or done) and its results so far.",
    status=Literal["pending", "done"],
    results=list[ABResultRow],
)


# -- request bodies --------------------------------------------------------------------------
class TopUp(BaseModel):
    """Body of ``POST /v1/admin/users/{user_id}/credits``: ``topup_id`` makes it idempotent
    (e.g. the payment provider's id). ``tokens`` is a JSON integer (not a string, float or
    boolean) in 1..10⁹ (``resources.store.tokens``); lifetime credits stop at 10¹⁵."""

    model_config = ConfigDict(strict=True)

    tokens: int = Field(gt=0, le=MAX_TOKENS_PER_OPERATION)
    topup_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="top-up", max_length=500)


class NewWorkspace(BaseModel):
    """Body of ``POST /v1/admin/workspaces``: a tenant and its GPU quota (concurrent jobs)."""

    model_config = ConfigDict(strict=True)

    name: str = Field(min_length=1, max_length=200)
    max_concurrent_gpu_jobs: int = Field(default=2, ge=0, le=10_000)


class NewUser(BaseModel):
    """Body of ``POST /v1/admin/users``: a user of a workspace; ``role`` admin makes an admin key."""

    model_config = ConfigDict(strict=True)

    workspace_id: str = Field(min_length=1, max_length=40)
    role: Literal["user", "admin"] = "user"
    name: str | None = Field(default=None, max_length=200)


class Override(BaseModel):
    """Body of ``POST /v1/admin/routing/override``."""

    effect_type: str
    provider_id: str
    reason: str


class ABTestRequest(BaseModel):
    """Body of ``POST /v1/admin/ab-tests``."""

    video_id: str
    effect_type: str
    providers: list[str]
    admin: str = "admin"


class Decision(BaseModel):
    """Body of ``POST /v1/admin/approvals/{approval_id}`` and
    ``POST /v1/admin/recommendations/{recommendation_id}``."""

    decision: Literal["approve", "reject"]
    reason: str = ""
    admin: str = "admin"


class AlertTransition(BaseModel):
    """Body of ``POST /v1/admin/alerts/{alert_id}/acknowledge`` and ``…/resolve``."""

    admin: str = Field("admin", min_length=1, max_length=200)
    note: str = Field("", max_length=2000)


# -- responses -------------------------------------------------------------------------------
class AlertDelivery(BaseModel):
    """One email of an alert: ``pending``, ``sent`` or ``dead_letter`` (every attempt failed;
    ``last_error`` says why)."""

    channel: str
    recipient: str
    state: Literal["pending", "sent", "dead_letter"]
    attempts: int
    last_error: str | None = None
    sent_at: datetime | None = None
    dead_lettered_at: datetime | None = None


class Alert(BaseModel):
    """An alert: one episode of a bottleneck group (category × provider × effect type, or
    × user), its lifecycle (open → acknowledged → resolved) and its emails."""

    alert_id: str
    state: Literal["open", "acknowledged", "resolved"]
    category: str
    severity: Literal["warning", "critical"]
    scope: str
    provider_id: str | None = None
    effect_type: str | None = None
    user_id: str | None = None
    source: str
    title: str
    summary: str
    runbook: str
    cost_impact_usd_per_hour: float
    classification_ids: list[str]
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: Literal["cleared", "admin"] | None = None
    note: str = ""
    deliveries: list[AlertDelivery]


class Health(BaseModel):
    """``GET /healthz``."""

    ok: bool


class ErrorDetail(BaseModel):
    """A 4xx answer: what went wrong, in words."""

    detail: str


class ValidationErrors(BaseModel):
    """FastAPI's own 422 for a malformed request: one entry per problem (``type``, ``loc``,
    ``msg``, ``input``…)."""

    detail: list[JSONObject]


class UploadError(BaseModel):
    """A refused upload: machine ``error`` code (``UserQuotaExceeded``, ``too_large``,
    ``empty_file``, ``not_a_video``, ``unsupported_media_type``) and readable ``detail``."""

    error: str
    detail: str


class Workspace(BaseModel):
    """A workspace (tenant)."""

    workspace_id: str
    name: str
    max_concurrent_gpu_jobs: int
    created_at: datetime


class Me(BaseModel):
    """``GET /v1/me``: the caller."""

    user_id: str
    workspace_id: str
    role: str
    name: str | None
    created_at: datetime
    balance: Balance


class UserCreated(BaseModel):
    """``POST /v1/admin/users`` (201): the user and its API key — shown this once only (the
    store keeps a hash); the welcome credit is granted with the user."""

    user_id: str
    workspace_id: str
    role: str
    name: str | None
    api_key: str
    balance: Balance


class UploadAccepted(BaseModel):
    """``POST /v1/uploads`` (202): the ``video_id`` (random, ``v_…``), where to follow it,
    whether the same bytes were already in the workspace, and their size in bytes."""

    video_id: str
    status_url: str
    duplicate: bool
    bytes: int


class PipelineEvent(BaseModel):
    """One event of a video's journey, ``payload`` parsed."""

    event_type: str
    stage: str | None
    occurred_at: datetime | None
    payload: JSONObject


class ApprovalState(BaseModel):
    """A video's approval request: ``status`` pending, approve or reject."""

    approval_id: str
    status: str
    preview_url: str | None


class GalleryLink(BaseModel):
    """Where a video's published effect is: the latest revision its job published and
    whether its slug's pin shows it (an admin may have pinned another revision)."""

    slug: str
    revision_id: str
    pinned: bool
    url: str
    preview_url: str | None


class VideoStatus(BaseModel):
    """``GET /v1/videos/{video_id}``: the stage reached and every section so far (null until
    its stage ran); see ``api.status.video_status``."""

    video_id: str
    stage: str
    upload: UploadRow
    events: list[PipelineEvent]
    video: IngestedVideoRow | None
    analysis: ContentAnalysisRow | None
    outputs: list[OutputRow]
    result: BestResultRow | None
    approval: ApprovalState | None
    gallery: GalleryLink | None
    notifications: list[Notification]


class Effect(BaseModel):
    """A published effect as one revision (``GET /v1/effects[/{slug}]``: the revision its pin
    names). ``snapshot`` is the published record, parsed. Side by side, at public,
    cache-friendly URLs of content-addressed copies (docs/gallery.md, "Distribution"):
    ``example_url`` (the example the user showed), ``reference_url`` (the neutral reference
    clip) and ``preview_url`` (the effect applied to it). ``price_tokens``: what a run of this
    revision costs, tokens; ``published_at``: when the revision was written; ``pinned_at``:
    when the pin moved to it (null for a revision that is not pinned)."""

    slug: str
    revision_id: str
    content_hash: str
    effect_type: str
    provider_id: str
    params: JSONObject
    template: str
    price_tokens: int
    published_at: datetime | None
    pinned_at: datetime | None
    preview_url: str | None
    example_url: str | None = None
    reference_url: str | None = None
    snapshot: JSONObject


class EffectRevision(Effect):
    """One revision in ``GET /v1/effects/{slug}/revisions``; ``pinned``: the slug's pin names it."""

    pinned: bool


class PinRequest(BaseModel):
    """Body of ``POST /v1/admin/effects/{slug}/pin``: the revision to pin (an older one is a
    rollback), why, and optionally the revision the admin saw pinned (``expected_revision``:
    when the pin has moved since, 409 ``pin_conflict`` instead of overwriting that move)."""

    model_config = ConfigDict(strict=True)

    revision: str = Field(min_length=1, max_length=40)
    reason: str = Field(default="", max_length=1000)
    expected_revision: str | None = Field(default=None, min_length=1, max_length=40)


class PinState(BaseModel):
    """``POST /v1/admin/effects/{slug}/pin`` (200): the pin now, the revision pinned before,
    whether this request moved it and how (``kind``: pin or rollback; null when unmoved)."""

    slug: str
    revision_id: str
    previous_revision_id: str | None
    moved: bool
    kind: str | None
    pinned_by: str
    reason: str
    pinned_at: datetime


class RoutingOverride(BaseModel):
    """``POST /v1/admin/routing/override`` (201): the published manifest version, the regular
    version it overrides, and every override in force (effect type → provider, reason, at)."""

    version: str
    base_version: str
    overrides: dict[str, JSONObject]


class ABTestCreated(BaseModel):
    """``POST /v1/admin/ab-tests`` (202)."""

    experiment_id: str
    status_url: str


class ApprovalDecided(BaseModel):
    """``POST /v1/admin/approvals/{approval_id}`` (202): the decision that stands."""

    approval_id: str
    video_id: str
    decision: str


class ParameterChange(BaseModel):
    """A change of a runtime parameter (docs/signals.md, "Runtime parameters"): the value
    before and after (null = not set: the shipped default), who asked for it and why, and
    the change that rolled it back, if any."""

    seq: int
    change_id: str
    scope: str
    subject: str
    name: str
    before: Any
    after: Any
    source: str
    source_id: str | None
    actor: str
    reason: str
    cost_usd_per_hour: float | None
    applied_at: datetime
    rolled_back_by: str | None


class RuntimeParameter(BaseModel):
    """A runtime parameter in force and the change that set it."""

    scope: str
    subject: str
    name: str
    value: Any
    change_id: str
    updated_at: datetime


class Rollback(BaseModel):
    """Body of ``POST /v1/admin/changes/{change_id}/rollback``."""

    reason: str = ""
    admin: str = "admin"


class RecommendationDecided(BaseModel):
    """``POST /v1/admin/recommendations/{recommendation_id}`` (202): the decision that stands,
    the parameter change approving it made (``applied``; also one made by an earlier
    approval), or why it changed nothing the platform runs (``note``)."""

    recommendation_id: str
    decision: str
    applied: ParameterChange | None = None
    note: str | None = None
