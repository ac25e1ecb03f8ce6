"""The store's tables (SQLAlchemy 2 typed ORM). The Alembic migrations in ``migrations/``
must produce exactly this schema (a test compares them).

Tables the lake mirrors (``MIRRORED``) carry ``seq``, an autoincrement integer key that
orders rows for landing (``changes.changes_since``), and ``recorded_at``, the store's own
insert time (never supplied by callers), which the landing grace interval is measured on.
Column names follow the lake's bronze tables where one exists (``resources/schemas.py``).

Amounts are tokens (integers, BIGINT). Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from resources.store.errors import ImmutableRow
from resources.store.sql import SEQ, UTCDateTime, utcnow

# Deterministic constraint names: migrations and autogenerate compare agree on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("user", "admin")
# pending (presigned, no bytes yet) → uploaded → accepted (M1 ingested it) → processing (GPU
# tasks dispatched) → done (the pipeline finished with it); or rejected (M1 refused it).
UPLOAD_STATUSES = ("pending", "uploaded", "accepted", "processing", "done", "rejected")
# run: a video sent with an effect run (``POST /v1/effects/{slug}/runs``): the input of a run,
# not an example; no effect-creation job starts for it (migration 0011).
UPLOAD_SOURCES = ("upload", "presign", "link", "run")
RUN_SOURCE = UPLOAD_SOURCES[-1]
#: Longest upload description, characters (the API refuses longer ones with a 422).
MAX_DESCRIPTION_CHARS = 1000
SUBJECT_KINDS = ("approval", "recommendation")
DECISIONS = ("approve", "reject")
ENTRY_KINDS = ("credit", "reserve", "consume", "refund")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {datetime: UTCDateTime(), int: BigInteger()}


class Workspace(Base):
    """A tenant: users, uploads and GPU quota belong to one workspace."""

    __tablename__ = "workspaces"
    __table_args__ = (CheckConstraint("max_concurrent_gpu_jobs >= 0", name="quota_not_negative"),)

    workspace_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    max_concurrent_gpu_jobs: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"),)

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.workspace_id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key: public ``prefix`` (lookup) + argon2id ``key_hash``; never the plaintext."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Account(Base):
    """A user's token balance, kept equal to ``economics.ledger.balances`` over the user's
    entries: updated in the same transaction as each entry insert, under the row's lock."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("credited - spent - reserved_outstanding >= 0", name="available_not_negative"),
        CheckConstraint("reserved_outstanding >= 0 AND spent >= 0", name="amounts_not_negative"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), primary_key=True)
    credited: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    reserved_outstanding: Mapped[int] = mapped_column(default=0)
    consumed: Mapped[int] = mapped_column(default=0)
    refunded: Mapped[int] = mapped_column(default=0)
    refunded_consumed: Mapped[int] = mapped_column(default=0)
    spent: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One ledger entry (columns of the bronze ``ledger_entries`` + ``seq``/``recorded_at``)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint("tokens > 0", name="tokens_positive"),
        Index(None, "user_id", "seq"),
        # The recovery sensor: reservations (and settlements) by age, and a job's settlements.
        Index(None, "kind", "occurred_at"),
        Index(None, "task_id", "kind"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"))
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    tokens: Mapped[int]
    reason: Mapped[str] = mapped_column(String(500))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Upload(Base):
    """An upload: random ``video_id``; ``sha256`` de-duplicates within a workspace only.

    ``duplicate_of`` names the workspace's first upload of the same bytes when another user
    of the workspace sends them again (the media object is shared, the row is their own).
    """

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(_one_of("status", UPLOAD_STATUSES), name="status"),
        CheckConstraint(_one_of("source", UPLOAD_SOURCES), name="source"),
        UniqueConstraint("workspace_id", "user_id", "sha256"),
        # One original per content in a workspace (partial: duplicates point at it).
        Index(
            "uq_uploads_workspace_content",
            "workspace_id",
            "sha256",
            unique=True,
            sqlite_where=text("duplicate_of IS NULL"),
            postgresql_where=text("duplicate_of IS NULL"),
        ),
        Index(None, "user_id", "seq"),
        # The GPU admission counts a workspace's unfinished uploads (admission.py).
        Index(None, "workspace_id", "status"),
        # The recovery sensor: unfinished uploads older than its deadline, every workspace.
        Index(None, "status", "uploaded_at"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(String(40), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.workspace_id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"))
    sha256: Mapped[str | None] = mapped_column(String(64))
    duplicate_of: Mapped[str | None] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int | None]
    media_key: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # The uploader's priority weights as JSON {"quality", "cost", "speed"}; None = balanced.
    priorities: Mapped[str | None] = mapped_column(Text)
    # The uploader's description of the effect they want (<= 1,000 characters); None = none.
    description: Mapped[str | None] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class UploadRejection(Base):
    """An upload refused before it became a video (columns of bronze ``upload_rejections``).
    ``user_id`` is nullable: a request can be refused before it is authenticated."""

    __tablename__ = "upload_rejections"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    rejection_id: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int | None]
    http_status: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(1000))
    rejected_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    """A claimed Idempotency-Key: scope (user, route), key, the request body's hash and, once
    the first request finished, its response (status + body)."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), primary_key=True)
    route: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None]


class Notification(Base):
    """Outbox row: written in the transaction that caused it, delivered later
    (``delivered_at`` set by the deliverer)."""

    __tablename__ = "notifications"
    __table_args__ = (Index(None, "user_id", "seq"),)

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"))
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Decision(Base):
    """An admin decision on an approval or a recommendation: the first one stands."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(_one_of("subject_kind", SUBJECT_KINDS), name="subject_kind"),
        CheckConstraint(_one_of("decision", DECISIONS), name="decision"),
        UniqueConstraint("subject_kind", "subject_id"),
        # The recovery sensor: approvals decided in a time window.
        Index(None, "subject_kind", "decided_at"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(200))
    # The video an approval concerns (None for recommendations): the lake's
    # approval_decisions rows are keyed to it.
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10))
    admin: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


