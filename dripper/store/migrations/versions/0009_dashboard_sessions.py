"""dashboard sessions and failed logins, kept on the server

The dashboard's session cookie was signed and self-contained, so logging out only asked
the browser to forget it: a copied cookie went on working until it expired. Sessions are
now rows: the cookie holds a random session id, the table its SHA-256 (a copy of the table
opens nothing), a MAC of the dashboard token keyed by that id (changing the token ends
every session), when it was issued, when it expires, and when it was ended by logging out.
Every `serve` process sees the same sessions, and a restart keeps them.

`dashboard_login_failures` counts wrong tokens per client address (an IPv6 address by its
/64), so that repeated guesses lock that client out for a while, for every `serve`
process alike.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("token_mac", sa.String(64), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
    )
    op.create_index("ix_dashboard_sessions_expires", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "dashboard_login_failures",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failed_at", UTCDateTime, nullable=False),
        sa.Column("locked_until", UTCDateTime),
    )


def downgrade() -> None:
    op.drop_table("dashboard_login_failures")
    op.drop_index("ix_dashboard_sessions_expires", "dashboard_sessions")
    op.drop_table("dashboard_sessions")
