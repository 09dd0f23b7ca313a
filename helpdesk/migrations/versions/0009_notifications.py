"""notification outbox: one row per event and channel, sent once (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:00:00

Placeholder reserved so that the revision chain stays linear while this work is in progress;
it changes nothing until its tables are added here.
"""
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
