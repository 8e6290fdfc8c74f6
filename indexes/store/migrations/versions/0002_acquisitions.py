"""Acquisitions: the custody record of every download from a link (`facetrace acquire`).

Revision ID: 0002
Revises: 0001
Create Date: 2027-01-15

Only adds a table, so no data moves. Idempotent like the baseline: a database whose tables were
made by `create_all` (before migrations existed) may already have it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("acquisitions"):
        op.create_table(
            "acquisitions",
            sa.Column("id", sa.String(length=32), nullable=False),
            sa.Column("requested_url", sa.Text(), nullable=False),
            sa.Column("final_url", sa.Text(), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("kind", sa.String(length=16), nullable=True),
            sa.Column("parent_id", sa.String(length=32), nullable=True),
            sa.Column("sha256", sa.String(length=64), nullable=True),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("path", sa.Text(), nullable=True),
            sa.Column("record", sa.JSON(), nullable=False),
            sa.Column("record_sha256", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    have = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("acquisitions")}
    for column in ("parent_id", "sha256"):
        if f"ix_acquisitions_{column}" not in have:
            op.create_index(f"ix_acquisitions_{column}", "acquisitions", [column], unique=False)


def downgrade() -> None:
    op.drop_table("acquisitions")
