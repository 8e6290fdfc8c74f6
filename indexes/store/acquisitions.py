"""Acquisition records: every download from a link (scanner/acquire), complete or failed.

Each row keeps the whole record as JSON and the SHA-256 of its canonical form (sorted keys, no
spaces, UTF-8), which the hash-chained audit log also keeps: a record edited in the database no
longer matches its hash or its audit entry. Rows are only ever added, never updated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, String, Text, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from indexes.store.db import Base, read_only


class AcquisitionRow(Base):
    __tablename__ = "acquisitions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requested_url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # complete, failed
    reason: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16))  # file, page
    parent_id: Mapped[str | None] = mapped_column(String(32), index=True)  # the page whose link was followed
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)  # absolute path of the stored (read-only) file
    record: Mapped[dict] = mapped_column(JSON)  # AcquisitionRecord.as_record()
    record_sha256: Mapped[str] = mapped_column(String(64))


class AcquisitionStore:
    """The acquisitions table of one workspace database (the engine comes from the case store)."""

    def __init__(self, engine):
        self.engine = engine
        self.reader = read_only(engine)

    def add(self, record: dict, record_sha256: str) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(
                AcquisitionRow(
                    id=record["id"],
                    requested_url=record["requested_url"],
                    final_url=record["final_url"],
                    started_at=datetime.fromisoformat(record["started_at"]),
                    finished_at=datetime.fromisoformat(record["finished_at"]),
                    status=record["status"],
                    reason=record["reason"],
                    kind=record["kind"],
                    parent_id=record["parent_id"],
                    sha256=record["sha256"],
                    size=record["bytes"],
                    path=record["path"] if record["status"] == "complete" else None,
                    record=record,
                    record_sha256=record_sha256,
                )
            )

    def get(self, acquisition_id: str) -> dict | None:
        with Session(self.reader) as s:
            row = s.get(AcquisitionRow, acquisition_id)
            return None if row is None else _row_dict(row)

    def for_file(self, sha256: str | None, path: str | None) -> list[dict]:
        """Complete acquisitions of these bytes or stored at this path, oldest first."""
        conditions = [
            c
            for c in (
                AcquisitionRow.sha256 == sha256 if sha256 else None,
                AcquisitionRow.path == path if path else None,
            )
            if c is not None
        ]
        if not conditions:
            return []
        with Session(self.reader) as s:
            q = (
                select(AcquisitionRow)
                .where(AcquisitionRow.status == "complete", or_(*conditions))
                .order_by(AcquisitionRow.started_at, AcquisitionRow.id)
            )
            return [_row_dict(r) for r in s.scalars(q)]

    def list(self) -> list[dict]:
        """Every acquisition, oldest first."""
        with Session(self.reader) as s:
            q = select(AcquisitionRow).order_by(AcquisitionRow.started_at, AcquisitionRow.id)
            return [_row_dict(r) for r in s.scalars(q)]


def _row_dict(row: AcquisitionRow) -> dict:
    return {
        "id": row.id,
        "requested_url": row.requested_url,
        "final_url": row.final_url,
        "status": row.status,
        "reason": row.reason,
        "kind": row.kind,
        "parent_id": row.parent_id,
        "sha256": row.sha256,
        "size": row.size,
        "path": row.path,
        "started_at": row.started_at.isoformat(),
        "record": row.record,
        "record_sha256": row.record_sha256,
    }


__all__ = ["AcquisitionStore"]
