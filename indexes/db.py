"""The one SQLAlchemy metadata of a workspace database, and how an engine is opened."""

from __future__ import annotations

from sqlalchemy import JSON, create_engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON}


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    # WAL lets a reader (a report, the HTTP service) work while a scan writes; busy_timeout makes
    # a second writer wait instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # erased biometric rows are overwritten with zeros in the file, not just unlinked
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def open_engine(url: str):
    """Return an engine for `url` with every table of the workspace schema created."""
    import indexes.casestore  # noqa: F401 - registers the tables on Base.metadata
    import indexes.registry  # noqa: F401

    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine
