"""knowledge_queries: how each question was answered (mode), the LLM tokens it cost, and whether
it came from the repeat-question cache (issue 14, cost and repeat questions)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 03:30:00

Past rows get mode NULL (unknown), 0 tokens and cached false: reports count LLM calls from the
rows that say so, so history before this revision shows no LLM use rather than a guess.
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_queries") as batch:
        batch.add_column(sa.Column("mode", sa.String(12), nullable=True))
        batch.add_column(sa.Column("llm_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_queries") as batch:
        batch.drop_column("cached")
        batch.drop_column("llm_tokens")
        batch.drop_column("mode")
