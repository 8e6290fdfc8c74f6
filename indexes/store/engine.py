"""How a workspace database's engine is opened: SQLite pragmas and locking, and migration to the
newest schema revision (Alembic, `indexes.store.migrations`). The schema comes from the migrations,
not from the tables' metadata, so this module imports no table module."""

from __future__ import annotations

from sqlalchemy import create_engine, event

from indexes.store.db import READ_ONLY


def _sqlite_pragmas(dbapi_conn, _record):
    # SQLAlchemy, not pysqlite, starts transactions (see _begin_immediate)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets a reader (a report, the HTTP service) work while a scan writes; busy_timeout makes
    # a second writer wait instead of failing at once.
    cur.execute("PRAGMA busy_timeout=30000")
    _switch_to_wal(cur)
    cur.execute("PRAGMA foreign_keys=ON")
    # erased biometric rows are overwritten with zeros in the file, not just unlinked
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def _switch_to_wal(cur, patience_s: float = 30.0) -> None:
    """Put the database in WAL mode, waiting out another connection that holds a lock.

    The switch needs the database to itself, and SQLite answers "database is locked" at once
    instead of calling the busy handler: two processes opening a new workspace together (two
    scans started at once) failed one time in three on this machine. The mode is stored in the
    file, so only a new database ever needs the switch.
    """
    import sqlite3
    import time

    delay, deadline = 0.01, time.monotonic() + patience_s
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _begin_immediate(conn):
    # Take SQLite's write lock when a writing transaction starts, not at its first write: two scans
    # (or a scan and the HTTP service) appending at once then wait their turn (busy_timeout)
    # instead of failing on a stale snapshot. Reads (engines from read_only) begin a deferred
    # transaction: under WAL they read a snapshot and never hold the write lock, which matters
    # because a reading generator (a scan's faces, streamed to clustering) can stay open for
    # minutes while another process waits to write.
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")


def open_engine(url: str):
    """Return an engine for `url`, its database migrated to the newest schema revision."""
    from sqlalchemy import text

    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Processes opening one new database at once take turns migrating it; each would
            # otherwise find a table missing and create it, and all but one fail. (SQLite's BEGIN
            # IMMEDIATE already serialises this transaction; PostgreSQL's DDL is transactional.)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        migrate(conn)
    return engine


SCHEMA_LOCK_KEY = 0x66616365_73636865  # PostgreSQL advisory lock of schema creation ("facesche")


def migrate(conn) -> None:
    """Bring the database on `conn` to the newest schema revision (indexes/store/migrations)."""
    from pathlib import Path

    from sqlalchemy import inspect, text

    from indexes.store.migrations import HEAD

    if inspect(conn).has_table("alembic_version"):
        if conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD:
            return  # current: no need to load Alembic
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
