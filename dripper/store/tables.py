"""The schema. Every planned touch is one row keyed by (lead, campaign, step id).

Touch states: planned -> sending -> sent | failed | suppressed | skipped.
All times are stored as naive UTC (UTCDateTime), identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

STATES = ("planned", "sending", "sent", "failed", "suppressed", "skipped")
PENDING = ("planned", "sending")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT at scale.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

leads = Table(
    "leads", metadata,
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
    "touches", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", Id, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False, default="planned"),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_id", String(300)),
    Column("planned_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime),
    Column("claimed_by", String(200)),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("lead_id", "campaign", "step_id", name="uq_touch_key"),
    Index("ix_touches_state_due", "state", "due_at"),
    Index("ix_touches_campaign_step", "campaign", "step_id"),
    Index("ix_touches_message_id", "message_id"),
)

events = Table(
    "events", metadata,
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

campaign_versions = Table(
    "campaign_versions", metadata,
    Column("campaign", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

# Sending limits shared by every worker: one row per (scope, window length, window start).
send_counters = Table(
    "send_counters", metadata,
    Column("scope", String(300), primary_key=True),  # "all" or "domain:gmail.com"
    Column("window_seconds", Integer, primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("count", Integer, nullable=False, default=0),
    Index("ix_send_counters_start", "window_start"),
)

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
