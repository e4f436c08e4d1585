"""clicks and opens: one row per request to a tracked link (/c/TOKEN), one per opened message

`tracking: {clicks: true}` sends a campaign's links through `dripper serve`. Each request
to a valid link is a row: the touch whose message held the link, its lead, campaign and
step, the target URL, when, the HTTP method and user agent, and `scanner`, which is NULL
for a person's click and otherwise says why the click was taken for a security scanner or
a link previewer (`head`, `user_agent`, `burst`). A person's click is also an event
(`clicked`), whose id the row keeps, so a click later found to be part of a scanner's
burst takes its event back.

`opens`: with `tracking: {opens: true}`, one row per message whose open pixel (/o/TOKEN)
loaded: when first and last, and how often.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import Id, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("touch_id", Id, sa.ForeignKey("touches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("lead_id", Id, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False),
        sa.Column("scanner", sa.String(32)),
        sa.Column("event_id", Id, sa.ForeignKey("events.id", ondelete="SET NULL")),
    )
    op.create_index("ix_clicks_touch", "clicks", ["touch_id", "at"])
    op.create_index("ix_clicks_lead", "clicks", ["lead_id", "campaign", "step_id"])
    op.create_index("ix_clicks_step", "clicks", ["campaign", "step_id"])
    op.create_table(
        "opens",
        sa.Column("touch_id", Id, sa.ForeignKey("touches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lead_id", Id, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("first_at", UTCDateTime, nullable=False),
        sa.Column("last_at", UTCDateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_opens_step", "opens", ["campaign", "step_id"])


def downgrade() -> None:
    op.drop_index("ix_opens_step", "opens")
    op.drop_table("opens")
    op.drop_index("ix_clicks_step", "clicks")
    op.drop_index("ix_clicks_lead", "clicks")
    op.drop_index("ix_clicks_touch", "clicks")
    op.drop_table("clicks")
