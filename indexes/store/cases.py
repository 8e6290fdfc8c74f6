"""The case store: scans, their inputs, every member, its image hashes and its faces.

SQLAlchemy 2 ORM, so the same code runs on SQLite (default, in the workspace) and PostgreSQL.
Encodings are stored as 128 little-endian float64 values (1,024 bytes): exactly what the embedder
returned, so a stored encoding can be compared bit for bit with a recomputed one.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from indexes.store.db import Base, read_only
from indexes.store.engine import open_engine
from indexes.store.workspace import WorkspaceUnavailable

ENCODING_DIM = 128
_ENC = struct.Struct(f"<{ENCODING_DIM}d")


def pack_encoding(values: Iterable[float]) -> bytes:
    """Little-endian float64 values: 128 for dlib's encodings, an operator's model's own size otherwise."""
    values = tuple(values)
    return _ENC.pack(*values) if len(values) == ENCODING_DIM else struct.pack(f"<{len(values)}d", *values)


def unpack_encoding(blob: bytes) -> tuple[float, ...]:
    return _ENC.unpack(blob) if len(blob) == _ENC.size else struct.unpack(f"<{len(blob) // 8}d", blob)


def _encoding_array(blob: bytes):
    import numpy as np

    return np.frombuffer(blob, dtype="<f8")  # the layout _ENC packs: little-endian float64


class Scan(Base):
    __tablename__ = "scans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # running, finished, failed, interrupted
    tool_version: Mapped[str] = mapped_column(String(64))
    engine: Mapped[dict] = mapped_column(JSON)  # EngineInfo.as_record()
    parameters: Mapped[dict] = mapped_column(JSON)  # ScanOptions.as_record()
    host: Mapped[dict] = mapped_column(JSON)
    counts: Mapped[dict | None] = mapped_column(JSON)
    inputs: Mapped[list[ScanInput]] = relationship(order_by="ScanInput.position", cascade="all, delete-orphan")


class ScanInput(Base):
    __tablename__ = "scan_inputs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)  # as given
    abspath: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # file, folder, missing
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))


class MemberRow(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    logical_path: Mapped[str] = mapped_column(Text)
    relpath: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[str | None] = mapped_column(Text)  # logical path of the first copy
    raw_name: Mapped[str | None] = mapped_column(Text)  # hex of a legacy-encoded name's stored bytes
    known_source: Mapped[dict | None] = mapped_column(JSON)  # the known dataset the member comes from
    hint: Mapped[str | None] = mapped_column(String(32))  # landmarks, price_list, readme
    image: Mapped[ImageRow | None] = relationship(back_populates="member", cascade="all, delete-orphan")
    video: Mapped[VideoRow | None] = relationship(back_populates="member", cascade="all, delete-orphan")
    faces: Mapped[list[FaceRow]] = relationship(order_by="FaceRow.face_index", cascade="all, delete-orphan")

    __table_args__ = (
        Index("ix_members_scan_seq", "scan_id", "seq", unique=True),
        Index("ix_members_scan_sha", "scan_id", "sha256"),
    )


class ImageRow(Base):
    __tablename__ = "images"
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    orientation: Mapped[int] = mapped_column(Integer)
    phash: Mapped[str] = mapped_column(String(16), index=True)
    dhash: Mapped[str] = mapped_column(String(16))
    hasher: Mapped[str] = mapped_column(String(64))
    hasher_version: Mapped[str] = mapped_column(String(64))
    capture: Mapped[dict | None] = mapped_column(JSON)  # EXIF make, model, software, time taken, GPS present
    member: Mapped[MemberRow] = relationship(back_populates="image")


class VideoRow(Base):
    """A video's (or animated image's) fingerprint: stream facts, sampled frames' pHashes, tracks."""

    __tablename__ = "videos"
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    animation: Mapped[str | None] = mapped_column(Text)  # why it looks made from one still
    fingerprint: Mapped[dict] = mapped_column(JSON)  # VideoFingerprint.as_record()
    member: Mapped[MemberRow] = relationship(back_populates="video")


class FaceRow(Base):
    __tablename__ = "faces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    face_index: Mapped[int] = mapped_column(Integer)
    top: Mapped[int] = mapped_column(Integer)
    right: Mapped[int] = mapped_column(Integer)
    bottom: Mapped[int] = mapped_column(Integer)
    left: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[bytes] = mapped_column(LargeBinary)
    embedder: Mapped[str] = mapped_column(String(64))
    embedder_version: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(16))
    frame_ms: Mapped[int | None] = mapped_column(BigInteger)  # videos: the sampled frame's time
    track: Mapped[int | None] = mapped_column(Integer)  # videos: the person within the video
    person: Mapped[int | None] = mapped_column(Integer)  # the person (cluster) within the scan
    background: Mapped[bool | None] = mapped_column(Boolean)  # a face that counts as no one (a passer-by)


