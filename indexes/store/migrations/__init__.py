"""Schema migrations of the workspace database (Alembic), one chain for SQLite and PostgreSQL.

`indexes.store.engine.open_engine` runs them: a new database is created by upgrading to the newest
revision; a database made before migrations existed (it has facetrace's tables but no
`alembic_version`) is first given the nullable columns added since it was made, stamped with
the baseline revision, then upgraded. tests/indexes/test_migrations.py checks that the newest
revision builds exactly the tables the models declare.
"""

# The newest revision. A database already at it is opened without loading Alembic (half a second
# at every command's start); tests/indexes/test_migrations.py checks this is the chain's head.
HEAD = "0003"
