"""campaign definitions: what each applied campaign version looked like

campaign_versions held only a fingerprint of what decides when a campaign's touches are
due, enough to see that an edit changed something but not what. `definition` keeps that
shape itself (`CampaignFile.schedule_definition`: stages and steps in file order with
their timing, stop_on, send windows, the default time zone), written wherever a version
is recorded, so `dripper diff` can show what an edited campaigns.yaml would change
before it is applied. Rows written before this migration have none (NULL) until the
next version is applied; `diff` then compares with the steps the touches show.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_versions") as batch:
        batch.add_column(sa.Column("definition", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("campaign_versions") as batch:
        batch.drop_column("definition")
