"""whatsapp_prices: the managers' price in BRL of one WhatsApp message per Meta pricing category,
valid from a date on (issue 15 item 4, the cost of each conversation)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 16:45:00

Only the app's own table. The bot env's ``whatsapp_pricing`` (Meta's pricing object of each
message, connectors/whatsapp/store/engine.py) is created by the connector itself, like its other
tables; the reports read it when it exists.
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_prices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("price_brl", sa.Numeric(10, 4), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("technicians.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("category", "valid_from", name="uq_whatsapp_prices_category_valid_from"),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_prices")
