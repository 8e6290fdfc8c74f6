"""Relational storage of a workspace: one SQLAlchemy metadata (`db`), the tables of cases and
scans (`cases`), of the opt-in registry (`subjects`), of the HTTP service's keys and webhooks
(`keys`), of acquisitions (`acquisitions`), the Alembic migrations, the workspace folder
(`workspace`), its signing key (`signingkey`) and the audit log's signed heads (`audithead`)."""
