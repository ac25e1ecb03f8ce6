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
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
UPLOAD_SOURCES = ("upload", "presign", "link")
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


# Tables landed into the lake, by name (``changes.changes_since``).
MIRRORED: dict[str, type[Base]] = {
    m.__tablename__: m for m in (Upload, UploadRejection, LedgerEntry, Notification, Decision)
}


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
