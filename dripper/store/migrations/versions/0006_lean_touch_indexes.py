"""lean touch indexes: every planned touch pays for every index on `touches`

Planning writes about ten rows per lead, so an index is paid for ten times per lead
imported. Two were not worth it:
- message_id is NULL until a touch is sent; indexing only the sent ones keeps the lookup
  of a reply's In-Reply-To (`message_id = …` implies NOT NULL, so both databases use it).
- (campaign, step_id) served only rare campaign edits (rename, remove a step), which
  scan instead; reports aggregate the whole table anyway.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_touches_campaign_step", table_name="touches")
    op.drop_index("ix_touches_message_id", table_name="touches")
    op.create_index(
        "ix_touches_message_id",
        "touches",
        ["message_id"],
        postgresql_where=sa.text("message_id IS NOT NULL"),
        sqlite_where=sa.text("message_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_touches_message_id", table_name="touches")
    op.create_index("ix_touches_message_id", "touches", ["message_id"])
    op.create_index("ix_touches_campaign_step", "touches", ["campaign", "step_id"])
