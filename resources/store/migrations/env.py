"""Alembic environment of the store, driven programmatically by ``resources.store.migrate``
(no alembic.ini): the caller passes an open connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from resources.store.models import Base
from resources.store.sql import UTCDateTime

# Any constant: the advisory lock that makes concurrent upgrades (API and Dagster starting
# together) take turns on PostgreSQL. On SQLite the BEGIN IMMEDIATE of the engine does it.
_PG_MIGRATION_LOCK = 0x5EFF_EC7A


def _render_item(type_, obj, autogen_context):
    # Revisions are history: render the store's UTC type as the plain SQLAlchemy type it
    # stores, so a revision never imports the models it predates.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite supports transactional DDL once pysqlite's own transaction handling is off
        # (engine.py): a failed migration leaves nothing half-applied on either backend.
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the store's migrations through resources.store.migrate.migrate(url)")
_run(connection)
