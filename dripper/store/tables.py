"""The schema. Every planned touch is one row keyed by (lead, campaign, step id).

Touch states: planned -> sending -> sent | failed | suppressed | skipped.
All times are stored as naive UTC (UTCDateTime), identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

# The states are defined in dripper.states; named here too for the store's callers.
from dripper.states import PENDING as PENDING
from dripper.states import STATES as STATES
from dripper.states import TouchState


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT at scale.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

leads = Table(
    "leads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-case
    Column("first_name", String(200), nullable=False, default=""),
    Column("last_name", String(200), nullable=False, default=""),
    Column("company", String(300), nullable=False, default=""),
    Column("stage", String(64), nullable=False),
    Column("stage_entered_at", UTCDateTime, nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("timezone", String(64)),
    Column("address_line1", String(300), nullable=False, default=""),
    Column("address_line2", String(300), nullable=False, default=""),
    Column("city", String(200), nullable=False, default=""),
    Column("region", String(200), nullable=False, default=""),
    Column("postal_code", String(32), nullable=False, default=""),
    Column("country", String(64), nullable=False, default=""),
    # Migration 0013 (issue 19): the lead's language (BCP 47, "" = the campaign's default),
    # its sales owner, and where and when it gave its consent.
    Column("language", String(64), nullable=False, default=""),
    Column("owner", String(200), nullable=False, default=""),
    Column("consent_source", String(300), nullable=False, default=""),
    Column("consent_at", UTCDateTime),
    Column("attrs", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Why the lead stopped receiving touches; each set by the matching event.
    Column("converted_at", UTCDateTime),
    Column("replied_at", UTCDateTime),
    Column("unsubscribed_at", UTCDateTime),
    Column("bounced_at", UTCDateTime),
    Column("complained_at", UTCDateTime),
    # From the preference page: campaigns the lead opted out of, and a pause.
    Column("opted_out", JSON),
    Column("paused_until", UTCDateTime),
)

touches = Table(
    "touches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False, default=TouchState.PLANNED),
    Column("reason", Text),
    Column("detail", Text),  # what went wrong, for a reason that says (migration 0010)
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_id", String(300)),
    # The A/B variant the touch was sent with (dripper/campaign/variants.py; migration
    # 0011); NULL for a step without variants or a touch not attempted yet.
    Column("variant", String(64)),
    Column("planned_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime),
    Column("claimed_by", String(200)),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("lead_id", "campaign", "step_id", name="uq_touch_key"),
    # A tick reads only pending rows, so only they are indexed by time (migration 0007):
    # the queue in claim order, and the claims whose lease may run out. Both stay the size
    # of what is pending, however many touches were sent, and a row leaves them when it
    # is claimed or recorded.
    Index(
        "ix_touches_planned_due",
        "due_at",
        "id",
        postgresql_where=text("state = 'planned'"),
        sqlite_where=text("state = 'planned'"),
    ),
    Index(
        "ix_touches_sending",
        "claimed_at",
        postgresql_where=text("state = 'sending'"),
        sqlite_where=text("state = 'sending'"),
    ),
    # Only sent touches have a Message-ID; planned ones (most rows) stay out of the index.
    Index(
        "ix_touches_message_id",
        "message_id",
        postgresql_where=text("message_id IS NOT NULL"),
        sqlite_where=text("message_id IS NOT NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE")),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False),
    Column("detail", JSON),
    # The Message-ID of the inbound message that caused it: ingesting it twice changes nothing.
    Column("message_id", String(300)),
    Index("ix_events_lead", "lead_id", "at"),
    Index("uq_events_message_id", "message_id", unique=True),
)

# Requests to tracked links (/c/TOKEN, migration 0012): `scanner` NULL is a person's click
# (also an event `clicked`, `event_id`); otherwise why it was taken for a security scanner
# or link previewer (inbound/clicks.py). Kept apart so reports count people only.
clicks = Table(
    "clicks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("touch_id", Id, ForeignKey("touches.id", ondelete="CASCADE"), nullable=False),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("url", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("method", String(8), nullable=False),
    Column("user_agent", String(300), nullable=False),
    Column("scanner", String(32)),
    Column("event_id", Id, ForeignKey("events.id", ondelete="SET NULL")),
    Index("ix_clicks_touch", "touch_id", "at"),
    Index("ix_clicks_lead", "lead_id", "campaign", "step_id"),
    Index("ix_clicks_step", "campaign", "step_id"),
)

# The open pixel (`tracking: {opens: true}`, migration 0012): one row per message whose
# pixel loaded, with how often. Unreliable by nature (image proxies, Apple Mail Privacy
# Protection load it unread); kept apart from clicks.
opens = Table(
    "opens",
    metadata,
    Column("touch_id", Id, ForeignKey("touches.id", ondelete="CASCADE"), primary_key=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Index("ix_opens_step", "campaign", "step_id"),
)

campaign_versions = Table(
    "campaign_versions",
    metadata,
    Column("campaign", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    # CampaignFile.schedule_definition as applied (migration 0008): what `dripper diff`
    # compares an edited file with. NULL for versions applied before that migration.
    Column("definition", JSON),
)

# Sending limits shared by every worker: one row per (scope, window length, window start).
send_counters = Table(
    "send_counters",
    metadata,
    Column("scope", String(300), primary_key=True),  # "all" or "domain:gmail.com"
    Column("window_seconds", Integer, primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("count", Integer, nullable=False, default=0),
    Index("ix_send_counters_start", "window_start"),
)

# Print batches: the letters of one business day, merged for the printer. A batch takes
# letters until it is marked mailed; later letters that day open `DAY-2`, `DAY-3`...
letter_batches = Table(
    "letter_batches",
    metadata,
    Column("id", String(32), primary_key=True),  # "2026-11-23", "2026-11-23-2"
    Column("day", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=0),  # +1 for every letter added
    Column("built_version", Integer, nullable=False, default=0),  # the version batch.pdf shows
    Column("built_at", UTCDateTime),
    Column("letters", Integer, nullable=False, default=0),
    Column("pages", Integer, nullable=False, default=0),
    Column("mailed_at", UTCDateTime),
    Column("mailed_by", String(200)),  # "manual" or the print adapter that took it
    Index("ix_letter_batches_day", "day"),
)

# One row per letter produced: which batch it is in, and what the manifest lists.
letters = Table(
    "letters",
    metadata,
    Column("touch_id", Id, ForeignKey("touches.id", ondelete="CASCADE"), primary_key=True),
    Column("batch_id", String(32), ForeignKey("letter_batches.id"), nullable=False),
    Column("file", String(500), nullable=False),
    Column("pages", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("address", Text, nullable=False),  # the recipient block, newline-separated
    Column("sort_key", String(200), nullable=False, default=""),  # country and postal code: presorted mail
    Column("provider_ref", String(200)),  # the print service's id, once it took the letter
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_letters_batch", "batch_id"),
)

# Phone-call tasks for the sales team, one per call step that fell due.
calls = Table(
    "calls",
    metadata,
    Column("touch_id", Id, ForeignKey("touches.id", ondelete="CASCADE"), primary_key=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("day", String(10), nullable=False),  # the business day the call falls due
    Column("owner", String(200), nullable=False, default=""),
    Column("talking_points", Text, nullable=False, default=""),
    Column("outcome", String(32)),  # reached | voicemail | no_answer | converted | not_interested
    Column("note", Text),
    Column("outcome_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_calls_day_owner", "day", "owner"),
    Index("ix_calls_lead", "lead_id"),
)

# Winners that a step's `auto_winner:` declared (migration 0011): once decided, every later
# send of the step uses the winner (dripper/reports/winners.py).
ab_winners = Table(
    "ab_winners",
    metadata,
    Column("campaign", String(200), primary_key=True),
    Column("step_id", String(200), primary_key=True),
    Column("winner", String(64), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("verdict", Text, nullable=False),  # the test's sentence when it was decided
)

# The do-not-contact list (migration 0014; dripper/leads/suppression.py): `kind` is
# `address` (then `value` is a keyed hash of the normalised address, never the address) or
# `domain` (the domain in its ASCII form). An import never enrols what it lists.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("value", String(320), nullable=False),
    Column("reason", String(200), nullable=False),  # `forgotten`, or the name of the list imported
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "value", name="uq_suppression"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Dashboard sessions (`dripper.dashboard`): the cookie holds a random session id; only its
# SHA-256 is kept, so the table opens nothing by itself.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("token_mac", String(64), nullable=False),  # the dashboard token, MAC keyed by the session id
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),  # logged out
    Index("ix_dashboard_sessions_expires", "expires_at"),
)

# Wrong dashboard tokens per client address, for the lockout.
dashboard_login_failures = Table(
    "dashboard_login_failures",
    metadata,
    Column("client", String(64), primary_key=True),  # an IP address; an IPv6 one by its /64
    Column("failures", Integer, nullable=False),  # in the window that began at first_failed_at
    Column("first_failed_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

# Webhooks (migration 0015, dripper/webhooks/): where events go, and one outbox row per
# (event, subscription) written in the transaction that records the event. `events` is
# written `,a,b,` (`,*,` for every event) so one LIKE finds the listeners on both databases.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("secret", Text),  # generated by `dripper webhooks add` when no --secret-env is given
    Column("secret_env", String(200)),  # the environment variable holding the secret
    Column("source", String(16), nullable=False),  # cli | file (campaigns.yaml `webhooks:`)
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),  # gone from the file: no new deliveries
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscription_id", Id, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(64), nullable=False),  # `webhook-id`: the same on every retry
    Column("event", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON body, exactly as signed and sent
    Column("state", String(16), nullable=False),  # pending | delivering | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("claimed_by", String(200)),
    Column("delivered_at", UTCDateTime),
    Column("last_error", Text),
    Index(
        "ix_webhook_outbox_due",
        "next_attempt_at",
        "id",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index(
        "ix_webhook_outbox_leased",
        "lease_until",
        postgresql_where=text("state = 'delivering'"),
        sqlite_where=text("state = 'delivering'"),
    ),
    Index("ix_webhook_outbox_state", "state", "id"),
    # Delivered rows are deleted after a while (webhooks/delivery.KEEP_DELIVERED).
    Index(
        "ix_webhook_outbox_delivered",
        "delivered_at",
        postgresql_where=text("state = 'delivered'"),
        sqlite_where=text("state = 'delivered'"),
    ),
)