# A user's run of a published effect (``resources/store/runs.py``): queued (the API reserved
# its price) → running (its Dagster run picked it up) → delivered (output stored, price
# charged) | refunded (nothing delivered: the reservation given back) | failed (nothing
# delivered and nothing was reserved: a free effect).
RUN_STATUSES = ("queued", "running", "delivered", "refunded", "failed")
# How the run's provider was chosen: the manifest's best (exploit, probability 1 − ε), another
# one (explore, ε), an admin's emergency override (forced), or no provider at all because a
# stored output was reused (cache).
ROUTING_DECISIONS = ("exploit", "explore", "forced", "cache")
CACHE_DECISION = ROUTING_DECISIONS[-1]


class EffectRun(Base):
    """A user's run of a published gallery effect on their own video: one job, charged once.

    The request columns (effect, pinned revision, parameters, input, price) are written by the
    API with the run's reservation in one transaction and landed into ``bronze/effect_runs``;
    the state columns (``status``, ``progress``, routing, output) are the run's operational
    state, moved by its Dagster run (its events are in ``pipeline_events`` under
    ``run_id``, the correlation id). ``params`` is JSON (the revision's parameters with the
    user's, validated); ``tokens`` the price reserved (the ledger job is
    ``economics.ledger.job_id(run_id)``): the effective price when the run was accepted
    (``economics.pricing.run_price``), derived from ``revision_price_tokens`` (the pinned
    revision's price) and the runtime price parameter in force, whose change is
    ``price_change_id`` (null: the revision's price stood); ``cache_key`` names a delivered output for reuse
    (``assets/runs/plan.py``), ``cached_from`` the run whose output a cache hit reused.
    """

    __tablename__ = "effect_runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        CheckConstraint(
            f"routing_decision IS NULL OR {_one_of('routing_decision', ROUTING_DECISIONS)}", name="routing_decision"
        ),
        CheckConstraint("tokens >= 0", name="tokens_not_negative"),
        CheckConstraint("revision_price_tokens >= 0", name="revision_price_not_negative"),
        Index(None, "user_id", "seq"),
        # The GPU admission counts a workspace's unfinished runs (admission.py).
        Index(None, "workspace_id", "status"),
        # The result cache looks delivered outputs up by key within a workspace.
        Index(None, "workspace_id", "cache_key"),
        # The orphan-recovery sensor watches unfinished runs by age (watch: runs.unfinished).
        Index(None, "status", "created_at"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.workspace_id"))
    slug: Mapped[str] = mapped_column(String(200))
    revision_id: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    effect_type: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)
    video_id: Mapped[str] = mapped_column(String(40))
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_key: Mapped[str] = mapped_column(String(500))
    tokens: Mapped[int]
    revision_price_tokens: Mapped[int]
    price_change_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    provider_id: Mapped[str | None] = mapped_column(String(64))
    provider_version: Mapped[str | None] = mapped_column(String(64))
    routing_decision: Mapped[str | None] = mapped_column(String(16))
    propensity: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    output_key: Mapped[str | None] = mapped_column(String(500))
    cache_key: Mapped[str | None] = mapped_column(String(64))
    cached_from: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- remote provider tasks (not mirrored: operational state; its history is the lake's
# execution and pipeline events) -----------------------------------------------------------
# waiting (not sent: no slot, breaker open, or retry backoff) → submitting (a slot is claimed,
# the send is under way) → submitted (the provider has it) → cancelling (past a deadline, the
# interrupt is sent; waiting for the provider's final record) → finished (outcome known) →
# collected (M6 stored the output, recorded the outcome and cleaned the provider up).
REMOTE_STATES = ("waiting", "submitting", "submitted", "cancelling", "finished", "collected")
BREAKER_STATES = ("closed", "open", "half_open")


class RemoteTask(Base):
    """A provider task that runs on a remote provider (``resources.providers.resilience``):
    its state, its provider job id and handle, the provider's timestamps and its outcome.

    ``spec`` is the JSON the sender needs without the lake (``input_key``, ``params``,
    ``prompt``); ``result`` the outcome (``status``, ``error_class``, ``error_message``,
    ``queue_wait_ms``, ``compute_seconds``, ``duration_ms``, ``partner_cost_usd``,
    ``attempts``, ``reused``, ``output``: the provider's file, for download and clean-up).
    """

    __tablename__ = "remote_tasks"
    __table_args__ = (
        CheckConstraint(_one_of("state", REMOTE_STATES), name="state"),
        Index(None, "state", "provider_id"),
    )

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    video_id: Mapped[str] = mapped_column(String(200), index=True)
    provider_id: Mapped[str] = mapped_column(String(64))
    effect_type: Mapped[str] = mapped_column(String(64))
    selection: Mapped[str] = mapped_column(String(20))
    spec: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Which of the provider's servers the task was admitted to (0-based; None before a claim,
    # or for rows older than the column): one prompt per server (resilience.assign_servers).
    server: Mapped[int | None] = mapped_column(Integer)
    provider_job_id: Mapped[str | None] = mapped_column(String(200))
    handle: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    not_before: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    collected_at: Mapped[datetime | None]
    error_class: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[str | None] = mapped_column(Text)


class ProviderBreaker(Base):
    """A provider's circuit breaker (``resources.providers.resilience.Breaker``); its row lock
    also serialises admission to the provider. ``outcomes`` is JSON ``[[epoch_ms, ok], ...]``."""

    __tablename__ = "provider_breakers"
    __table_args__ = (CheckConstraint(_one_of("state", BREAKER_STATES), name="state"),)

    provider_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    outcomes: Mapped[str] = mapped_column(Text, default="[]")
    opened_at: Mapped[datetime | None]
    probes_in_flight: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime | None]


