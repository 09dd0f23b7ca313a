"""ticket contact: phone and e-mail left by the person who opened the ticket (sales leads)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:00:00

A prospect who accepts a sales contact leaves a phone or an e-mail; a customer's contacts live in
`contacts`, but a lead has no customer record. Both columns are optional.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("contact_phone", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("contact_email", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("contact_email")
        batch.drop_column("contact_phone")
