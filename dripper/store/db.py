"""Opening the database: engine set-up per dialect and schema migration on first use.

A SQLite database holds the token-signing secret (when DRIPPER_SECRET is unset) and the
leads' personal data, so its file is created readable by its owner only (0600) before
SQLite first opens it; SQLite gives its -wal, -shm and -journal files the database file's
mode. An existing file that others can read is left as it is, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from dripper.store.tables import meta

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0015"  # the newest revision in migrations/versions; a test keeps the two in step
_PG_MIGRATE_LOCK = 0x64726970  # "drip": the advisory lock key that serializes migrations
_READ_ONLY = "dripper_read_only"  # execution option of Store.read's connections
PRIVATE = 0o600  # files that hold secrets: the SQLite database, its companions, its lock file
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
log = logging.getLogger("dripper.store")


class StoreUnavailable(Exception):
    """The database cannot be reached or opened."""


@dataclass
class Store:
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """One transaction that can only read, on one snapshot, rolled back at the end
        (`dripper diff`). PostgreSQL: REPEATABLE READ, READ ONLY. SQLite: a deferred BEGIN
        under `PRAGMA query_only`, so it never holds the write lock a tick waits for."""
        with self.engine.connect() as conn:
            if self.is_postgres:
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                yield conn
                conn.rollback()
                return
            conn.execution_options(**{_READ_ONLY: True})
            conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                yield conn
            finally:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA query_only = OFF")  # the connection goes back to the pool
                conn.rollback()

    def ping(self) -> None:
        """Raise unless the database answers a query (the health probe)."""
        with self.begin() as conn:
            conn.execute(text("SELECT 1"))

    def kept_secret(self) -> str | None:
        """The secret kept in the database, if one was ever generated (nothing is generated here)."""
        with self.begin() as conn:
            return _kept_secret(conn)

    def forget_kept_secret(self) -> bool:
        """Delete the secret kept in the database; whether there was one."""
        with self.begin() as conn:
            return conn.execute(meta.delete().where(meta.c.key == "secret")).rowcount > 0

    def secret(self) -> str:
        """The token-signing secret: generated on first use and shared by every worker."""
        with self.begin() as conn:
            value = _kept_secret(conn)
            if value:
                return value
            # An empty kept secret would sign every link with an empty key: it is replaced.
            conn.execute(meta.delete().where(meta.c.key == "secret", meta.c.value == ""))
            candidate = secrets.token_urlsafe(32)
            insert = meta.insert().values(key="secret", value=candidate)
            if self.is_postgres:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                insert = pg_insert(meta).values(key="secret", value=candidate).on_conflict_do_nothing()
            else:
                insert = insert.prefix_with("OR IGNORE")
            conn.execute(insert)
            kept = _kept_secret(conn)
            if kept is None:  # never: the insert, or the worker it lost to, left one
                raise StoreUnavailable("the token-signing secret could not be kept in the database")
            return kept

    def dispose(self) -> None:
        self.engine.dispose()


def _kept_secret(conn: Connection) -> str | None:
    value = conn.scalar(select(meta.c.value).where(meta.c.key == "secret"))
    return str(value) if value else None


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers (report, plan) run while a tick writes; NORMAL sync is durable
    # across a process crash, which is the failure we guard against.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN; take the write lock at the
        # start of every transaction so read-then-write never deadlocks between processes.
        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            # A read-only connection (Store.read) only reads: a deferred BEGIN takes no lock,
            # and under WAL it reads one snapshot while ticks go on writing.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            dbapi_conn.isolation_level = None

        return engine
    return create_engine(url, pool_pre_ping=True)


def _current_revision(conn: Connection) -> str | None:
    try:
        revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
    except (OperationalError, ProgrammingError):
        return None
    return None if revision is None else str(revision)


def sqlite_path(store: Store) -> Path | None:
    """The SQLite database's file, or None (PostgreSQL, in memory, or a URI filename)."""
    url = store.engine.url
    database = url.database
    if (
        store.is_postgres
        or not database
        or database == ":memory:"
        or url.query.get("uri")
        or database.startswith("file:")
    ):
        return None
    return Path(database)


def _create_private(path: Path) -> bool:
    """Create `path` empty with mode 0600 unless it exists; whether this call created it. The
    mode is given to open(2) itself, so the file is never readable by others, not even for a
    moment (the umask can only take bits away). SQLite takes an empty file as a new database."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        return False
    except OSError:  # no such folder, no permission: SQLite says so in its own words
        return False
    return True


def open_to_others(path: Path) -> int | None:
    """The mode of `path` when its group or others may read or write it; else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def _private_sqlite_files(store: Store) -> None:
    """Create the database file 0600 before SQLite does (SQLite would make it 0644 under the
    usual umask, and copies the database's mode to its companions); warn about existing
    files that others can read. Warn, not tighten: a group may read it on purpose (backups),
    and changing the mode of a file dripper did not create would surprise its owner."""
    path = sqlite_path(store)
    if path is None or _create_private(path):
        return
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        if (mode := open_to_others(file)) is not None:
            log.warning(
                "%s has mode %04o: other users can read it, and it holds the token-signing secret (unless "
                "DRIPPER_SECRET is set) and the leads' personal data; restrict it with: chmod 600 %s",
                file,
                mode,
                file,
            )


@contextlib.contextmanager
def _sqlite_first_use_lock(store: Store) -> Iterator[None]:
    """SQLite: one process at a time opens the file for the first time and migrates it.
    The first connection to a fresh file switches it to WAL, and SQLite answers a second
    process switching at the same moment with "database is locked" at once, whatever
    the busy timeout; so the lock covers the first connection, not only the migration."""
    database = store.engine.url.database
    if store.is_postgres or not database or database == ":memory:":
        yield
        return
    # 0600 like the database beside it (the lock file holds nothing, but says it exists).
    with os.fdopen(os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, PRIVATE), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _postgres_migration_lock(store: Store, conn: Connection) -> Iterator[None]:
    """PostgreSQL: serialize migrations between processes that start at the same moment."""
    if not store.is_postgres:
        yield
        return
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATE_LOCK})
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATE_LOCK})


def _is_current(store: Store) -> bool:
    with store.engine.connect() as conn:
        current = _current_revision(conn) == HEAD
        conn.rollback()
    return current


def migrate(store: Store) -> None:
    """Create or upgrade the schema; cheap when it is already current."""
    with _sqlite_first_use_lock(store):
        if _is_current(store):
            return
        from alembic import command  # imported only when there is work to do
        from alembic.config import Config

        with store.engine.connect() as conn, _postgres_migration_lock(store, conn):
            conn.commit()
            if _current_revision(conn) == HEAD:
                conn.rollback()
                return
            conn.rollback()
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()


def open_store(url: str) -> Store:
    """Connect, create or migrate the schema, and return the store."""
    store = Store(make_engine(url))
    _private_sqlite_files(store)
    try:
        migrate(store)
    except OperationalError as exc:
        store.dispose()
        raise StoreUnavailable(
            f"cannot open database {store.engine.url.render_as_string(hide_password=True)}: {exc.orig}"
        ) from exc
    return store