# --- the gallery's revisions and pins ------------------------------------------------------
# published (M10 moved the pin on an admin's approval of new content), pin (an admin moved it
# to a newer revision), rollback (an admin moved it to an older one).
PIN_KINDS = ("published", "pin", "rollback")


class EffectRevision(Base):
    """One published revision of a gallery effect: immutable (``resources/store/revisions.py``
    has no update; an ORM update or delete is refused, and so is any SQL ``UPDATE`` or
    ``DELETE`` by a trigger of migration 0007).

    ``content_hash`` is sha256 over what the revision shows and does (effect type, provider,
    parameters, prompt and template, render spec's workflow hash, the content-addressed keys
    of its media): the same content on the same slug is the same revision, so a re-run that
    yields it again writes nothing. ``params``, ``snapshot`` and ``render_spec`` are JSON.
    ``price_tokens`` is the effect's list price (``data/effects.yaml``) when published.
    """

    __tablename__ = "effect_revisions"
    __table_args__ = (
        UniqueConstraint("slug", "content_hash"),
        CheckConstraint("price_tokens >= 0", name="price_not_negative"),
        Index(None, "slug", "seq"),
        Index(None, "source_video_id"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    revision_id: Mapped[str] = mapped_column(String(40), unique=True)
    slug: Mapped[str] = mapped_column(String(200))
    effect_type: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)
    template_id: Mapped[str] = mapped_column(String(200))
    template_version: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    price_tokens: Mapped[int]
    snapshot: Mapped[str] = mapped_column(Text)
    render_spec: Mapped[str | None] = mapped_column(Text)
    output_key: Mapped[str] = mapped_column(String(500))
    preview_key: Mapped[str] = mapped_column(String(500))
    approval_id: Mapped[str] = mapped_column(String(200))
    source_video_id: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class EffectPin(Base):
    """The revision a slug's gallery entry shows now (one row per published slug; it moves,
    ``EffectPinEvent`` keeps every move)."""

    __tablename__ = "effect_pins"

    slug: Mapped[str] = mapped_column(String(200), primary_key=True)
    revision_id: Mapped[str] = mapped_column(ForeignKey("effect_revisions.revision_id"))
    pinned_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    pinned_at: Mapped[datetime] = mapped_column(default=utcnow)


class EffectPinEvent(Base):
    """One move of a slug's pin (append-only, like the revisions): from
    ``previous_revision_id`` (None for the first publication) to ``revision_id``."""

    __tablename__ = "effect_pin_events"
    __table_args__ = (CheckConstraint(_one_of("kind", PIN_KINDS), name="kind"), Index(None, "slug", "seq"))

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    slug: Mapped[str] = mapped_column(String(200))
    revision_id: Mapped[str] = mapped_column(String(40))
    previous_revision_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    pinned_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    pinned_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


# Tables that only ever grow: the ORM refuses to update or delete their rows (the migration's
# triggers refuse it in SQL too).
APPEND_ONLY: tuple[type[Base], ...] = (EffectRevision, EffectPinEvent)


def _refuse_change(mapper, connection, target) -> None:
    raise ImmutableRow(f"{type(target).__tablename__} rows are immutable: write a new one")


for _model in APPEND_ONLY:
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)

