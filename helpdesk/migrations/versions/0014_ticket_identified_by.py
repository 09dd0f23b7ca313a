"""tickets.identified_by: which identity the bot had when it opened the ticket (issue 15 item 1)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 17:00:00

One of `phone`, `bsuid`, `lid` (the WhatsApp identity the connector attested for that turn),
`website_token` (the website's signed token) or `claim` (a CNPJ typed in the chat, unverified);
NULL for tickets of an anonymous visitor or lead and for tickets opened before this column or in
the console. A kind, never the identifier itself (helpdesk/services/identities.py).
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("identified_by", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("identified_by")
