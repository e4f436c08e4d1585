"""initial schema: leads, touches, events, campaign versions, meta

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(300), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("stage_entered_at", UTCDateTime, nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64)),
        sa.Column("address_line1", sa.String(300), nullable=False),
        sa.Column("address_line2", sa.String(300), nullable=False),
        sa.Column("city", sa.String(200), nullable=False),
        sa.Column("region", sa.String(200), nullable=False),
        sa.Column("postal_code", sa.String(32), nullable=False),
        sa.Column("country", sa.String(64), nullable=False),
        sa.Column("attrs", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("converted_at", UTCDateTime),
        sa.Column("replied_at", UTCDateTime),
        sa.Column("unsubscribed_at", UTCDateTime),
        sa.Column("bounced_at", UTCDateTime),
        sa.Column("complained_at", UTCDateTime),
    )
    op.create_table(
        "touches",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("lead_id", Id, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("message_id", sa.String(300)),
        sa.Column("planned_at", UTCDateTime, nullable=False),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("lead_id", "campaign", "step_id", name="uq_touch_key"),
    )
    op.create_index("ix_touches_state_due", "touches", ["state", "due_at"])
    op.create_index("ix_touches_campaign_step", "touches", ["campaign", "step_id"])
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("lead_id", Id, sa.ForeignKey("leads.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_events_lead", "events", ["lead_id", "at"])
    op.create_table(
        "campaign_versions",
        sa.Column("campaign", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("meta", "campaign_versions", "events", "touches", "leads"):
        op.drop_table(table)
