"""technician session generation: a password reset or a deactivation ends open console sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

A console session remembers the generation of its technician at login and compares it on every
rerun; bumping the column ends every session opened before. Existing rows start at 0.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("technicians") as batch:
        batch.drop_column("session_generation")