class RelationRow(Base):
    """A relation between two members of a scan found after reading them all (a video and its copy)."""

    __tablename__ = "relations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # reencoded_copy, reedited_copy
    seq_a: Mapped[int] = mapped_column(Integer)  # the earlier member (the original, as far as the scan can tell)
    seq_b: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[dict] = mapped_column(JSON)


class DatasetRow(Base):
    """A known public dataset (LFW, ...), fingerprinted so scans can say which items come from it."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(Text)  # the path it was fingerprinted from
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    items: Mapped[int] = mapped_column(Integer)
    hasher: Mapped[str] = mapped_column(String(64))


class DatasetItemRow(Base):
    __tablename__ = "dataset_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    relpath: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    phash: Mapped[str | None] = mapped_column(String(16))


class LineageRow(Base):
    """How a scanned dump relates to an earlier one: shared items and people, and the relation's kind."""

    __tablename__ = "lineage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    earlier_scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[dict] = mapped_column(JSON)


class Meta(Base):
    """Key-value rows of the workspace database (the registry's audit head and change count)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CaseStore:
    def __init__(self, url: str):
        self.url = url
        try:
            self.engine = open_engine(url)
            self.reader = read_only(self.engine)
        except SQLAlchemyError as exc:
            raise WorkspaceUnavailable(
                f"cannot open database {self.safe_url}: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}"
            ) from None

    @property
    def safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except SQLAlchemyError:
            return "(an invalid database URL)"

    def close(self) -> None:
        self.engine.dispose()

    # -- scans ----------------------------------------------------------------------------------

    def create_scan(
        self,
        scan_id: str,
        started_at: datetime,
        tool_version: str,
        engine: dict,
        parameters: dict,
        host: dict,
        inputs: list[dict],
    ) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(
                Scan(
                    id=scan_id,
                    started_at=started_at,
                    status="running",
                    tool_version=tool_version,
                    engine=engine,
                    parameters=parameters,
                    host=host,
                    inputs=[ScanInput(position=i, **inp) for i, inp in enumerate(inputs)],
                )
            )

    def finish_scan(
        self, scan_id: str, finished_at: datetime, status: str, counts: dict, input_hashes: dict[int, str] | None = None
    ) -> None:
        """Close a scan record; `input_hashes` maps input position to the SHA-256 read from it."""
        with Session(self.engine) as s, s.begin():
            scan = s.get(Scan, scan_id)
            scan.finished_at = finished_at
            scan.status = status
            scan.counts = counts
            for inp in scan.inputs:
                if input_hashes and inp.position in input_hashes:
                    inp.sha256 = input_hashes[inp.position]

    def add_members(self, scan_id: str, rows: list[dict]) -> None:
        """Store a batch of member records (each with optional "image", "video" and "faces") in one
        transaction: one multi-row INSERT per table (the members' new ids come back in order),
        not an ORM object per row, which cost the scan's main process a third of its time."""
        if not rows:
            return
        parts = ("image", "video", "faces")
        with Session(self.engine) as s, s.begin():
            ids = s.scalars(
                insert(MemberRow).returning(MemberRow.id, sort_by_parameter_order=True),
                [{"scan_id": scan_id, **{k: v for k, v in row.items() if k not in parts}} for row in rows],
            ).all()
            images = [
                {"member_id": i, **row["image"]}
                for i, row in zip(ids, rows, strict=True)
                if row.get("image") is not None
            ]
            videos = [
                {
                    "member_id": i,
                    "duration_ms": row["video"]["duration_ms"],
                    "animation": row["video"]["animation"],
                    "fingerprint": row["video"],
                }
                for i, row in zip(ids, rows, strict=True)
                if row.get("video") is not None
            ]
            faces = [
                {"member_id": i, "face_index": n, **f, "encoding": pack_encoding(f["encoding"])}
                for i, row in zip(ids, rows, strict=True)
                for n, f in enumerate(row.get("faces", ()))
            ]
            for table, values in ((ImageRow, images), (VideoRow, videos), (FaceRow, faces)):
                if values:
                    s.execute(insert(table), values)

    def iter_faces(self, scan_id: str) -> Iterator[dict]:
        """Every stored face of a scan with what clustering needs: member, index, box, encoding, image size."""
        with Session(self.reader) as s:
            q = (
                select(
                    MemberRow.seq,
                    MemberRow.relpath,
                    FaceRow.id,
                    FaceRow.face_index,
                    FaceRow.top,
                    FaceRow.right,
                    FaceRow.bottom,
                    FaceRow.left,
                    FaceRow.encoding,
                    FaceRow.track,
                    FaceRow.frame_ms,
                    ImageRow.width,
                    ImageRow.height,
                    VideoRow.member_id,
                )
                .join(FaceRow, FaceRow.member_id == MemberRow.id)
                .outerjoin(ImageRow, ImageRow.member_id == MemberRow.id)
                .outerjoin(VideoRow, VideoRow.member_id == MemberRow.id)
                .where(MemberRow.scan_id == scan_id)
                .order_by(MemberRow.seq, FaceRow.face_index)
            )
            for r in s.execute(q).yield_per(2000):
                # a numpy array (1 KiB), not a tuple of Python floats (about 5 KiB): clustering holds them all
                yield {
                    "seq": r[0],
                    "relpath": r[1],
                    "face_id": r[2],
                    "face_index": r[3],
                    "top": r[4],
                    "right": r[5],
                    "bottom": r[6],
                    "left": r[7],
                    "encoding": _encoding_array(r[8]),
                    "track": r[9],
                    "frame_ms": r[10],
                    "width": r[11],
                    "height": r[12],
                    "video": r[13] is not None,
                }

    def add_dataset(self, name: str, source: str, items: list[dict], hasher: str) -> int:
        """Store a known dataset's fingerprints (replacing one of the same name); return its id."""
        with Session(self.engine) as s, s.begin():
            old = s.scalars(select(DatasetRow).where(DatasetRow.name == name)).first()
            if old is not None:
                s.execute(delete(DatasetItemRow).where(DatasetItemRow.dataset_id == old.id))
                s.delete(old)
                s.flush()
            row = DatasetRow(name=name, source=source, added_at=datetime.now(UTC), items=len(items), hasher=hasher)
            s.add(row)
            s.flush()
            s.add_all([DatasetItemRow(dataset_id=row.id, **i) for i in items])
            return row.id

    def datasets(self) -> list[dict]:
        with Session(self.reader) as s:
            return [
                {
                    "id": d.id,
                    "name": d.name,
                    "source": d.source,
                    "added_at": d.added_at.isoformat(),
                    "items": d.items,
                    "hasher": d.hasher,
                }
                for d in s.scalars(select(DatasetRow).order_by(DatasetRow.name))
            ]

    def dataset_items(self) -> list[tuple[str, str, str, str | None]]:
        """(dataset name, relpath, sha256, phash) of every item of every known dataset."""
        with Session(self.reader) as s:
            return [
                tuple(r)
                for r in s.execute(
                    select(DatasetRow.name, DatasetItemRow.relpath, DatasetItemRow.sha256, DatasetItemRow.phash).join(
                        DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id
                    )
                )
            ]

    def member_hashes(self, scan_id: str) -> Iterator[tuple[int, str | None, str | None]]:
        """(member id, sha256, pHash) of every member of a scan with a SHA-256."""
        with Session(self.reader) as s:
            q = (
                select(MemberRow.id, MemberRow.sha256, ImageRow.phash)
                .outerjoin(ImageRow, ImageRow.member_id == MemberRow.id)
                .where(MemberRow.scan_id == scan_id, MemberRow.sha256.is_not(None))
            )
            yield from (tuple(r) for r in s.execute(q).yield_per(5000))

    def set_known_sources(self, marks: list[tuple[int, dict | None]]) -> None:
        from sqlalchemy import update

        with Session(self.engine) as s, s.begin():
            for i in range(0, len(marks), 5000):
                s.execute(update(MemberRow), [{"id": m, "known_source": k} for m, k in marks[i : i + 5000]])

    def content_items(self, scan_id: str) -> list[tuple[str, str | None]]:
        """(SHA-256, pHash or None) of each distinct image or video of a scan (first copies only)."""
        with Session(self.reader) as s:
            q = (
                select(MemberRow.sha256, ImageRow.phash, VideoRow.fingerprint)
                .outerjoin(ImageRow, ImageRow.member_id == MemberRow.id)
                .outerjoin(VideoRow, VideoRow.member_id == MemberRow.id)
                .where(
                    MemberRow.scan_id == scan_id,
                    MemberRow.duplicate_of.is_(None),
                    MemberRow.status == "ok",
                    MemberRow.kind.in_(("image", "video")),
                )
            )
            out = []
            for sha, phash, video in s.execute(q):
                if phash is None and video and video.get("samples"):
                    samples = video["samples"]
                    phash = samples[len(samples) // 2][1]  # a video's middle sampled frame stands for it
                out.append((sha, phash))
            return out

    def person_centroids(self, scan_id: str) -> dict[int, list[float]]:
        """The mean encoding of each person (non-background faces) of a scan."""
        import numpy as np

        sums: dict[int, list] = {}
        with Session(self.reader) as s:
            q = (
                select(FaceRow.person, FaceRow.encoding)
                .join(MemberRow, FaceRow.member_id == MemberRow.id)
                .where(MemberRow.scan_id == scan_id, FaceRow.person.is_not(None), FaceRow.background.is_not(True))
            )
            for person, blob in s.execute(q).yield_per(5000):
                v = np.asarray(unpack_encoding(blob))
                if person in sums:
                    sums[person][0] += v
                    sums[person][1] += 1
                else:
                    sums[person] = [v, 1]
        return {p: list(total / n) for p, (total, n) in sums.items()}

    def set_lineage(self, scan_id: str, rows: list[dict]) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(delete(LineageRow).where(LineageRow.scan_id == scan_id))
            s.add_all([LineageRow(scan_id=scan_id, **r) for r in rows])

    def lineage(self) -> list[dict]:
        with Session(self.reader) as s:
            return [
                {"scan_id": r.scan_id, "earlier_scan_id": r.earlier_scan_id, "kind": r.kind, "evidence": r.evidence}
                for r in s.scalars(select(LineageRow).order_by(LineageRow.id))
            ]

    def faces_without_person(self, scan_id: str) -> int:
        with Session(self.reader) as s:
            return s.scalar(
                select(func.count())
                .select_from(FaceRow)
                .join(MemberRow, FaceRow.member_id == MemberRow.id)
                .where(MemberRow.scan_id == scan_id, FaceRow.person.is_(None))
            )

    def set_people(self, assignments: list[tuple[int, int, bool]]) -> None:
        """Store each face's person: [(face row id, person, background)]."""
        from sqlalchemy import update

        with Session(self.engine) as s, s.begin():
            for i in range(0, len(assignments), 5000):
                s.execute(
                    update(FaceRow), [{"id": f, "person": p, "background": b} for f, p, b in assignments[i : i + 5000]]
                )

    def add_relations(self, scan_id: str, rows: list[dict]) -> None:
        """Store a scan's relations, replacing any a run of it stored before being interrupted."""
        with Session(self.engine) as s, s.begin():
            s.execute(delete(RelationRow).where(RelationRow.scan_id == scan_id))
            s.add_all([RelationRow(scan_id=scan_id, **r) for r in rows])

    def unfinished_scans(self) -> list[dict]:
        """Scans that never finished (still running, or killed), newest first."""
        with Session(self.reader) as s:
            return [
                _scan_dict(x)
                for x in s.scalars(
                    select(Scan).where(Scan.status.in_(("running", "interrupted"))).order_by(Scan.started_at.desc())
                )
            ]

    def reopen_scan(self, scan_id: str, host: dict) -> None:
        """Mark an unfinished scan running again, by this process."""
        with Session(self.engine) as s, s.begin():
            scan = s.get(Scan, scan_id)
            scan.status = "running"
            scan.finished_at = None
            scan.host = {**host, "resumed": (scan.host or {}).get("resumed", 0) + 1}

    def relations(self, scan_id: str) -> list[dict]:
        with Session(self.reader) as s:
            return [
                {"kind": r.kind, "seq_a": r.seq_a, "seq_b": r.seq_b, "evidence": r.evidence}
                for r in s.scalars(select(RelationRow).where(RelationRow.scan_id == scan_id).order_by(RelationRow.id))
            ]

    def get_scan(self, scan_id: str | None = None) -> dict | None:
        """Return a scan record (the latest when `scan_id` is None), or None."""
        with Session(self.reader) as s:
            if scan_id is None:
                scan = s.scalars(select(Scan).order_by(Scan.started_at.desc()).limit(1)).first()
            else:
                scan = s.get(Scan, scan_id)
            return None if scan is None else _scan_dict(scan)

    def list_scans(self) -> list[dict]:
        with Session(self.reader) as s:
            return [_scan_dict(x) for x in s.scalars(select(Scan).order_by(Scan.started_at))]

    def count_members(self, scan_id: str) -> int:
        with Session(self.reader) as s:
            return s.scalar(select(func.count()).select_from(MemberRow).where(MemberRow.scan_id == scan_id))

    def iter_members(self, scan_id: str, batch: int = 500) -> Iterator[dict]:
        """Yield every member of a scan in `seq` order, with its image and faces."""
        last = -1
        while True:
            with Session(self.reader) as s:
                rows = s.scalars(
                    select(MemberRow)
                    .where(MemberRow.scan_id == scan_id, MemberRow.seq > last)
                    .order_by(MemberRow.seq)
                    .limit(batch)
                ).all()
                out = [_member_dict(m) for m in rows]
            if not out:
                return
            yield from out
            last = out[-1]["seq"]

    def analysis_by_sha(self, scan_id: str, sha256: str) -> dict | None:
        """Return the image and faces stored for the first analysed member with these bytes."""
        with Session(self.reader) as s:
            m = s.scalars(
                select(MemberRow)
                .where(MemberRow.scan_id == scan_id, MemberRow.sha256 == sha256, MemberRow.duplicate_of.is_(None))
                .order_by(MemberRow.seq)
                .limit(1)
            ).first()
            return None if m is None else _member_dict(m)


def _scan_dict(scan: Scan) -> dict:
    return {
        "id": scan.id,
        "started_at": scan.started_at.isoformat() if scan.started_at else None,
        "finished_at": scan.finished_at.isoformat() if scan.finished_at else None,
        "status": scan.status,
        "tool_version": scan.tool_version,
        "engine": scan.engine,
        "parameters": scan.parameters,
        "host": scan.host,
        "counts": scan.counts,
        "inputs": [
            {"path": i.path, "abspath": i.abspath, "kind": i.kind, "size": i.size, "sha256": i.sha256}
            for i in scan.inputs
        ],
    }


def _member_dict(m: MemberRow) -> dict:
    out = {
        "seq": m.seq,
        "logical_path": m.logical_path,
        "relpath": m.relpath,
        "size": m.size,
        "sha256": m.sha256,
        "mime": m.mime,
        "kind": m.kind,
        "status": m.status,
        "reason": m.reason,
        "duplicate_of": m.duplicate_of,
        "raw_name": m.raw_name,
        "hint": m.hint,
        "known_source": m.known_source,
        "image": None,
        "video": None if m.video is None else m.video.fingerprint,
        "faces": [],
    }
    if m.image is not None:
        i = m.image
        out["image"] = {
            "width": i.width,
            "height": i.height,
            "format": i.format,
            "orientation": i.orientation,
            "phash": i.phash,
            "dhash": i.dhash,
            "hasher": i.hasher,
            "hasher_version": i.hasher_version,
            "capture": i.capture,
        }
    out["faces"] = [
        {
            "top": f.top,
            "right": f.right,
            "bottom": f.bottom,
            "left": f.left,
            "encoding": unpack_encoding(f.encoding),
            "embedder": f.embedder,
            "embedder_version": f.embedder_version,
            "detector": f.detector,
            "frame_ms": f.frame_ms,
            "track": f.track,
            "person": f.person,
            "background": f.background,
        }
        for f in m.faces
    ]
    return out


__all__ = ["CaseStore", "pack_encoding", "unpack_encoding"]
