"""notification outbox: one row per event and channel, sent once (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:00:00

- ``notifications``: the outbox. One row per (ticket event, channel, recipient), UNIQUE, so two
  dispatchers (two workers, a deploy overlap) can never create the same notification twice. A row is
  pending → sending (claimed with a token and a lease) → sent, or back to pending with a backoff, or
  failed after the last attempt. Console rows go pending → sent when one console tab claims them.
  Ids and delivery state only: no customer data is copied here.
- ``notification_cursors``: the newest ticket event the dispatcher has fully processed.
- ``notification_preferences``: a technician's opt-in/out per channel (no row: the default).
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("ticket_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=False),
        sa.Column("technician_id", sa.Integer(), sa.ForeignKey("technicians.id", ondelete="CASCADE"), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("event_id", "channel", "recipient", name="uq_notifications_event_channel_recipient"),
    )
    op.create_index("ix_notifications_state_next", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_technician_channel_state", "notifications",
                    ["technician_id", "channel", "state"])
    op.create_index("ix_notifications_ticket", "notifications", ["ticket_id"])
    op.create_table(
        "notification_cursors",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "notification_preferences",
        sa.Column("technician_id", sa.Integer(), sa.ForeignKey("technicians.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
    op.drop_table("notification_cursors")
    op.drop_index("ix_notifications_ticket", table_name="notifications")
    op.drop_index("ix_notifications_technician_channel_state", table_name="notifications")
    op.drop_index("ix_notifications_state_next", table_name="notifications")
    op.drop_table("notifications")
