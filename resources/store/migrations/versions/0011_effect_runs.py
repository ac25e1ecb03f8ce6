"""Effect runs: a user's run of a published gallery effect on their own video
(``effect_runs``: request, pinned revision, price reserved, state, routing, output, result-cache
key), and uploads that arrive with a run (``uploads.source = 'run'``: a run's input, for
which no effect-creation job starts).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_SOURCES = "source IN ('upload', 'presign', 'link')"
NEW_SOURCES = "source IN ('upload', 'presign', 'link', 'run')"
RUN_STATUSES = "status IN ('queued', 'running', 'delivered', 'refunded', 'failed')"
ROUTING_DECISIONS = "routing_decision IS NULL OR routing_decision IN ('exploit', 'explore', 'forced', 'cache')"


def _sources(condition: str) -> None:
    # SQLite cannot alter a constraint: batch mode rebuilds the table (a no-op wrapper on
    # PostgreSQL).
    with op.batch_alter_table("uploads") as batch:
        batch.drop_constraint(op.f("ck_uploads_source"), type_="check")
        batch.create_check_constraint(op.f("ck_uploads_source"), condition)


def upgrade() -> None:
    _sources(NEW_SOURCES)
    op.create_table(
        "effect_runs",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("revision_id", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("effect_type", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("video_id", sa.String(length=40), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("input_key", sa.String(length=500), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("provider_version", sa.String(length=64), nullable=True),
        sa.Column("routing_decision", sa.String(length=16), nullable=True),
        sa.Column("propensity", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("output_key", sa.String(length=500), nullable=True),
        sa.Column("cache_key", sa.String(length=64), nullable=True),
        sa.Column("cached_from", sa.String(length=40), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(RUN_STATUSES, name=op.f("ck_effect_runs_status")),
        sa.CheckConstraint(ROUTING_DECISIONS, name=op.f("ck_effect_runs_routing_decision")),
        sa.CheckConstraint("tokens >= 0", name=op.f("ck_effect_runs_tokens_not_negative")),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], name=op.f("fk_effect_runs_user_id_users")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.workspace_id"], name=op.f("fk_effect_runs_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_effect_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_effect_runs_run_id")),
    )
    op.create_index(op.f("ix_effect_runs_user_id_seq"), "effect_runs", ["user_id", "seq"])
    op.create_index(op.f("ix_effect_runs_workspace_id_status"), "effect_runs", ["workspace_id", "status"])
    op.create_index(op.f("ix_effect_runs_workspace_id_cache_key"), "effect_runs", ["workspace_id", "cache_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_effect_runs_workspace_id_cache_key"), table_name="effect_runs")
    op.drop_index(op.f("ix_effect_runs_workspace_id_status"), table_name="effect_runs")
    op.drop_index(op.f("ix_effect_runs_user_id_seq"), table_name="effect_runs")
    op.drop_table("effect_runs")
    op.execute("UPDATE uploads SET source = 'upload' WHERE source = 'run'")
    _sources(OLD_SOURCES)
