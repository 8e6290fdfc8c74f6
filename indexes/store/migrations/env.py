"""Alembic environment: migrations run on the connection `indexes.store.engine.open_engine` passes in."""

from __future__ import annotations

from alembic import context

from indexes.store.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite"
)  # SQLite alters tables by copying
with context.begin_transaction():
    context.run_migrations()
