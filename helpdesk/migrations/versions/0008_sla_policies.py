"""SLA policies, business calendar and ticket SLA clocks (issue 16)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00

Placeholder reserved so that the revision chain stays linear while this work is in progress;
it changes nothing until its tables are added here.
"""
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
