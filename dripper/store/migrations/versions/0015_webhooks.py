"""webhooks: subscriptions and the outbox of deliveries (issue 20)

`webhook_subscriptions`: where events go. `source` is `cli` for one added with
`dripper webhooks add` and `file` for one from campaigns.yaml's `webhooks:` (kept in step
with the file; `removed_at` set when it leaves it, so its deliveries stay). `events` is
the list it listens to, written `,a,b,` (`,*,` for all) so one LIKE finds the listeners on
SQLite and PostgreSQL alike. The secret is never in the YAML: `secret_env` names the
environment variable holding it; `secret` is one `dripper webhooks add` generated.

`webhook_outbox`: one row per (event, subscription), written in the transaction that
records the event, so an event is never lost nor announced without having happened.
States pending -> delivering (claimed, with a lease) -> delivered | dead; a failed attempt
goes back to pending with `next_attempt_at` later (exponential backoff). Delivered rows
are deleted after 30 days (their own index finds them).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import Id, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("secret_env", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("removed_at", UTCDateTime),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", Id, sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
    )
    op.create_index(
        "ix_webhook_outbox_due",
        "webhook_outbox",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_webhook_outbox_leased",
        "webhook_outbox",
        ["lease_until"],
        postgresql_where=sa.text("state = 'delivering'"),
        sqlite_where=sa.text("state = 'delivering'"),
    )
    op.create_index("ix_webhook_outbox_state", "webhook_outbox", ["state", "id"])
    op.create_index(
        "ix_webhook_outbox_delivered",
        "webhook_outbox",
        ["delivered_at"],
        postgresql_where=sa.text("state = 'delivered'"),
        sqlite_where=sa.text("state = 'delivered'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_delivered", "webhook_outbox")
    op.drop_index("ix_webhook_outbox_state", "webhook_outbox")
    op.drop_index("ix_webhook_outbox_leased", "webhook_outbox")
    op.drop_index("ix_webhook_outbox_due", "webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("webhook_subscriptions")