# Tables landed into the lake, by name (``changes.changes_since``).
MIRRORED: dict[str, type[Base]] = {
    m.__tablename__: m
    for m in (Upload, UploadRejection, LedgerEntry, Notification, Decision, EffectRevision, EffectPinEvent, EffectRun)
}
# --- runtime parameters (not mirrored: the platform's live settings and their audit trail;
# docs/signals.md, "Runtime parameters") ---------------------------------------------------
# provider: <provider_id>.concurrency (dispatch slots); effect: <effect_type>.price_tokens (the
# list price M5 charges); routing: <effect_type>.pin / demote.<provider_id> (every manifest
# publication).
PARAMETER_SCOPES = ("provider", "effect", "routing")
# Who asked for a change: an automatic action on a bottleneck classification, an approved (or
# auto-applicable) recommendation, or the rollback of an earlier change.
CHANGE_SOURCES = ("bottleneck", "recommendation", "rollback")


class RuntimeParameter(Base):
    """The value in force of one runtime parameter (JSON), and the change that set it. No row:
    the shipped default (``providers.yaml``, ``effects.yaml``, the economics job's ranking)."""

    __tablename__ = "runtime_parameters"
    __table_args__ = (CheckConstraint(_one_of("scope", PARAMETER_SCOPES), name="scope"),)

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    change_id: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ParameterChange(Base):
    """The audit trail: every application and rollback of a runtime parameter, with the value
    before and after (JSON; null = not set, the shipped default), written in the transaction
    that changes the value. ``rolled_back_by`` names the change that undid this one."""

    __tablename__ = "parameter_changes"
    __table_args__ = (
        CheckConstraint(_one_of("source", CHANGE_SOURCES), name="source"),
        Index(None, "scope", "subject", "name"),
        Index(None, "source", "source_id"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    change_id: Mapped[str] = mapped_column(String(40), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    # What the change adds to the hourly bill (a scale-up's servers), USD/h; null = nothing.
    cost_usd_per_hour: Mapped[float | None] = mapped_column(Float)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    rolled_back_by: Mapped[str | None] = mapped_column(String(40))


# --- alerts (not mirrored: their state changes in place; gold/alerts holds a snapshot per
# signals cycle) ------------------------------------------------------------------------------
# open → acknowledged (an admin has seen it) → resolved (its classifications cleared, or an
# admin closed it); open → resolved directly too. resolved is final: the next episode of the
# same condition is a new alert.
ALERT_STATES = ("open", "acknowledged", "resolved")
ALERT_SEVERITIES = ("warning", "critical")
ALERT_RESOLUTIONS = ("cleared", "admin")
# pending (queued with the alert) → sent | dead_letter (every attempt failed; kept with the
# last error for an operator).
DELIVERY_STATES = ("pending", "sent", "dead_letter")


class Alert(Base):
    """An alert: one episode of a bottleneck condition of one group (category × provider ×
    effect type, or × user; per source), however many classifications and cycles it spans
    (``resources/store/alerts.py``)."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_one_of("state", ALERT_STATES), name="state"),
        CheckConstraint(_one_of("severity", ALERT_SEVERITIES), name="severity"),
        Index(None, "group_key", "state"),
        Index(None, "state", "opened_at"),
    )

    alert_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    effect_type: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text)
    runbook: Mapped[str] = mapped_column(String(200))
    cost_impact_usd_per_hour: Mapped[float] = mapped_column(Float)
    classifications: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class AlertClassification(Base):
    """Which alert a bottleneck classification belongs to (each to exactly one)."""

    __tablename__ = "alert_classifications"

    classification_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertDelivery(Base):
    """One notice of an alert to one recipient on one channel (``email``): queued with the
    alert, sent once; after the last failed attempt a dead letter with its error."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint(_one_of("state", DELIVERY_STATES), name="state"),
        UniqueConstraint("alert_id", "channel", "recipient"),
        Index(None, "state", "created_at"),
    )

    delivery_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    dead_lettered_at: Mapped[datetime | None]
