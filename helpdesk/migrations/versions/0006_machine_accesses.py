"""machine accesses: an audit record of each reveal of a customer's AnyDesk code in the console

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00

One row per "Mostrar código": which technician, when, which customer and machine, and the ticket
it was revealed from (NULL on the customer screen). Ids only: neither the code nor a name is
copied, so the row holds no personal data; a removed machine or ticket leaves the row with NULL.

Also an index on conversation_outcomes (customer_id, started_at): the durable bot-resolution
figure (metrics.bot_resolution) looks for a later hand-off of the same customer.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machine_accesses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("technician_id", sa.Integer(), sa.ForeignKey("technicians.id"), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("machine_id", sa.Integer(), sa.ForeignKey("machines.id", ondelete="SET NULL"), nullable=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
    )
    op.create_index("ix_machine_accesses_customer_at", "machine_accesses", ["customer_id", "at"])
    op.create_index("ix_machine_accesses_technician_at", "machine_accesses", ["technician_id", "at"])
    op.create_index("ix_outcomes_customer_started", "conversation_outcomes", ["customer_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_customer_started", table_name="conversation_outcomes")
    op.drop_index("ix_machine_accesses_technician_at", table_name="machine_accesses")
    op.drop_index("ix_machine_accesses_customer_at", table_name="machine_accesses")
    op.drop_table("machine_accesses")
