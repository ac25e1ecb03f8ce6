"""``Store``: the transactional store as one plain client (no Dagster).

Each public method runs in its own transaction — a write transaction (SQLite ``BEGIN
IMMEDIATE``, PostgreSQL row locks where needed: ``engine.py``) or a read-only one — and
returns plain dicts, never ORM objects, so nothing leaks out of a transaction and no caller
code ever runs inside one (which keeps every transaction short: ``changes.py`` relies on it).
The logic lives in the modules named in each docstring; this class only opens transactions.

Thread-safe (one engine, one session per call) and process-safe (each process opens its own
``Store``). Errors: ``resources.store.errors`` and ``economics.budget.UserQuotaExceeded``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from economics.pricing import RunPrice
from resources.store import (
    admission,
    alerts,
    changes,
    decisions,
    idempotency,
    identity,
    ledger,
    outbox,
    parameters,
    remote,
    revisions,
    runs,
    uploads,
    watch,
)
from resources.store.engine import create_store_engine, database_url, reader
from resources.store.errors import StoreBusy
from resources.store.idempotency import StoredResponse
from resources.store.migrate import migrate
from resources.store.revisions import Pinned, Published
from resources.store.uploads import UploadResult

# SQLite "database is locked" (busy timeout ran out); PostgreSQL lock_not_available (55P03).
_BUSY = ("database is locked", "lock timeout", "LockNotAvailable")


class Store:
    """The SQL transactional store at ``url`` (``engine.database_url``: argument, else
    ``$DATABASE_URL``, else the embedded SQLite file under ``data/store/``).

    Args:
        upgrade: run the migrations to head first (idempotent; the embedded default).
        engine: an engine made by ``engine.create_store_engine`` (e.g. with other timeouts);
            ``url`` is then ignored.
    """

    def __init__(self, url: str | None = None, *, upgrade: bool = True, engine: Engine | None = None):
        self.engine = engine or create_store_engine(database_url(url))
        self.url = self.engine.url.render_as_string(hide_password=False)
        if upgrade:
            migrate(engine=self.engine)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(reader(self.engine), expire_on_commit=False)

    def upgrade(self) -> None:
        """Run the migrations to head (idempotent; for a Store built with ``upgrade=False``)."""
        migrate(engine=self.engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Close the pool's connections."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed on success, rolled back on error. For composing
        several operations atomically with the module functions (e.g. an upload and its
        notification); keep it short and free of I/O."""
        try:
            with self._writer.begin() as session:
                yield session
        except OperationalError as exc:
            if any(b in str(exc) for b in _BUSY):
                raise StoreBusy("the store is busy; retry") from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction."""
        with self._reader.begin() as session:
            yield session

    # --- identity ------------------------------------------------------------------------
    def create_workspace(self, name: str, max_concurrent_gpu_jobs: int = 2) -> dict:
        """``identity.create_workspace``."""
        with self.write() as s:
            return identity.create_workspace(s, name, max_concurrent_gpu_jobs)

    def workspace(self, workspace_id: str) -> dict:
        """``identity.get_workspace``."""
        with self.read() as s:
            return identity.get_workspace(s, workspace_id)

    def create_user(
        self, workspace_id: str, role: str = "user", name: str | None = None, welcome_tokens: int = 0
    ) -> tuple[dict, str]:
        """(user, plaintext API key shown once): ``identity.create_user``."""
        with self.write() as s:
            return identity.create_user(s, workspace_id, role, name, welcome_tokens)

    def ensure_admin(self, api_key: str, workspace_name: str = "platform") -> dict:
        """``identity.ensure_admin``: the bootstrap admin of a configured key."""
        with self.write() as s:
            return identity.ensure_admin(s, api_key, workspace_name)

    def user(self, user_id: str) -> dict:
        """``identity.get_user``."""
        with self.read() as s:
            return identity.get_user(s, user_id)

    def create_api_key(self, user_id: str) -> tuple[dict, str]:
        """``identity.create_api_key``."""
        with self.write() as s:
            return identity.create_api_key(s, user_id)

    def authenticate(self, api_key: str) -> dict:
        """The user of a valid key (``identity.authenticate``); raises ``InvalidApiKey``."""
        with self.read() as s:
            return identity.authenticate(s, api_key)

    def revoke_api_key(self, key_id: str) -> dict:
        """``identity.revoke_api_key``."""
        with self.write() as s:
            return identity.revoke_api_key(s, key_id)

    def api_keys(self, user_id: str) -> list[dict]:
        """``identity.api_keys``."""
        with self.read() as s:
            return identity.api_keys(s, user_id)

    def gpu_load(self, workspace_id: str) -> dict:
        """``admission.gpu_load``: the workspace's GPU slots and unfinished uploads."""
        with self.read() as s:
            return admission.gpu_load(s, workspace_id)

    # --- ledger --------------------------------------------------------------------------
    def credit(
        self, user_id: str, tokens: int, topup_id: str, reason: str = "top-up", at: datetime | None = None
    ) -> dict:
        """``ledger.credit``: the credit entry (a repeat returns the first)."""
        with self.write() as s:
            return ledger.credit(s, user_id, tokens, topup_id, reason, at)

    def reserve(
        self, user_id: str, job_id: str, tokens: int, correlation_id: str | None = None, at: datetime | None = None
    ) -> dict:
        """``ledger.reserve``: the reserve entry; ``UserQuotaExceeded`` beyond the balance."""
        with self.write() as s:
            return ledger.reserve(s, user_id, job_id, tokens, correlation_id, at=at)

    def consume(self, job_id: str, reason: str = "delivered", at: datetime | None = None) -> dict:
        """``ledger.consume``: the consume entry."""
        with self.write() as s:
            return ledger.consume(s, job_id, reason, at)

    def refund(self, job_id: str, reason: str, at: datetime | None = None) -> dict:
        """``ledger.refund``: the refund entry."""
        with self.write() as s:
            return ledger.refund(s, job_id, reason, at)

    def balance(self, user_id: str) -> dict:
        """``ledger.balance``: the user's ``economics.ledger.BALANCE_SCHEMA`` row."""
        with self.read() as s:
            return ledger.balance(s, user_id)

    def entries(self, user_id: str, after_seq: int = 0, limit: int | None = None) -> list[dict]:
        """``ledger.entries``: the user's ledger entries in seq order."""
        with self.read() as s:
            return ledger.entries(s, user_id, after_seq, limit)

    # --- uploads -------------------------------------------------------------------------
    def create_upload(self, user_id: str, **fields) -> UploadResult:
        """``uploads.create_upload`` (keyword fields: filename, content_type, sha256, bytes_,
        media_key, source, status, priorities, description, at)."""
        with self.write() as s:
            return uploads.create_upload(s, user_id, **fields)

    def complete_upload(self, video_id: str, user_id: str, **fields) -> UploadResult:
        """``uploads.complete_upload`` (sha256, bytes_, media_key)."""
        with self.write() as s:
            return uploads.complete_upload(s, video_id, user_id, **fields)

    def upload(self, video_id: str, user_id: str | None = None) -> dict:
        """``uploads.get_upload``: ``UploadNotFound`` also when not ``user_id``'s."""
        with self.read() as s:
            return uploads.get_upload(s, video_id, user_id)

    def uploads(self, user_id: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
        """``uploads.list_uploads``."""
        with self.read() as s:
            return uploads.list_uploads(s, user_id, after_seq, limit)

    def set_upload_status(self, video_id: str, status: str) -> dict:
        """``uploads.set_upload_status``."""
        with self.write() as s:
            return uploads.set_upload_status(s, video_id, status)

    def record_rejection(self, **fields) -> dict:
        """``uploads.record_rejection``."""
        with self.write() as s:
            return uploads.record_rejection(s, **fields)

    # --- idempotency ---------------------------------------------------------------------
    def claim_idempotency(
        self, user_id: str, route: str, key: str, body_hash: str, stale_after: timedelta = idempotency.STALE_CLAIM
    ) -> StoredResponse | None:
        """``idempotency.claim``: None (proceed, then complete or release) or the response
        to replay; ``IdempotencyMismatch`` / ``IdempotencyInProgress``."""
        with self.write() as s:
            return idempotency.claim(s, user_id, route, key, body_hash, stale_after)

    def complete_idempotency(self, user_id: str, route: str, key: str, status: int, body: str) -> None:
        """``idempotency.complete``."""
        with self.write() as s:
            idempotency.complete(s, user_id, route, key, status, body)

    def release_idempotency(self, user_id: str, route: str, key: str) -> None:
        """``idempotency.release``."""
        with self.write() as s:
            idempotency.release(s, user_id, route, key)

    def purge_idempotency(self, older_than: datetime) -> int:
        """``idempotency.purge``."""
        with self.write() as s:
            return idempotency.purge(s, older_than)

    # --- notifications (outbox) ----------------------------------------------------------
    def notify(
        self,
        user_id: str,
        kind: str,
        title: str,
        body: str = "",
        url: str = "",
        correlation_id: str | None = None,
        notification_id: str | None = None,
        at: datetime | None = None,
    ) -> dict:
        """``outbox.notify``."""
        with self.write() as s:
            return outbox.notify(s, user_id, kind, title, body, url, correlation_id, notification_id, at)

    def pending_notifications(self, limit: int = 100) -> list[dict]:
        """``outbox.pending``."""
        with self.read() as s:
            return outbox.pending(s, limit)

    def mark_delivered(self, notification_ids: list[str], at: datetime | None = None) -> int:
        """``outbox.mark_delivered``."""
        with self.write() as s:
            return outbox.mark_delivered(s, notification_ids, at)

    def notifications(
        self, user_id: str, after_seq: int = 0, limit: int = 50, correlation_id: str | None = None
    ) -> list[dict]:
        """``outbox.for_user``."""
        with self.read() as s:
            return outbox.for_user(s, user_id, after_seq, limit, correlation_id)

    # --- decisions -----------------------------------------------------------------------
    def record_decision(
        self,
        subject_kind: str,
        subject_id: str,
        decision: str,
        admin: str,
        reason: str = "",
        at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> dict:
        """``decisions.record``: the decision that stands; ``DecisionConflict`` if contrary."""
        with self.write() as s:
            return decisions.record(s, subject_kind, subject_id, decision, admin, reason, at, correlation_id)

    def decisions(self, subject_kind: str) -> list[dict]:
        """``decisions.of_kind``."""
        with self.read() as s:
            return decisions.of_kind(s, subject_kind)

    def decision(self, subject_kind: str, subject_id: str) -> dict:
        """``decisions.get``."""
        with self.read() as s:
            return decisions.get(s, subject_kind, subject_id)

    # --- gallery revisions and pins --------------------------------------------------------
    def publish_revision(self, values: dict, at: datetime | None = None) -> Published:
        """``revisions.publish``: the revision of this content (written once) and the pin."""
        with self.write() as s:
            return revisions.publish(s, values, at)

    def pin_revision(
        self,
        slug: str,
        revision_id: str,
        pinned_by: str,
        reason: str = "",
        expected_revision_id: str | None = None,
        at: datetime | None = None,
    ) -> Pinned:
        """``revisions.pin``: move the slug's pin (rollback = an older revision)."""
        with self.write() as s:
            return revisions.pin(s, slug, revision_id, pinned_by, reason, expected_revision_id, at)

    def revision(self, revision_id: str) -> dict:
        """``revisions.get``."""
        with self.read() as s:
            return revisions.get(s, revision_id)

    def revisions(self, slug: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
        """``revisions.of_slug``: the slug's revisions in seq order."""
        with self.read() as s:
            return revisions.of_slug(s, slug, after_seq, limit)

    def pinned_revisions(self, slug: str | None = None) -> list[dict]:
        """``revisions.pinned``: the pinned revision of every slug (or of ``slug``)."""
        with self.read() as s:
            return revisions.pinned(s, slug)

    def video_revisions(self, video_id: str) -> list[dict]:
        """``revisions.of_video``: revisions published from a video's job."""
        with self.read() as s:
            return revisions.of_video(s, video_id)

    def pin_events(self, slug: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
        """``revisions.pin_events``: the slug's pin moves in seq order."""
        with self.read() as s:
            return revisions.pin_events(s, slug, after_seq, limit)

    # --- landing -------------------------------------------------------------------------
    def changes_since(
        self,
        table: str,
        after_seq: int,
        limit: int = 1000,
        *,
        grace: timedelta | None = None,
        now: datetime | None = None,
    ) -> tuple[list[dict], int]:
        """``changes.changes_since``: (rows with seq > after_seq, new cursor)."""
        with self.read() as s:
            return changes.changes_since(s, table, after_seq, limit, grace=grace, now=now)

    def recent_changes(
        self, table: str, after_seq: int, limit: int = 1000, *, now: datetime | None = None
    ) -> tuple[list[dict], int]:
        """``changes.recent``: (committed rows with seq > after_seq, settled cursor)."""
        with self.read() as s:
            return changes.recent(s, table, after_seq, limit, now=now)

    def uploads_by_id(self, video_ids: list[str]) -> list[dict]:
        """``uploads.by_ids``: the uploads among ``video_ids`` that exist (any order)."""
        with self.read() as s:
            return uploads.by_ids(s, video_ids)

    # --- remote provider tasks -----------------------------------------------------------
    # Composed operations (claim, submitted, finish, retry_later…) run in ``write()`` with
    # ``resources.store.remote``'s functions; these are the common reads.
    def remote_tasks(self, states: tuple[str, ...] = remote.OPEN_STATES, video_id: str | None = None) -> list[dict]:
        """``remote.tasks``: remote tasks in ``states`` (default: not collected yet)."""
        with self.read() as s:
            return remote.tasks(s, states, video_id)

    def video_remote_tasks(self, video_id: str) -> list[dict]:
        """``remote.video_tasks``: every remote task of a video."""
        with self.read() as s:
            return remote.video_tasks(s, video_id)

    def breakers(self) -> dict[str, dict]:
        """``remote.breakers``: provider id → its circuit breaker row."""
        with self.read() as s:
            return remote.breakers(s)

    # --- runtime parameters --------------------------------------------------------------
    # Changes compose inside ``write()`` with ``resources.store.parameters`` (apply, rollback:
    # the value and its audit row in one transaction); these are the common reads.
    def parameters(self, scope: str | None = None) -> dict[tuple[str, str, str], dict]:
        """``parameters.in_force``: (scope, subject, name) → the parameter set now."""
        with self.read() as s:
            return parameters.in_force(s, scope)

    def parameter_values(self, scope: str, name: str) -> dict:
        """``parameters.values``: subject → value of ``scope``.``name`` set now."""
        with self.read() as s:
            return parameters.values(s, scope, name)

    def parameter_changes(
        self,
        *,
        source: str | None = None,
        source_ids: list[str] | None = None,
        after_seq: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[dict]:
        """``parameters.changes``: the audit trail in seq order (or newest first)."""
        with self.read() as s:
            return parameters.changes(
                s, source=source, source_ids=source_ids, after_seq=after_seq, limit=limit, newest_first=newest_first
            )

    def parameter_change(self, change_id: str) -> dict:
        """``parameters.get_change``."""
        with self.read() as s:
            return parameters.get_change(s, change_id)

    # --- alerts --------------------------------------------------------------------------
    def sync_alerts(
        self,
        open_classifications: list[dict],
        now: datetime,
        recipients: list[str] | tuple[str, ...] = (),
        emailed: tuple[str, ...] = ("critical",),
    ) -> dict:
        """``alerts.sync``: fold the open classifications into alerts, queue their emails."""
        with self.write() as s:
            return alerts.sync(s, open_classifications, now, recipients, emailed)

    def acknowledge_alert(self, alert_id: str, admin: str, note: str = "") -> dict:
        """``alerts.acknowledge``; ``AlertNotFound`` / ``AlertConflict``."""
        with self.write() as s:
            alerts.acknowledge(s, alert_id, admin, note)
            return alerts.get(s, alert_id)

    def resolve_alert(self, alert_id: str, admin: str, note: str = "") -> dict:
        """``alerts.resolve``; ``AlertNotFound``."""
        with self.write() as s:
            alerts.resolve(s, alert_id, admin, note)
            return alerts.get(s, alert_id)

    def alert(self, alert_id: str) -> dict:
        """``alerts.get``: the alert with its classifications and deliveries."""
        with self.read() as s:
            return alerts.get(s, alert_id)

    def alerts(self, states: tuple[str, ...] = ("open", "acknowledged", "resolved")) -> list[dict]:
        """``alerts.list_alerts``: newest first."""
        with self.read() as s:
            return alerts.list_alerts(s, states)

    def alerts_by_classification(self, classification_ids: list[str]) -> dict[str, dict]:
        """``alerts.by_classification``."""
        with self.read() as s:
            return alerts.by_classification(s, classification_ids)

    def pending_alert_deliveries(self, limit: int = 100) -> list[dict]:
        """``alerts.pending_deliveries``."""
        with self.read() as s:
            return alerts.pending_deliveries(s, limit)

    def alert_delivered(self, delivery_id: str, attempts: int, at: datetime) -> None:
        """``alerts.delivered``."""
        with self.write() as s:
            alerts.delivered(s, delivery_id, attempts, at)

    def alert_dead_letter(self, delivery_id: str, attempts: int, error: str, at: datetime) -> None:
        """``alerts.dead_letter``."""
        with self.write() as s:
            alerts.dead_letter(s, delivery_id, attempts, error, at)

    # --- effect runs ---------------------------------------------------------------------
    def create_run(self, user_id: str, **fields) -> dict:
        """``runs.create_run``: the queued run, its price reserved in the same transaction."""
        with self.write() as s:
            return runs.create_run(s, user_id, **fields)

    def run_price(self, effect_type: str, revision_price_tokens: int) -> RunPrice:
        """``runs.effective_price``: what a run of ``effect_type`` pinned to a revision of that
        price would be reserved now (``create_run`` decides again in its own transaction)."""
        with self.read() as s:
            return runs.effective_price(s, effect_type, revision_price_tokens)

    def effect_run(self, run_id: str, user_id: str | None = None) -> dict:
        """``runs.get_run``: ``RunNotFound`` also when not ``user_id``'s."""
        with self.read() as s:
            return runs.get_run(s, run_id, user_id)

    def effect_runs(self, user_id: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
        """``runs.list_runs``."""
        with self.read() as s:
            return runs.list_runs(s, user_id, after_seq, limit)

    def start_run(self, run_id: str, at: datetime | None = None) -> dict:
        """``runs.start``."""
        with self.write() as s:
            return runs.start(s, run_id, at)

    def update_run(self, run_id: str, **fields) -> dict:
        """``runs.update``: state columns of a running run."""
        with self.write() as s:
            return runs.update(s, run_id, **fields)

    def finish_run(self, run_id: str, status: str, at: datetime | None = None, **fields) -> dict:
        """``runs.finish``."""
        with self.write() as s:
            return runs.finish(s, run_id, status, at, **fields)

    def settle_run(self, run_id: str, status: str, reason: str, at: datetime | None = None, **fields) -> dict | None:
        """``runs.settle``: end a run and settle its tokens once (None: it was already final)."""
        with self.write() as s:
            return runs.settle(s, run_id, status, reason, at, **fields)

    def unfinished_runs(self, before: datetime) -> list[dict]:
        """``runs.unfinished``: queued or running runs created before ``before``."""
        with self.read() as s:
            return runs.unfinished(s, before)

    def cached_run(self, workspace_id: str, cache_key: str) -> dict | None:
        """``runs.cached``: a delivered run of the workspace with this result-cache key."""
        with self.read() as s:
            return runs.cached(s, workspace_id, cache_key)

    # --- recovery (reads of the orphan-recovery sensor) ------------------------------------
    def stale_uploads(self, before: datetime) -> list[dict]:
        """``watch.stale_uploads``: unfinished uploads that arrived before ``before``."""
        with self.read() as s:
            return watch.stale_uploads(s, before)

    def open_reservations(self, before: datetime) -> list[dict]:
        """``watch.open_reservations``: jobs reserved before ``before``, not settled."""
        with self.read() as s:
            return watch.open_reservations(s, before)

    def settlements_between(self, kind: str, after: datetime, before: datetime) -> list[dict]:
        """``watch.settlements_between``: ledger entries of ``kind`` in (after, before]."""
        with self.read() as s:
            return watch.settlements_between(s, kind, after, before)

    def approvals_decided_between(self, after: datetime, before: datetime) -> list[dict]:
        """``watch.approvals_decided_between``: approval decisions in (after, before]."""
        with self.read() as s:
            return watch.approvals_decided_between(s, after, before)
