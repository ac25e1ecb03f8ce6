"""Uploads may be ``processing`` (GPU tasks dispatched) and ``done`` (the pipeline finished
with the video), so the GPU admission can count a workspace's unfinished jobs
(``resources.store.admission``); an index on (workspace_id, status) serves that count.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD = "status IN ('pending', 'uploaded', 'accepted', 'rejected')"
NEW = "status IN ('pending', 'uploaded', 'accepted', 'processing', 'done', 'rejected')"


def _check(condition: str) -> None:
    # SQLite cannot alter a constraint: batch mode rebuilds the table (a no-op wrapper on
    # PostgreSQL).
    with op.batch_alter_table("uploads") as batch:
        batch.drop_constraint(op.f("ck_uploads_status"), type_="check")
        batch.create_check_constraint(op.f("ck_uploads_status"), condition)


def upgrade() -> None:
    _check(NEW)
    op.create_index(op.f("ix_uploads_workspace_id_status"), "uploads", ["workspace_id", "status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_uploads_workspace_id_status"), table_name="uploads")
    op.execute("UPDATE uploads SET status = 'accepted' WHERE status IN ('processing', 'done')")
    _check(OLD)
