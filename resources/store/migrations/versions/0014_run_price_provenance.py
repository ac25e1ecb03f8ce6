"""Effect runs record where their price came from: ``revision_price_tokens`` (the pinned
revision's price at publication) and ``price_change_id`` (the runtime price parameter's change
in force when the run was accepted; null when the revision's price stood). ``tokens`` stays the
price reserved. Runs queued before this migration reserved their revision's price: it is
backfilled from ``tokens``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("effect_runs") as batch:
        batch.add_column(sa.Column("revision_price_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("price_change_id", sa.String(length=40), nullable=True))
    op.execute("UPDATE effect_runs SET revision_price_tokens = tokens")
    # SQLite cannot alter a column: batch mode rebuilds the table (a no-op wrapper on PostgreSQL).
    with op.batch_alter_table("effect_runs") as batch:
        batch.alter_column("revision_price_tokens", existing_type=sa.BigInteger(), nullable=False)
        batch.create_check_constraint(op.f("ck_effect_runs_revision_price_not_negative"), "revision_price_tokens >= 0")


def downgrade() -> None:
    with op.batch_alter_table("effect_runs") as batch:
        batch.drop_constraint(op.f("ck_effect_runs_revision_price_not_negative"), type_="check")
        batch.drop_column("price_change_id")
        batch.drop_column("revision_price_tokens")
