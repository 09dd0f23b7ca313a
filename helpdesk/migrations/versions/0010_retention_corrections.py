"""LGPD: retention purge runs and the customer correction log (issue 17)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:00:00

Placeholder reserved so that the revision chain stays linear while this work is in progress;
it changes nothing until its tables are added here.
"""
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
