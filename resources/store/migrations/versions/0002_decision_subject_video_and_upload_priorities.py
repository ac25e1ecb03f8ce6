"""Decisions name the video they concern (``correlation_id``: the lake's approval decisions
are keyed to a video) and uploads carry the user's priority weights (``priorities``: JSON
``{"quality": w, "cost": w, "speed": w}``, null = balanced).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("correlation_id", sa.String(length=200), nullable=True))
    op.add_column("uploads", sa.Column("priorities", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("priorities")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("correlation_id")
