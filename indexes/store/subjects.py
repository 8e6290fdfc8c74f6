"""The opt-in registry: subjects, their consent, reference templates, findings, and the audit log.

Plain storage; the decisions (who may enroll, what is a match) are made in `scanner/`. Every
change to a subject is written in the same transaction as its audit entry. Audit entries are
hash-chained: each entry's hash covers its content and the previous entry's hash, and the head
hash is kept in the `meta` table, so an edited, inserted or deleted entry is detected. Each new
head is also signed with the workspace key into a file outside the database (indexes/store/audithead.py),
so that removing the newest entries, which a database writer can do consistently, is detected too.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, delete, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from indexes.store.audithead import HeadLog, append_after_commit, folder_for
from indexes.store.cases import Meta, pack_encoding, unpack_encoding
from indexes.store.db import Base, read_only

GENESIS = "0" * 64
NO_TOKEN = "0" * 64  # compared against when a subject has no token: the comparison costs the same
AUDIT_LOCK_KEY = 0x66616365_61756469  # PostgreSQL advisory lock of the audit chain ("faceaudi")
CHANGES_KEY = "registry_changes"  # meta row: count of changes to templates and hashes


def utcnow() -> datetime:
    return datetime.now(UTC)


class Subject(Base):
    __tablename__ = "subjects"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, pseudonymous
    label: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # active, withdrawn, erased
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_sha256: Mapped[str | None] = mapped_column(String(64))  # the deletion token, hashed
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # set by an intake officer who checked the person's identity and took a photo that matched the
    # enrolled ones (scanner.registry.verify_subject); only a verified subject is told in real time
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by: Mapped[str | None] = mapped_column(String(64))  # the intake key's id, or the CLI actor
    verification_method: Mapped[str | None] = mapped_column(String(32))


class Consent(Base):
    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    text_version: Mapped[str] = mapped_column(String(64))
    text_sha256: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    jurisdiction: Mapped[str] = mapped_column(String(32))


class Template(Base):
    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64), index=True)
    encoding: Mapped[bytes] = mapped_column(LargeBinary)
    embedder: Mapped[str] = mapped_column(String(64))
    embedder_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    photo: Mapped[bytes | None] = mapped_column(LargeBinary)  # only with --keep-photos


class TemplateHash(Base):
    """A perceptual hash of an enrolled photo or of one of its variants (mirrored, rotated, ...)."""

    __tablename__ = "template_hashes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    variant: Mapped[str] = mapped_column(String(16))
    phash: Mapped[str] = mapped_column(String(16))
    hasher: Mapped[str] = mapped_column(String(64))


class Finding(Base):
    __tablename__ = "findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[str | None] = mapped_column(String(32), index=True)  # None: a one-photo `match`
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # exact_copy, near_copy, same_person
    band: Mapped[str] = mapped_column(String(16))  # confident, probable, possible
    logical_path: Mapped[str] = mapped_column(Text)
    member_seq: Mapped[int | None] = mapped_column(Integer)
    face_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    evidence: Mapped[dict] = mapped_column()  # distances, thresholds, model, group


class AuditEntry(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601, hashed as text
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(32), index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def _entry_hash(seq, at, actor, action, subject_id, details, prev_hash) -> str:
    body = json.dumps(
        [seq, at, actor, action, subject_id, details, prev_hash], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(body.encode()).hexdigest()


class RegistryStore:
    """Registry tables of one workspace database (the engine comes from the case store)."""

    def __init__(self, engine, root=None):
        self.engine = engine
        self.reader = read_only(engine)  # reads never take the write lock
        self.last_change: int | None = None  # the change count this object's last change made
        # where each new audit head is signed: `root`, else the folder of a workspace's own SQLite
        # database; None (no signed heads) for a database that names no folder (audithead.folder_for)
        folder = folder_for(engine, root)
        self.head_log = HeadLog(folder) if folder is not None else None

    # -- audit --------------------------------------------------------------------------------

    def _audit(self, s: Session, action: str, actor: str, subject_id: str | None, details: dict) -> None:
        if s.get_bind().dialect.name == "postgresql":
            # Appends take turns: under READ COMMITTED two writers would read the same last entry and
            # both try to add the next one (a unique violation, and a lost entry). SQLite needs no
            # lock here: its writing transactions begin IMMEDIATE and so run one at a time.
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
        seq = 1 if last is None else last.seq + 1
        prev = GENESIS if last is None else last.hash
        at = utcnow().isoformat()
        canonical = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        h = _entry_hash(seq, at, actor, action, subject_id, canonical, prev)
        s.add(
            AuditEntry(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject_id=subject_id,
                details=canonical,
                prev_hash=prev,
                hash=h,
            )
        )
        head = s.get(Meta, "audit_head")
        value = f"{seq}:{h}"
        if head is None:
            s.add(Meta(key="audit_head", value=value))
        else:
            head.value = value
        if self.head_log is not None:  # signed once the transaction commits, never for a rolled-back one
            append_after_commit(s, self.head_log, seq, h)

    def _bump_changes(self, s: Session) -> None:
        """Count a change of the templates or hashes, in the transaction that makes it (after
        `_audit`, whose lock serializes writers on PostgreSQL; SQLite has one writer at a time).
        The indexes record the count they reflect: an index whose count equals the database's is
        current without reading a million ids (RegistryIndex)."""
        row = s.get(Meta, CHANGES_KEY)
        n = 1 if row is None else int(row.value) + 1
        if row is None:
            s.add(Meta(key=CHANGES_KEY, value=str(n)))
        else:
            row.value = str(n)
        self.last_change = n

    def registry_changes(self) -> int:
        """How many enrollments, withdrawals and erasures the registry has seen (0: none yet)."""
        with Session(self.reader) as s:
            row = s.get(Meta, CHANGES_KEY)
            return 0 if row is None else int(row.value)

    def audit(self, action: str, actor: str, subject_id: str | None = None, details: dict | None = None) -> None:
        """Append one audit entry (searches, scans against the registry, report exports...)."""
        with Session(self.engine) as s, s.begin():
            self._audit(s, action, actor, subject_id, details or {})

    def audit_entries(self, subject_id: str | None = None) -> list[dict]:
        with Session(self.reader) as s:
            q = select(AuditEntry).order_by(AuditEntry.seq)
            if subject_id:
                q = q.where(AuditEntry.subject_id == subject_id)
            return [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "subject_id": e.subject_id,
                    "details": json.loads(e.details),
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
                for e in s.scalars(q)
            ]

    def head(self) -> dict | None:
        """The newest entry's seq and hash (what a signed report carries), or None for an empty log."""
        with Session(self.reader) as s:
            last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
            return None if last is None else {"seq": last.seq, "hash": last.hash}

    def verify_audit(self, anchors: tuple[tuple[int, str], ...] | list = ()) -> list[str]:
        """Return the problems found in the audit chain, its signed heads and `anchors` (empty: intact)."""
        return self.check_audit(anchors)["problems"]

    def check_audit(self, anchors: tuple[tuple[int, str], ...] | list = ()) -> dict:
        """Check the hash chain, the recorded head, the workspace's signed heads, and `anchors`:
        (seq, hash) heads published earlier (a signed report's `audit_head`), which the log must
        still hold. Return the problems, notes, entry count, newest signed head and the number of
        entries newer than it (a cut among those would not be seen)."""
        signed = self.head_log.read() if self.head_log is not None else None  # before the database: audithead
        problems = []
        prev, expected_seq = GENESIS, 1
        with Session(self.reader) as s:
            entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
            head = s.get(Meta, "audit_head")
        for e in entries:
            if e.seq != expected_seq:
                problems.append(f"entry {expected_seq} is missing (next is {e.seq})")
            if e.prev_hash != prev:
                problems.append(f"entry {e.seq} does not follow the entry before it (chain broken)")
            if _entry_hash(e.seq, e.at, e.actor, e.action, e.subject_id, e.details, e.prev_hash) != e.hash:
                problems.append(f"entry {e.seq} ({e.action}) was altered: its hash does not match its content")
            prev, expected_seq = e.hash, e.seq + 1
        if entries:
            want = f"{entries[-1].seq}:{entries[-1].hash}"
            if head is None or head.value != want:
                problems.append(
                    f"the log ends at entry {entries[-1].seq} but its recorded head is "
                    f"{head.value if head else 'missing'}: entries were removed or added"
                )
        elif head is not None:
            problems.append(f"the log is empty but its recorded head is {head.value}: entries were removed")
        hashes = {e.seq: e.hash for e in entries}
        for seq, h in anchors:
            if seq not in hashes:
                problems.append(
                    f"entry {seq}, published as the log's head with hash {h[:16]}, is missing: it was removed"
                )
            elif hashes[seq] != h:
                problems.append(
                    f"entry {seq} is not the entry published as the log's head (hash {h[:16]}): the log was rewritten"
                )
        out = {
            "entries": len(entries),
            "problems": problems,
            "notes": [],
            "signed_head": None,
            "uncovered": len(entries),
            "head_log": None,
        }
        if self.head_log is None:
            out["notes"].append(
                "this database names no workspace folder (a server database opened without one): "
                "no head is signed, so removing the newest entries would not be detected"
            )
            return out
        check = self.head_log.check(signed, hashes, entries[-1].seq if entries else None)
        problems += check.problems
        out.update(
            notes=check.notes,
            uncovered=check.uncovered,
            head_log=str(check.path),
            signed_head=None
            if check.signed is None
            else {"seq": check.signed.seq, "hash": check.signed.hash, "at": check.signed.at},
        )
        return out

    # -- subjects -----------------------------------------------------------------------------

    def create_subject(
        self, *, label: str | None, token_sha256: str, consent: dict, templates: list[dict], actor: str
    ) -> tuple[str, list[int]]:
        """Store a new subject with its consent and templates; return (subject id, template ids)."""
        with Session(self.engine) as s, s.begin():
            subject_id = secrets.token_hex(8)
            while s.get(Subject, subject_id) is not None:
                subject_id = secrets.token_hex(8)
            now = utcnow()
            s.add(Subject(id=subject_id, label=label, status="active", created_at=now, token_sha256=token_sha256))
            s.flush()
            s.add(Consent(subject_id=subject_id, **consent))
            rows = []
            for t in templates:
                row = Template(
                    subject_id=subject_id,
                    photo_sha256=t["photo_sha256"],
                    encoding=pack_encoding(t["encoding"]),
                    embedder=t["embedder"],
                    embedder_version=t["embedder_version"],
                    created_at=now,
                    photo=t.get("photo"),
                )
                s.add(row)
                s.flush()
                for variant, phash in t["hashes"].items():
                    s.add(
                        TemplateHash(
                            template_id=row.id, subject_id=subject_id, variant=variant, phash=phash, hasher=t["hasher"]
                        )
                    )
                rows.append(row.id)
            self._audit(
                s,
                "enroll",
                actor,
                subject_id,
                {"templates": len(rows), "purpose": consent["purpose"], "consent_text_sha256": consent["text_sha256"]},
            )
            self._bump_changes(s)
            return subject_id, rows

    def get_subject(self, subject_id: str) -> dict | None:
        with Session(self.reader) as s:
            subj = s.get(Subject, subject_id)
            if subj is None:
                return None
            consents = s.scalars(select(Consent).where(Consent.subject_id == subject_id)).all()
            n = s.scalar(select(func.count()).select_from(Template).where(Template.subject_id == subject_id))
            return {
                "id": subj.id,
                "label": subj.label,
                "status": subj.status,
                "created_at": subj.created_at.isoformat(),
                "withdrawn_at": subj.withdrawn_at.isoformat() if subj.withdrawn_at else None,
                "erased_at": subj.erased_at.isoformat() if subj.erased_at else None,
                "verified": None
                if subj.verified_at is None
                else {"at": subj.verified_at.isoformat(), "by": subj.verified_by, "method": subj.verification_method},
                "templates": n,
                "consents": [
                    {
                        "purpose": c.purpose,
                        "scope": c.scope,
                        "text_version": c.text_version,
                        "text_sha256": c.text_sha256,
                        "granted_at": c.granted_at.isoformat(),
                        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
                        "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
                        "jurisdiction": c.jurisdiction,
                    }
                    for c in consents
                ],
            }

    def list_subjects(self) -> list[dict]:
        with Session(self.reader) as s:
            ids = s.scalars(select(Subject.id).order_by(Subject.created_at)).all()
        return [self.get_subject(i) for i in ids]

    def check_token(self, subject_id: str, token: str) -> bool:
        """True when `token` is the subject's deletion token. The token is hashed and compared
        whether or not the subject exists, so an unknown id costs what a real one does."""
        given = hashlib.sha256(token.encode()).hexdigest()
        with Session(self.reader) as s:
            subj = s.get(Subject, subject_id)
            stored = subj.token_sha256 if subj is not None else None
        return secrets.compare_digest(stored or NO_TOKEN, given) and stored is not None

    def set_verified(
        self, subject_id: str, *, by: str | None, method: str | None, actor: str, details: dict | None = None
    ) -> bool:
        """Mark an active subject verified (`by` and `method` given) or not (both None); audited.
        Return False when the subject is not active (nothing changes)."""
        with Session(self.engine) as s, s.begin():
            subj = s.get(Subject, subject_id)
            if subj is None or subj.status != "active":
                return False
            verified = by is not None
            subj.verified_at = utcnow() if verified else None
            subj.verified_by, subj.verification_method = by, method
            self._audit(
                s,
                "subject_verified" if verified else "verification_revoked",
                actor,
                subject_id,
                {"method": method, **(details or {})},
            )
            return True

    def verified_subjects(self, subject_ids) -> set[str]:
        """Those of `subject_ids` that are active and verified."""
        ids = list(subject_ids)
        if not ids:
            return set()
        with Session(self.reader) as s:
            return set(
                s.scalars(
                    select(Subject.id).where(
                        Subject.id.in_(ids), Subject.status == "active", Subject.verified_at.is_not(None)
                    )
                )
            )

    def count_templates(self) -> int:
        """Templates of every status and embedder (what a change of the workspace's engine would strand)."""
        with Session(self.reader) as s:
            return int(s.scalar(select(func.count()).select_from(Template)))

    def count_active_subjects(self) -> int:
        with Session(self.reader) as s:
            return s.scalar(select(func.count()).select_from(Subject).where(Subject.status == "active"))

    def withdraw(self, subject_id: str, actor: str) -> dict[str, list[int]]:
        """Withdraw consent: the subject's templates are deleted and no longer matched; return their ids."""
        with Session(self.engine) as s, s.begin():
            subj = s.get(Subject, subject_id)
            now = utcnow()
            subj.status = "withdrawn"
            subj.withdrawn_at = now
            for c in s.scalars(select(Consent).where(Consent.subject_id == subject_id, Consent.withdrawn_at.is_(None))):
                c.withdrawn_at = now
            ids = self._delete_templates(s, subject_id)
            self._audit(s, "withdraw", actor, subject_id, {"deleted": ids})
            self._bump_changes(s)
            return ids

    def erase(self, subject_id: str, actor: str) -> dict:
        """Delete every trace of a subject except a tombstone; return what was deleted."""
        with Session(self.engine) as s, s.begin():
            subj = s.get(Subject, subject_id)
            ids = self._delete_templates(s, subject_id)
            findings = s.execute(delete(Finding).where(Finding.subject_id == subject_id)).rowcount
            consents = s.execute(delete(Consent).where(Consent.subject_id == subject_id)).rowcount
            subj.label = None
            subj.token_sha256 = None
            subj.verified_at = subj.verified_by = subj.verification_method = None
            subj.status = "erased"
            subj.erased_at = utcnow()
            deleted = {**ids, "findings": findings, "consents": consents}
            self._audit(s, "erase", actor, subject_id, deleted)
            self._bump_changes(s)
            return {**deleted, "erased_at": subj.erased_at.isoformat()}

    def _delete_templates(self, s: Session, subject_id: str) -> dict[str, list[int]]:
        ids = list(s.scalars(select(Template.id).where(Template.subject_id == subject_id)))
        hash_ids = list(s.scalars(select(TemplateHash.id).where(TemplateHash.subject_id == subject_id)))
        s.execute(delete(TemplateHash).where(TemplateHash.subject_id == subject_id))
        s.execute(delete(Template).where(Template.subject_id == subject_id))
        return {"templates": ids, "hashes": hash_ids}

    def remaining_traces(self, subject_id: str) -> dict[str, int]:
        """Count rows that still hold the subject's data (all zero after erasure)."""
        with Session(self.reader) as s:
            out = {}
            for name, model in (
                ("templates", Template),
                ("template_hashes", TemplateHash),
                ("findings", Finding),
                ("consents", Consent),
            ):
                out[name] = s.scalar(select(func.count()).select_from(model).where(model.subject_id == subject_id))
            subj = s.get(Subject, subject_id)
            out["label"] = int(subj is not None and subj.label is not None)
            out["token"] = int(subj is not None and subj.token_sha256 is not None)
            return out

    # -- templates for indexes --------------------------------------------------------------

    @staticmethod
    def _check_embedder(s: Session, embedder: str, embedder_version: str) -> None:
        other = set(s.execute(select(Template.embedder, Template.embedder_version).distinct()).all()) - {
            (embedder, embedder_version)
        }
        if other:
            raise ValueError(
                f"the registry holds templates made by {sorted(other)}, not by "
                f"{embedder} {embedder_version}: re-enroll or use the matching engine"
            )

    def template_vectors(
        self,
        embedder: str,
        embedder_version: str,
        subject_id: str | None = None,
        encodings: bool = True,
        dim: int = 128,
    ):
        """Return (ids, encodings, subject ids) of every active template made by this embedder.

        Encodings come as one float32 array [n, dim] (1M templates: 512 MB, where Python tuples
        would take several GB), or None with `encodings=False`: checking that an index file is
        current needs the ids only, not a gigabyte of vectors. With `subject_id`, only that
        subject's: adding one enrollment must not read the registry.
        """
        import numpy as np

        cols = [Template.id, Template.subject_id, *([Template.encoding] if encodings else [])]
        q = select(*cols).join(Subject, Subject.id == Template.subject_id).where(Subject.status == "active")
        if subject_id is not None:
            q = q.where(Template.subject_id == subject_id)
        with Session(self.reader) as s:
            self._check_embedder(s, embedder, embedder_version)
            ids, subjects, vectors = [], [], []
            for part in s.execute(q.order_by(Template.id)).yield_per(10_000).partitions():
                ids += [row[0] for row in part]
                subjects += [row[1] for row in part]
                if encodings:  # float32 chunk by chunk: no float64 copy of the whole registry
                    blob = b"".join(row[2] for row in part)  # the layout pack_encoding writes
                    vectors.append(np.frombuffer(blob, dtype="<f8").reshape(-1, dim).astype(np.float32))
        out = None
        if encodings:
            out = np.concatenate(vectors) if vectors else np.empty((0, dim), dtype=np.float32)
        return ids, out, subjects

    def active_template_ids(self, embedder: str, embedder_version: str):
        """The ids of every active template, sorted, as an int64 array (a million in about a second:
        what checking an index file against the database needs, without subjects or encodings)."""
        import numpy as np

        q = (
            select(Template.id)
            .join(Subject, Subject.id == Template.subject_id)
            .where(Subject.status == "active")
            .order_by(Template.id)
        )
        with Session(self.reader) as s:
            self._check_embedder(s, embedder, embedder_version)
            return np.fromiter(s.scalars(q), dtype=np.int64)

    def active_hash_ids(self):
        """The ids of every active template hash, sorted, as an int64 array."""
        import numpy as np

        q = (
            select(TemplateHash.id)
            .join(Subject, Subject.id == TemplateHash.subject_id)
            .where(Subject.status == "active")
            .order_by(TemplateHash.id)
        )
        with Session(self.reader) as s:
            return np.fromiter(s.scalars(q), dtype=np.int64)

    def iter_hash_codes(self, chunk: int = 200_000):
        """Yield (ids, codes) of every active template hash in id order, `chunk` rows at a time, as
        int64 and (n, 8) uint8 arrays: rebuilding the hash index of a million-subject registry
        (18 million hashes) without holding them as Python rows (measured: 10 GB that way)."""
        import numpy as np

        q = (
            select(TemplateHash.id, TemplateHash.phash)
            .join(Subject, Subject.id == TemplateHash.subject_id)
            .where(Subject.status == "active")
            .order_by(TemplateHash.id)
        )
        with Session(self.reader) as s:
            for part in s.execute(q).yield_per(chunk).partitions():
                ids = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
                codes = np.frombuffer(bytes.fromhex("".join(r[1] for r in part)), dtype=np.uint8).reshape(-1, 8)
                yield ids, codes

    def subjects_of_templates(self, template_ids) -> dict[int, str]:
        """Map template id -> subject id for the active ones among `template_ids` (search hits)."""
        ids = sorted({int(t) for t in template_ids})
        out: dict[int, str] = {}
        with Session(self.reader) as s:
            for i in range(0, len(ids), 500):
                q = (
                    select(Template.id, Template.subject_id)
                    .join(Subject, Subject.id == Template.subject_id)
                    .where(Subject.status == "active", Template.id.in_(ids[i : i + 500]))
                )
                out.update({r.id: r.subject_id for r in s.execute(q)})
        return out

    def hash_details(self, hash_ids) -> dict[int, tuple[int, str, str]]:
        """Map template-hash id -> (template id, subject id, variant) for the active ones (search hits)."""
        ids = sorted({int(h) for h in hash_ids})
        out: dict[int, tuple[int, str, str]] = {}
        with Session(self.reader) as s:
            for i in range(0, len(ids), 500):
                q = (
                    select(TemplateHash.id, TemplateHash.template_id, TemplateHash.subject_id, TemplateHash.variant)
                    .join(Subject, Subject.id == TemplateHash.subject_id)
                    .where(Subject.status == "active", TemplateHash.id.in_(ids[i : i + 500]))
                )
                out.update({r.id: (r.template_id, r.subject_id, r.variant) for r in s.execute(q)})
        return out

    def hash_rows(self, subject_id: str | None = None):
        """Return (ids, phashes, template ids, subject ids, variants) of every active template hash."""
        q = (
            select(
                TemplateHash.id,
                TemplateHash.phash,
                TemplateHash.template_id,
                TemplateHash.subject_id,
                TemplateHash.variant,
            )
            .join(Subject, Subject.id == TemplateHash.subject_id)
            .where(Subject.status == "active")
        )
        if subject_id is not None:
            q = q.where(TemplateHash.subject_id == subject_id)
        with Session(self.reader) as s:
            rows = s.execute(q.order_by(TemplateHash.id)).all()
        return (
            [r.id for r in rows],
            [r.phash for r in rows],
            [r.template_id for r in rows],
            [r.subject_id for r in rows],
            [r.variant for r in rows],
        )

    def templates_by_photo_sha(self, shas: list[str]) -> dict[str, list[tuple[int, str]]]:
        """Map photo SHA-256 -> [(template id, subject id)] for active subjects."""
        out: dict[str, list[tuple[int, str]]] = {}
        if not shas:
            return out
        with Session(self.reader) as s:
            for chunk in range(0, len(shas), 500):
                rows = s.execute(
                    select(Template.photo_sha256, Template.id, Template.subject_id)
                    .join(Subject, Subject.id == Template.subject_id)
                    .where(Subject.status == "active", Template.photo_sha256.in_(shas[chunk : chunk + 500]))
                ).all()
                for r in rows:
                    out.setdefault(r.photo_sha256, []).append((r.id, r.subject_id))
        return out

    def templates_by_photo_sha_of(self, subject_id: str) -> list[str]:
        """The SHA-256 of each photo a subject enrolled with."""
        with Session(self.reader) as s:
            return list(s.scalars(select(Template.photo_sha256).where(Template.subject_id == subject_id)))

    # -- findings -----------------------------------------------------------------------------

    def add_findings(self, rows: list[dict]) -> None:
        with Session(self.engine) as s, s.begin():
            now = utcnow()
            for r in rows:
                s.add(Finding(created_at=now, **r))

    def findings(self, scan_id: str | None = None, subject_id: str | None = None) -> list[dict]:
        with Session(self.reader) as s:
            q = select(Finding).order_by(Finding.id)
            if scan_id:
                q = q.where(Finding.scan_id == scan_id)
            if subject_id:
                q = q.where(Finding.subject_id == subject_id)
            # created_at in UTC, ISO 8601: SQLite hands back naive datetimes of what was stored as UTC
            return [
                {
                    "scan_id": f.scan_id,
                    "subject_id": f.subject_id,
                    "kind": f.kind,
                    "band": f.band,
                    "logical_path": f.logical_path,
                    "member_seq": f.member_seq,
                    "face_index": f.face_index,
                    "evidence": f.evidence,
                    "created_at": (f.created_at if f.created_at.tzinfo else f.created_at.replace(tzinfo=UTC))
                    .astimezone(UTC)
                    .isoformat(),
                }
                for f in s.scalars(q)
            ]


def template_encodings(engine, template_ids: list[int]) -> dict[int, tuple[float, ...]]:
    """Return {template id: encoding} for the given templates (those erased since are absent)."""
    out: dict[int, tuple[float, ...]] = {}
    with Session(read_only(engine)) as s:
        for chunk in range(0, len(template_ids), 500):
            rows = s.execute(
                select(Template.id, Template.encoding).where(Template.id.in_(template_ids[chunk : chunk + 500]))
            ).all()
            for r in rows:
                out[int(r.id)] = unpack_encoding(r.encoding)
    return out


def subject_encodings(engine, subject_ids: list[str]) -> dict[str, list[tuple[float, ...]]]:
    """Return every template encoding of the given subjects."""
    out: dict[str, list] = {}
    with Session(read_only(engine)) as s:
        for chunk in range(0, len(subject_ids), 500):
            rows = s.execute(
                select(Template.subject_id, Template.encoding).where(
                    Template.subject_id.in_(subject_ids[chunk : chunk + 500])
                )
            ).all()
            for r in rows:
                out.setdefault(r.subject_id, []).append(unpack_encoding(r.encoding))
    return out
