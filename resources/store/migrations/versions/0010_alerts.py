"""Alerts (``alerts``: one per episode of a bottleneck group, open → acknowledged →
resolved), the classifications each groups (``alert_classifications``) and their email
deliveries with the dead letters (``alert_deliveries``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("effect_type", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("runbook", sa.String(length=200), nullable=False),
        sa.Column("cost_impact_usd_per_hour", sa.Float(), nullable=False),
        sa.Column("classifications", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name=op.f("ck_alerts_state")),
        sa.CheckConstraint("severity IN ('warning', 'critical')", name=op.f("ck_alerts_severity")),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_group_key_state"), "alerts", ["group_key", "state"])
    op.create_index(op.f("ix_alerts_state_opened_at"), "alerts", ["state", "opened_at"])
    op.create_table(
        "alert_classifications",
        sa.Column("classification_id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.alert_id"], name=op.f("fk_alert_classifications_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("classification_id", name=op.f("pk_alert_classifications")),
    )
    op.create_index(op.f("ix_alert_classifications_alert_id"), "alert_classifications", ["alert_id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sent', 'dead_letter')", name=op.f("ck_alert_deliveries_state")),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"], name=op.f("fk_alert_deliveries_alert_id_alerts")),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint(
            "alert_id", "channel", "recipient", name=op.f("uq_alert_deliveries_alert_id_channel_recipient")
        ),
    )
    op.create_index(op.f("ix_alert_deliveries_state_created_at"), "alert_deliveries", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_deliveries_state_created_at"), table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index(op.f("ix_alert_classifications_alert_id"), table_name="alert_classifications")
    op.drop_table("alert_classifications")
    op.drop_index(op.f("ix_alerts_state_opened_at"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_group_key_state"), table_name="alerts")
    op.drop_table("alerts")
