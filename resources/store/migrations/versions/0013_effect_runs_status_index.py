"""An index for the orphan-recovery sensor's watch over effect runs (``runs.unfinished``):
runs still queued or running, by age. Runs are watched by their own state rather than by
their ledger reservation, so a free run (nothing reserved) that stops is found too.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_effect_runs_status_created_at"), "effect_runs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_effect_runs_status_created_at"), table_name="effect_runs")
