"""INSERT … ON CONFLICT for the two dialects dripper runs on."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An insert statement that knows `on_conflict_do_nothing` / `_do_update` on this connection's dialect."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
