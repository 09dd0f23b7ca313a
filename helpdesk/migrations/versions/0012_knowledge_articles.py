"""knowledge_articles: registered solutions suggested as documentation, and the articles managers
make of them (issue 16 item 6; issue 17 part 3: flagged when their customer is erased)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_articles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("module", sa.String(40), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("solution", sa.Text(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("suggested_by_id", sa.Integer(), sa.ForeignKey("technicians.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("suggested_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("technicians.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("personal_data_confirmed", sa.Boolean(), nullable=False),
        sa.Column("review_reason", sa.String(200), nullable=False),
        sa.Column("flagged_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_knowledge_articles_state", "knowledge_articles", ["state"])
    op.create_index("ix_knowledge_articles_ticket", "knowledge_articles", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_knowledge_articles_ticket", table_name="knowledge_articles")
    op.drop_index("ix_knowledge_articles_state", table_name="knowledge_articles")
    op.drop_table("knowledge_articles")
