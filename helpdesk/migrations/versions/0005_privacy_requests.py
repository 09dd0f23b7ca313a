"""privacy requests: an audit record of each LGPD export and erasure, without personal data

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00

One row per `python -m helpdesk privacy export|erase`: who ran it, when, which kind of selector,
the (anonymised) customer id when there is one, and the number of rows per store. The selector's
value (a phone, an e-mail, a conversation id) is never stored.
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("selector", sa.String(20), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
    )
    op.create_index("ix_privacy_requests_at", "privacy_requests", ["at"])


def downgrade() -> None:
    op.drop_index("ix_privacy_requests_at", table_name="privacy_requests")
    op.drop_table("privacy_requests")
