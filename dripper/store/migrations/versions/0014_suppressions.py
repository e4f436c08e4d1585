"""suppressions: the do-not-contact list (`dripper suppress`, `dripper leads forget`)

One row per suppressed address or domain. An address is kept only as a keyed hash (HMAC
with the project secret, dripper/leads/suppression.py): a forgotten lead's address must
not be readable here, yet a later import of it must be refused. A domain is kept as it
is (a company's domain is no personal data). `reason` says why (`forgotten`, or the name
of the list imported), `created_at` when.

Revision ID: 0014
Revises: 0013 (becomes 0013 when the lead-columns migration lands)
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import Id, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("kind", "value", name="uq_suppression"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
