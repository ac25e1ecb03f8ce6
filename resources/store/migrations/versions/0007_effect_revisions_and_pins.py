"""The gallery's immutable revisions (``effect_revisions``), the pin per slug that moves
between them (``effect_pins``) and every move of a pin (``effect_pin_events``). Revisions
and pin events are append-only: a trigger refuses ``UPDATE`` and ``DELETE`` of their rows on
both backends (the ORM refuses them too, ``resources/store/models.py``).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

PIN_KINDS = "kind IN ('published', 'pin', 'rollback')"
APPEND_ONLY = ("effect_revisions", "effect_pin_events")
# PostgreSQL: one trigger function for both tables; SQLITE: one trigger per table and operation.
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION effectlake_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql
"""


def _seq() -> sa.Column:
    return sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "effect_revisions",
        _seq(),
        sa.Column("revision_id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("effect_type", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("template_id", sa.String(length=200), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("price_tokens", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("render_spec", sa.Text(), nullable=True),
        sa.Column("output_key", sa.String(length=500), nullable=False),
        sa.Column("preview_key", sa.String(length=500), nullable=False),
        sa.Column("approval_id", sa.String(length=200), nullable=False),
        sa.Column("source_video_id", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_tokens >= 0", name=op.f("ck_effect_revisions_price_not_negative")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_effect_revisions")),
        sa.UniqueConstraint("revision_id", name=op.f("uq_effect_revisions_revision_id")),
        sa.UniqueConstraint("slug", "content_hash", name=op.f("uq_effect_revisions_slug_content_hash")),
    )
    op.create_index(op.f("ix_effect_revisions_slug_seq"), "effect_revisions", ["slug", "seq"])
    op.create_index(op.f("ix_effect_revisions_source_video_id"), "effect_revisions", ["source_video_id"])
    op.create_table(
        "effect_pins",
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("revision_id", sa.String(length=40), nullable=False),
        sa.Column("pinned_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["effect_revisions.revision_id"],
            name=op.f("fk_effect_pins_revision_id_effect_revisions"),
        ),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_effect_pins")),
    )
    op.create_table(
        "effect_pin_events",
        _seq(),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("revision_id", sa.String(length=40), nullable=False),
        sa.Column("previous_revision_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pinned_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(PIN_KINDS, name=op.f("ck_effect_pin_events_kind")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_effect_pin_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_effect_pin_events_event_id")),
    )
    op.create_index(op.f("ix_effect_pin_events_slug_seq"), "effect_pin_events", ["slug", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION effectlake_refuse_change()"
            )
    else:
        for table in APPEND_ONLY:
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
                )


def downgrade() -> None:
    # Dropping a table drops its triggers (and fires none of them).
    op.drop_index(op.f("ix_effect_pin_events_slug_seq"), table_name="effect_pin_events")
    op.drop_table("effect_pin_events")
    op.drop_table("effect_pins")
    op.drop_index(op.f("ix_effect_revisions_source_video_id"), table_name="effect_revisions")
    op.drop_index(op.f("ix_effect_revisions_slug_seq"), table_name="effect_revisions")
    op.drop_table("effect_revisions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS effectlake_refuse_change()")
