"""Remote provider tasks (``remote_tasks``: state, provider job id, the provider's timestamps,
outcome) and a circuit breaker per provider (``provider_breakers``), so tasks sent to a GPU
provider outlive the run that sent them and admission is counted across processes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

REMOTE_STATES = "state IN ('waiting', 'submitting', 'submitted', 'cancelling', 'finished', 'collected')"
BREAKER_STATES = "state IN ('closed', 'open', 'half_open')"


def upgrade() -> None:
    op.create_table(
        "remote_tasks",
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("video_id", sa.String(length=200), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("effect_type", sa.String(length=64), nullable=False),
        sa.Column("selection", sa.String(length=20), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider_job_id", sa.String(length=200), nullable=True),
        sa.Column("handle", sa.Text(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_class", sa.String(length=200), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.CheckConstraint(REMOTE_STATES, name=op.f("ck_remote_tasks_state")),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_remote_tasks")),
    )
    op.create_index(op.f("ix_remote_tasks_video_id"), "remote_tasks", ["video_id"])
    op.create_index(op.f("ix_remote_tasks_state_provider_id"), "remote_tasks", ["state", "provider_id"])
    op.create_table(
        "provider_breakers",
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probes_in_flight", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(BREAKER_STATES, name=op.f("ck_provider_breakers_state")),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_provider_breakers")),
    )


def downgrade() -> None:
    op.drop_table("provider_breakers")
    op.drop_index(op.f("ix_remote_tasks_state_provider_id"), table_name="remote_tasks")
    op.drop_index(op.f("ix_remote_tasks_video_id"), table_name="remote_tasks")
    op.drop_table("remote_tasks")
