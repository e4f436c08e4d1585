"""The store's campaign-version queries and its health probe."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from dripper.store import Store, open_store
from dripper.store.queries import versionrows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DEFINITION = {"stages": {"supplier_research": [{"id": "thanks", "after": "0d"}]}}


def test_versions_are_kept_replaced_upgraded_and_deleted(db_url: str) -> None:
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            assert versionrows.all_versions(conn) == [] and versionrows.names(conn) == set()
            versionrows.insert(conn, "lit", "fp-1", DEFINITION, T0)
            versionrows.insert(conn, "other", "fp-x", DEFINITION, T0)
        with store.begin() as conn:
            assert versionrows.names(conn) == {"lit", "other"}
            rows = {row.campaign: row for row in versionrows.all_versions(conn)}
            assert rows["lit"] == versionrows.VersionRow("lit", "fp-1", DEFINITION, T0)
            with pytest.raises(dataclasses.FrozenInstanceError):
                rows["lit"].fingerprint = "changed"  # type: ignore[misc]
            versionrows.replace(conn, "lit", "fp-2", {"stages": {}}, T0 + timedelta(days=1))
            versionrows.upgrade(conn, "other", "fp-y", {"stages": {}})
            versionrows.delete(conn, "missing")  # nothing to delete: harmless
        with store.begin() as conn:
            rows = {row.campaign: row for row in versionrows.all_versions(conn)}
            assert rows["lit"] == versionrows.VersionRow("lit", "fp-2", {"stages": {}}, T0 + timedelta(days=1))
            assert rows["other"] == versionrows.VersionRow("other", "fp-y", {"stages": {}}, T0)  # keeps its instant
            versionrows.delete(conn, "lit")
        with store.begin() as conn:
            assert versionrows.names(conn) == {"other"}
    finally:
        store.dispose()


def test_the_reconcile_lock_is_taken_on_postgresql_only(db_url: str) -> None:
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            assert versionrows.lock_for_reconcile(conn) is store.is_postgres
    finally:
        store.dispose()


def test_ping_answers_when_the_database_does(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        store.ping()  # no exception
    finally:
        store.dispose()


def test_ping_raises_when_the_database_is_unreachable() -> None:
    store = Store(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none"))
    with pytest.raises(OperationalError):
        store.ping()
    store.dispose()
