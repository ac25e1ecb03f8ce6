"""Indexes for the orphan-recovery sensor's queries (``resources/store/watch.py``): open
reservations and settlements by age, a job's settlements, unfinished uploads by age and
approval decisions by time; and ``remote_tasks.server``, the server of a multi-server
provider a task was admitted to (one prompt per server).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_ledger_entries_kind_occurred_at", "ledger_entries", ["kind", "occurred_at"]),
    ("ix_ledger_entries_task_id_kind", "ledger_entries", ["task_id", "kind"]),
    ("ix_uploads_status_uploaded_at", "uploads", ["status", "uploaded_at"]),
    ("ix_decisions_subject_kind_decided_at", "decisions", ["subject_kind", "decided_at"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(op.f(name), table, columns)
    op.add_column("remote_tasks", sa.Column("server", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("remote_tasks") as batch:
        batch.drop_column("server")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(op.f(name), table_name=table)
