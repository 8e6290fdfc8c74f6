"""Signed heads of the audit log, kept in an append-only file outside the database.

The hash chain (indexes/store/subjects.py) shows an edited, inserted or deleted entry, but whoever can
write the database can also delete its newest entries and set the recorded head to the last one
left: every hash still agrees. So after each append commits, the new head (seq and hash) is signed
with the workspace's Ed25519 key and appended to `<workspace>/audit-head.log`, one JSON line per
head. Verification then requires the database's log to reach the newest validly signed head with
the same hash at that seq: a cut end or a rewritten chain needs the private key, not only write
access to the database. What this does and does not defend against: docs/registry.md.

Lines are appended with O_APPEND, each head in one write, so concurrent writers (two scans, the
HTTP service) never interleave within a line. A head is written only after its transaction
committed: a rolled-back entry leaves no head that the log would then seem to have lost. Writers
append out of order at times (the second of two commits may be written first), so the newest head
is the line with the highest seq, not the last line.
"""

from __future__ import annotations

import base64
import heapq
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from indexes.store.signingkey import fingerprint, load_or_create, load_public
from indexes.store.workspace import DB_FILENAME

log = logging.getLogger(__name__)

HEAD_FILE = "audit-head.log"
DOMAIN = "facetrace-audit-head/1"  # keeps a head's signature from ever passing for a report's, and back
# heads of highest seq kept while reading: concurrent writers append a few out of order, never more
# than there are writers; a forger's lines above the newest valid head are each reported
CANDIDATES = 64


def folder_for(engine, root=None) -> Path | None:
    """The workspace folder whose head log an engine's audit log signs into, or None.

    `root` when the caller knows its workspace. Otherwise a workspace's own SQLite database
    (`<workspace>/facetrace.db`) names its folder. A database elsewhere (PostgreSQL, a SQLite file
    under another name) names none: guessing a folder could sign heads into another workspace's log.
    """
    if root is not None:
        return Path(root)
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        if path.name == DB_FILENAME:
            return path.resolve().parent
    return None


def _payload(seq: int, head_hash: str, at: str) -> bytes:
    return f"{DOMAIN}\n{seq}\n{head_hash}\n{at}".encode()


@dataclass(frozen=True)
class SignedHead:
    line: int
    seq: int
    hash: str
    at: str
    key_id: str
    sig: str


@dataclass
class HeadCheck:
    """What the head log says about a database's audit log."""

    path: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: SignedHead | None = None  # the newest head whose signature holds
    uncovered: int = 0  # entries newer than it: a cut among them could not be seen


