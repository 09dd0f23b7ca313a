"""LGPD: retention purge runs and the customer correction log (issue 17)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:00:00

- ``retention_runs``: one row per ``privacy purge`` (CLI or worker): actor, the periods in days,
  rows changed per store. No personal data.
- ``customer_corrections``: one row per edit of a customer's personal data: who, when, which
  customer, which field; never the old or new value (docs/privacy.md).
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("periods", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
    )
    op.create_index("ix_retention_runs_at", "retention_runs", ["at"])
    op.create_table(
        "customer_corrections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("technician_id", sa.Integer(), sa.ForeignKey("technicians.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("actor", sa.String(60), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
    )
    op.create_index("ix_customer_corrections_customer_at", "customer_corrections", ["customer_id", "at"])
    op.create_index("ix_customer_corrections_at", "customer_corrections", ["at"])


def downgrade() -> None:
    op.drop_index("ix_customer_corrections_at", table_name="customer_corrections")
    op.drop_index("ix_customer_corrections_customer_at", table_name="customer_corrections")
    op.drop_table("customer_corrections")
    op.drop_index("ix_retention_runs_at", table_name="retention_runs")
    op.drop_table("retention_runs")
