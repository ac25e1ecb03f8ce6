"""Schema migrations of the store, without an alembic.ini: ``migrate(url)`` upgrades a
database to the newest revision shipped in ``migrations/versions``.

Command line (``resources/store/__main__.py``)::

    python -m resources.store upgrade                   # the store at $DATABASE_URL
    python -m resources.store revision "what changed"   # after changing models.py
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from resources.store.engine import create_store_engine, lift_session_limits

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic's ``context`` is one module-level object: in-process runs must not overlap.
# Across processes the database itself makes them take turns (migrations/env.py).
_IN_PROCESS = threading.Lock()


def alembic_config(connection=None) -> Config:
    """An Alembic ``Config`` pointing at the shipped migrations; ``connection`` (an open
    SQLAlchemy connection) is what ``migrations/env.py`` runs them on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(url: str | None = None, revision: str = "head", *, engine: Engine | None = None) -> None:
    """Upgrade the store at ``url`` (``engine.database_url`` rules) to ``revision``.

    Idempotent (an up-to-date database is left alone) and safe to run from several threads
    or processes at once (they take turns: see ``migrations/env.py``)."""
    _run(url, engine, lambda config: command.upgrade(config, revision))


def downgrade(url: str | None = None, revision: str = "base", *, engine: Engine | None = None) -> None:
    """Downgrade the store at ``url`` to ``revision`` (``base``: no tables)."""
    _run(url, engine, lambda config: command.downgrade(config, revision))


def _run(url, engine, action) -> None:
    owned = engine is None
    engine = engine or create_store_engine(url)
    try:
        with _IN_PROCESS, engine.connect() as connection:
            # A migration is not a request: the store's per-statement limits would cut a long
            # index build or backfill short.
            lift_session_limits(connection)
            action(alembic_config(connection))
            connection.commit()
    finally:
        if owned:
            engine.dispose()


def new_revision(message: str) -> None:
    """Autogenerate a revision in ``migrations/versions`` from the difference between the
    models and a fresh SQLite database upgraded to head (review it before committing)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{tmp}/head.db")
        migrate(engine=engine)
        with engine.connect() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
        engine.dispose()
