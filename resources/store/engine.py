"""Engines for the store: where the database is, and how each backend locks.

SQLite (embedded default, a file under ``data/store/``)
    * WAL journal: readers never block the writer nor the writer the readers; each reader
      sees the last committed state.
    * Writes run in ``BEGIN IMMEDIATE`` transactions (the ``begin`` hook below). SQLite's
      default ``BEGIN`` (DEFERRED) starts as a reader and upgrades to a writer at the first
      write; if another connection committed in between, that upgrade fails at once with
      ``database is locked`` (SQLITE_BUSY: waiting could not help, the snapshot is stale)
      instead of waiting. Worse, a read-check-write such as "is the balance enough? then
      reserve" would be racy. ``BEGIN IMMEDIATE`` takes the write lock when the transaction
      starts: writers queue on the busy timeout, and everything a write transaction reads
      is current until it commits — one writer at a time, which is what makes the ledger's
      balance checks exact on SQLite. Read-only sessions use the ``reader`` engine, whose
      transactions stay DEFERRED and so run beside the writer.
    * pysqlite's own transaction handling is switched off (``isolation_level=None``) so the
      hook alone decides how transactions begin.

PostgreSQL (production, ``DATABASE_URL``, driver psycopg2)
    * READ COMMITTED; the ledger takes ``SELECT … FOR UPDATE`` on the one account row it
      changes, so writers of different users run in parallel and writers of one user queue.
    * ``lock_timeout`` and ``statement_timeout`` bound every wait and statement, and
      ``idle_in_transaction_session_timeout`` ends a session that stalls mid-transaction: the
      store's transactions are short by construction, which the landing grace interval of
      ``changes.changes_since`` relies on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from resources.retry import transient_failures
from resources.settings import get_settings

SQLITE_BUSY_TIMEOUT_S = 30.0
# PostgreSQL session limits (milliseconds): see the module docstring.
PG_LOCK_TIMEOUT_MS = 3_000
PG_STATEMENT_TIMEOUT_MS = 5_000
PG_IDLE_IN_TRANSACTION_TIMEOUT_MS = 5_000
# Execution option naming how a SQLite transaction begins (``IMMEDIATE`` or ``DEFERRED``).
SQLITE_BEGIN = "sqlite_begin"


def database_url(url: str | None = None) -> str:
    """The store's URL: ``url``, else ``Settings.database_url`` (``$DATABASE_URL``, else the
    embedded SQLite file under ``data/store/``).

    ``postgres://`` and ``postgresql://`` are given the psycopg2 driver explicitly.
    """
    url = url or get_settings().database_url
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


def create_store_engine(url: str | None = None, **kwargs) -> Engine:
    """A writer engine for ``url`` (see ``database_url``) with the backend's locking set up.

    For SQLite the file's directory is created. Extra ``kwargs`` go to ``create_engine``.
    Use ``reader(engine)`` for read-only sessions.
    """
    url = make_url(database_url(url))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if url.get_backend_name() == "postgresql":
        options = (
            f"-c lock_timeout={PG_LOCK_TIMEOUT_MS} -c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"
            f" -c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        )
        connect_args = {"options": options, "connect_timeout": 5} | kwargs.pop("connect_args", {})
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)
    raise ValueError(f"unsupported store backend {url.get_backend_name()!r} (sqlite or postgresql)")


def reader(engine: Engine) -> Engine:
    """The same pool as ``engine``, for read-only sessions (SQLite: DEFERRED transactions)."""
    return engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _sqlite_engine(url, **kwargs) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    engine = create_engine(url, connect_args=connect_args | kwargs.pop("connect_args", {}), **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Hand transaction control to the "begin" hook (pysqlite would otherwise emit its
        # own deferred BEGIN before DML and commit before DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Switching a new file to WAL takes an exclusive lock that SQLite's busy timeout does
        # not wait for: when processes open a fresh store together (API and Dagster starting
        # at once), the loser is told "database is locked" at once, so it retries. A file
        # already in WAL needs no switch.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            transient_failures(_locked, attempts=100, pause_s=0.05)(cursor.execute, "PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe in WAL
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
