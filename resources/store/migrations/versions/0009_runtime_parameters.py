"""Runtime parameters (``runtime_parameters``: the value in force of a provider's concurrency,
an effect's price, a routing pin or demotion) and their audit trail (``parameter_changes``:
every application and rollback with the value before and after), changed in one transaction.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runtime_parameters",
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("change_id", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('provider', 'effect', 'routing')", name=op.f("ck_runtime_parameters_scope")),
        sa.PrimaryKeyConstraint("scope", "subject", "name", name=op.f("pk_runtime_parameters")),
    )
    op.create_table(
        "parameter_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("change_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("cost_usd_per_hour", sa.Float(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_back_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "source IN ('bottleneck', 'recommendation', 'rollback')", name=op.f("ck_parameter_changes_source")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_parameter_changes")),
        sa.UniqueConstraint("change_id", name=op.f("uq_parameter_changes_change_id")),
    )
    op.create_index(op.f("ix_parameter_changes_scope_subject_name"), "parameter_changes", ["scope", "subject", "name"])
    op.create_index(op.f("ix_parameter_changes_source_source_id"), "parameter_changes", ["source", "source_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_parameter_changes_source_source_id"), table_name="parameter_changes")
    op.drop_index(op.f("ix_parameter_changes_scope_subject_name"), table_name="parameter_changes")
    op.drop_table("parameter_changes")
    op.drop_table("runtime_parameters")
