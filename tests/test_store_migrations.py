"""The store's Alembic migrations give exactly the models' schema, on SQLite and PostgreSQL,
and the SQLite engine runs writes in BEGIN IMMEDIATE over a WAL journal."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, event, inspect, text

from resources.store import Store, migrate
from resources.store.engine import create_store_engine, database_url
from resources.store.migrate import alembic_config, downgrade
from resources.store.models import Base

pytest_plugins = ["tests.store_fixtures"]


def _diff(url: str, metadata=Base.metadata) -> list:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            # Reflection is many catalogue queries in one transaction: on a loaded machine its
            # Python gaps outlast the store's idle-in-transaction limit (PostgreSQL).
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET idle_in_transaction_session_timeout = 0"))
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_on_an_empty_database_gives_exactly_the_models_schema(backend, empty_database):
    url = empty_database(backend)
    assert _diff(url), "an empty database must differ from the models (else the check is void)"
    migrate(url)
    assert _diff(url) == []
    # The comparison sees a difference when there is one.
    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("not_migrated", extra, Column("id", Integer, primary_key=True))
    assert [d[0] for d in _diff(url, extra)] == ["add_table"]

    migrate(url)  # idempotent
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_store_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()
    downgrade(url)
    engine = create_store_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate(url)
    assert _diff(url) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_migrations_take_turns(backend, empty_database):
    """The API and the Dagster processes may start together: each upgrades the store."""
    url = empty_database(backend)
    errors = []

    def in_thread():
        try:
            migrate(url)
        except Exception as exc:  # asserted below
            errors.append(exc)

    # spawn: the children open their own connections in fresh interpreters (a fork of this
    # threaded test process can hang a child on a lock held at the fork)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = [pool.apply_async(migrate, (url,)) for _ in range(2)]
        thread = threading.Thread(target=in_thread)
        thread.start()
        for run in runs:
            run.get(timeout=120)  # re-raises a failed migration
        thread.join()
    assert errors == []
    assert _diff(url) == []


def test_sqlite_uses_wal_and_begin_immediate_for_writes_only(empty_database):
    store = Store(empty_database("sqlite"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    seen = []
    event.listen(
        store.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: seen.append(statement) if statement.startswith("BEGIN") else None,
    )
    workspace = store.create_workspace("w")
    assert seen == ["BEGIN IMMEDIATE"]
    store.workspace(workspace["workspace_id"])
    assert seen == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]
    store.close()


def test_database_url_defaults_and_driver(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database_url().startswith("sqlite:///") and database_url().endswith("data/store/effectlake.db")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/prod")
    assert database_url() == "postgresql+psycopg2://u@db:5432/prod"
    assert database_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    with pytest.raises(ValueError, match="unsupported"):
        create_store_engine("mysql://u@h/d")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_writer_kept_waiting_past_the_lock_timeout_gets_store_busy(backend, empty_database):
    from resources.store import ledger
    from resources.store.errors import StoreBusy

    url = empty_database(backend)
    short = {"timeout": 0.2} if backend == "sqlite" else {"options": "-c lock_timeout=200"}
    store = Store(url, engine=create_store_engine(url, connect_args=short))
    user, _ = store.create_user(store.create_workspace("w")["workspace_id"], welcome_tokens=10)
    with store.write() as holder:  # holds the account row (PostgreSQL) / the write lock (SQLite)
        ledger.reserve(holder, user["user_id"], "held", 1)
        with pytest.raises(StoreBusy) as busy:
            store.reserve(user["user_id"], "waiting", 1)
    assert busy.value.http_status == 503
    store.reserve(user["user_id"], "waiting", 1)  # free again
    assert store.balance(user["user_id"])["reserved_outstanding"] == 2
    store.close()


def test_the_documented_command_upgrades_the_store_at_database_url(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    url = f"sqlite:///{tmp_path}/cli.db"
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-m", "resources.store", "upgrade"], cwd=root, env=env, check=True, timeout=120)
    assert _diff(url) == []
