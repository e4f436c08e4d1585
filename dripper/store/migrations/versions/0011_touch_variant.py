"""touch variant: the A/B variant of its step a touch was sent with

A step with `variants:` sends each lead one version (dripper/campaign/variants.py). The
touch records which, when it is sent, so `report` counts sends and outcomes per variant,
and a winner declared later leaves the history as it was. Existing rows have none.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touches", sa.Column("variant", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("touches") as batch:
        batch.drop_column("variant")
