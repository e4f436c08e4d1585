"""preferences: per-lead campaign opt-outs and pauses

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("opted_out", sa.JSON))
        batch.add_column(sa.Column("paused_until", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("paused_until")
        batch.drop_column("opted_out")
