"""The one SQLAlchemy metadata of a workspace database: the table modules (cases, subjects, keys,
acquisitions) declare their tables on `Base`; engines are opened by `indexes.store.engine`."""

from __future__ import annotations

from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON}


READ_ONLY = "facetrace_read_only"


def read_only(engine):
    """Return `engine` for sessions that only read (same pool; on SQLite no write lock is taken)."""
    return engine.execution_options(**{READ_ONLY: True})
