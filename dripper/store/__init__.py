"""The store: SQLAlchemy tables, migrations, and the queries the planner and sender use."""

from dripper.store.db import Store, StoreUnavailable, open_store
from dripper.store.tables import STATES, campaign_versions, events, leads, meta, send_counters, touches

__all__ = [
    "STATES",
    "Store",
    "StoreUnavailable",
    "campaign_versions",
    "events",
    "leads",
    "meta",
    "open_store",
    "send_counters",
    "touches",
]
