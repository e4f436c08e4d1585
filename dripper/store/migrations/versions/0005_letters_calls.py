"""letters and calls: print batches, the letters in them, and phone-call tasks

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import Id, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "letter_batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("built_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("built_at", UTCDateTime),
        sa.Column("letters", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("mailed_at", UTCDateTime),
        sa.Column("mailed_by", sa.String(200)),
    )
    op.create_index("ix_letter_batches_day", "letter_batches", ["day"])
    op.create_table(
        "letters",
        sa.Column("touch_id", Id, sa.ForeignKey("touches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("letter_batches.id"), nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("sort_key", sa.String(200), nullable=False, server_default=""),
        sa.Column("provider_ref", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_letters_batch", "letters", ["batch_id"])
    op.create_table(
        "calls",
        sa.Column("touch_id", Id, sa.ForeignKey("touches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lead_id", Id, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False, server_default=""),
        sa.Column("talking_points", sa.Text, nullable=False, server_default=""),
        sa.Column("outcome", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("outcome_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_calls_day_owner", "calls", ["day", "owner"])
    op.create_index("ix_calls_lead", "calls", ["lead_id"])


def downgrade() -> None:
    op.drop_table("calls")
    op.drop_table("letters")
    op.drop_table("letter_batches")
