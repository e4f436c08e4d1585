"""send_counters: sending limits shared by every worker

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_counters",
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("window_seconds", sa.Integer, primary_key=True),
        sa.Column("window_start", UTCDateTime, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_send_counters_start", "send_counters", ["window_start"])


def downgrade() -> None:
    op.drop_table("send_counters")
