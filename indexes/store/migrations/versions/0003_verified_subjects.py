"""Verified subjects and digests: who checked a subject's identity, and the last digest a hook got.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Only adds nullable columns, so no data moves: every subject enrolled before is unverified (its
webhook gets digests from now on, scanner.disclosure), which is the safe reading of a record
nobody checked. Idempotent like the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = {
    "subjects": (
        ("verified_at", sa.DateTime(timezone=True)),
        ("verified_by", sa.String(length=64)),
        ("verification_method", sa.String(length=32)),
    ),
    "webhooks": (("digest_sha256", sa.String(length=64)),),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for name, kind in columns:
            if name not in have:
                op.add_column(table, sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, _kind in columns:
                batch.drop_column(name)
