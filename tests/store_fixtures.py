"""Fixtures of the store's tests: one store per backend per test session.

SQLite is a file in a temporary directory; PostgreSQL is a database with a unique name
created on the server at 127.0.0.1:5432 (trust auth, user postgres; override the admin URL
with ``EFFECTLAKE_TEST_PG_URL``) and dropped when the session ends. PostgreSQL cases are
skipped, with the reason, only when that server cannot be reached.

Test modules load this file with ``pytest_plugins = ["tests.store_fixtures"]``, so every
module shares the same session fixtures (one PostgreSQL database per session).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from resources.store import Store

PG_ADMIN_URL = os.environ.get("EFFECTLAKE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _pg_admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def _pg_unreachable() -> str | None:
    try:
        engine = _pg_admin()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect: report it as the skip reason
        return (
            f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)} "
            f"unreachable: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        )
    return None


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases (URL), all dropped at session end."""
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    admin = _pg_admin()
    created: list[str] = []

    def new_database() -> str:
        name = f"effectlake_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield new_database
    with admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory, request) -> Callable[[str], str]:
    """``new(backend)`` → the URL of a fresh empty database of that backend."""

    def new(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('store')}/store.db"
        return request.getfixturevalue("pg_databases")()

    return new


@pytest.fixture(scope="session", params=BACKENDS)
def store(request, empty_database) -> Iterator[Store]:
    """A migrated ``Store`` on each backend, shared by the session: tests isolate themselves
    by creating their own workspaces and users (random ids)."""
    instance = Store(empty_database(request.param))
    yield instance
    instance.close()


@pytest.fixture
def workspace(store) -> dict:
    return store.create_workspace("test workspace")


@pytest.fixture
def new_user(store, workspace) -> Callable[..., dict]:
    """``new_user(tokens=0, workspace_id=None, role="user")`` → the user row plus ``api_key``."""

    def make(tokens: int = 0, workspace_id: str | None = None, role: str = "user") -> dict:
        user, key = store.create_user(workspace_id or workspace["workspace_id"], role, welcome_tokens=tokens)
        return user | {"api_key": key}

    return make


def reserve_worker(url: str, user_id: str, job_prefix: str, count: int) -> tuple[int, int, float]:
    """In a separate process: try ``count`` one-token reservations; (granted, refused, seconds)."""
    import time

    from economics.budget import UserQuotaExceeded

    store = Store(url, upgrade=False)
    granted = refused = 0
    start = time.perf_counter()
    for i in range(count):
        try:
            store.reserve(user_id, f"{job_prefix}-{i}", 1)
            granted += 1
        except UserQuotaExceeded:
            refused += 1
    store.close()
    return granted, refused, time.perf_counter() - start
