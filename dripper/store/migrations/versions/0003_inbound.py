"""inbound: events remember the message that caused them; touches are found by Message-ID

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("message_id", sa.String(300)))
    op.create_index("uq_events_message_id", "events", ["message_id"], unique=True)
    op.create_index("ix_touches_message_id", "touches", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_touches_message_id", "touches")
    op.drop_index("uq_events_message_id", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("message_id")