class HeadLog:
    """The signed-head file of one workspace folder."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / HEAD_FILE
        self._key = None

    def append(self, heads: list[tuple[int, str]]) -> None:
        """Sign each (seq, hash) with the workspace key and append it, all in one write."""
        if self._key is None:
            self._key = load_or_create(self.folder)
        key_id = fingerprint(self._key.public_key())[:16]
        lines = []
        for seq, head_hash in heads:
            at = datetime.now(UTC).isoformat()
            sig = base64.b64encode(self._key.sign(_payload(seq, head_hash, at))).decode()
            lines.append(
                json.dumps(
                    {"seq": seq, "hash": head_hash, "at": at, "key_id": key_id, "sig": sig}, separators=(",", ":")
                )
                + "\n"
            )
        data = "".join(lines).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")

    def read(self, keep: int = CANDIDATES):
        """Return (the `keep` heads of highest seq, problems, notes, lines read), or None when
        there is no file. Read before the database, so that every head read belongs to an entry
        already committed.

        The file is streamed and only the newest heads are kept: a head signed at seq N vouches
        for entries 1..N through the hash chain, so older heads add nothing once the newest valid
        one agrees with the database: memory stays constant however long the log.
        """
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return None
        top: list[tuple[int, int, SignedHead]] = []  # a min-heap by (seq, line): the newest `keep`
        bad, notes, n = [], [], 0
        with f:
            for n, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    notes.append(
                        f"the last line of {self.path.name} is incomplete (a write was interrupted) and was ignored"
                    )
                    break
                try:
                    d = json.loads(raw)
                    h = SignedHead(
                        n, int(d["seq"]), str(d["hash"]), str(d["at"]), str(d.get("key_id", "")), str(d["sig"])
                    )
                except (ValueError, KeyError, TypeError):
                    bad.append(n)
                    continue
                item = (h.seq, n, h)
                if len(top) < keep:
                    heapq.heappush(top, item)
                elif item > top[0]:
                    heapq.heapreplace(top, item)
        problems = []
        if bad:
            shown = ", ".join(str(b) for b in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
            problems.append(f"line(s) {shown} of {self.path.name} are not signed heads: the file was altered")
        return [h for _, _, h in sorted(top, reverse=True)], problems, notes, n

    def check(self, snapshot, hashes: dict[int, str], last: int | None) -> HeadCheck:
        """Compare the heads read earlier (`snapshot`, from `read`) with the database's entries:
        its newest validly signed head must be there, with the same hash."""
        out = HeadCheck(self.path)
        if snapshot is None:
            if hashes:
                out.notes.append(
                    f"{self.path} does not exist: no head of this log is signed, so removing its "
                    "newest entries would not be detected (the file is written with the next entry)"
                )
                out.uncovered = len(hashes)
            return out
        heads, out.problems, out.notes = snapshot[0], list(snapshot[1]), list(snapshot[2])
        out.uncovered = len(hashes)
        if not heads:
            return out
        public = load_public(self.folder)
        if public is None:
            out.problems.append(
                f"the workspace key ({self.folder / 'keys'}) is missing: the signed heads in "
                f"{self.path.name} cannot be checked"
            )
            return out
        own_id = fingerprint(public)[:16]
        newest = None
        for h in heads:  # newest first
            if _valid(public, h):
                newest = h
                break
            by = f", signed by key {h.key_id}, not the workspace's {own_id}" if h.key_id != own_id else ""
            out.problems.append(
                f"line {h.line} of {self.path.name} (entry {h.seq}) does not carry a valid signature "
                f"of the workspace key{by}: it was forged or altered"
            )
        if newest is None:
            if len(heads) == CANDIDATES:
                out.problems.append(f"none of the {CANDIDATES} newest heads in {self.path.name} is validly signed")
            return out
        out.signed = newest
        end = last or 0
        if newest.seq > end:
            gone = f"entries {end + 1} to {newest.seq} were" if newest.seq > end + 1 else f"entry {newest.seq} was"
            ends = f"the log ends at entry {end}" if end else "the log is empty"
            out.problems.append(
                f"{gone} removed: {ends}, but entry {newest.seq} was signed as its head at "
                f"{newest.at} ({self.path.name}, line {newest.line})"
            )
        elif hashes.get(newest.seq) != newest.hash:
            out.problems.append(
                f"entry {newest.seq} is not the entry that was signed as the head at {newest.at} "
                f"({self.path.name}, line {newest.line}): the log was rewritten"
            )
        out.uncovered = max(0, end - newest.seq)
        return out


def _valid(public, h: SignedHead) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(base64.b64decode(h.sig, validate=True), _payload(h.seq, h.hash, h.at))
        return True
    except (InvalidSignature, ValueError):
        return False


def append_after_commit(session, head_log: HeadLog, seq: int, head_hash: str) -> None:
    """Have `head_log` sign (seq, hash) once `session`'s transaction commits; forget it on rollback.

    A failure to write the head is logged, not raised: the entry is committed by then, and the
    command that made it succeeded. Verification reports the entries no signed head covers.
    """
    from sqlalchemy import event

    pending = session.info.setdefault("facetrace_audit_heads", [])
    if not pending:

        def committed(s):
            heads = s.info.pop("facetrace_audit_heads", [])
            if heads:
                try:
                    head_log.append(heads)
                except (OSError, ValueError) as exc:
                    log.warning("could not sign the audit log's head into %s: %s", head_log.path, exc)

        def rolled_back(s):
            s.info.pop("facetrace_audit_heads", None)

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)
    pending.append((seq, head_hash))
