"""LGPD: the website chat's consents and the WhatsApp privacy notices, recorded on the server (issue 17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:00:00

- ``privacy_consents``: a website visitor accepted the chat's consent card. Conversation id,
  channel, the text version they saw, the policy URL it linked, the server's time of receipt
  (never the client's clock) and the verified customer if any. One row per conversation and
  text version (UNIQUE).
- ``privacy_notices``: the short privacy notice sent at a WhatsApp conversation's first contact.
  One row per recipient key (``phone:<digits>``, ``bsuid:<id>``, ``lid:<id>`` or
  ``conversation:<id>`` for an anonymous sender) and text version (UNIQUE), so a person gets
  each version once.

Both hold personal identifiers: ``python -m helpdesk privacy export`` lists them and ``erase``
deletes them (docs/privacy.md).
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_consents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("text_version", sa.String(40), nullable=False),
        sa.Column("policy_url", sa.String(500), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="SET NULL"), nullable=True),
        sa.UniqueConstraint("conversation_id", "text_version", name="uq_privacy_consents_conversation_version"),
    )
    op.create_index("ix_privacy_consents_customer", "privacy_consents", ["customer_id"])
    op.create_table(
        "privacy_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recipient", sa.String(240), nullable=False),
        sa.Column("text_version", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("conversation_id", sa.String(200), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("recipient", "text_version", name="uq_privacy_notices_recipient_version"),
    )
    op.create_index("ix_privacy_notices_conversation", "privacy_notices", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_privacy_notices_conversation", table_name="privacy_notices")
    op.drop_table("privacy_notices")
    op.drop_index("ix_privacy_consents_customer", table_name="privacy_consents")
    op.drop_table("privacy_consents")
