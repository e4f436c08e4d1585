"""touch variant: the A/B variant of its step a touch was sent with

A step with `variants:` sends each lead one version (dripper/campaign/variants.py). The
touch records which, when it is sent, so `report` counts sends and outcomes per variant,
and a winner declared later leaves the history as it was. Existing rows have none.

`ab_winners` keeps the winners `auto_winner:` declared (a step's own `winner:` is in
campaigns.yaml): once decided, a test stays ended, whatever later figures say.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touches", sa.Column("variant", sa.String(64)))
    op.create_table(
        "ab_winners",
        sa.Column("campaign", sa.String(200), primary_key=True),
        sa.Column("step_id", sa.String(200), primary_key=True),
        sa.Column("winner", sa.String(64), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ab_winners")
    with op.batch_alter_table("touches") as batch:
        batch.drop_column("variant")
