"""Turn inputs (files, folders, archives, archives inside archives) into a stream of read members.

Each member's bytes are streamed once: SHA-256 and the content type are computed on the way, and
the bytes are kept in memory only when a later stage needs them (an image to decode, an archive
nested in an archive) and only up to `max_member_bytes`. Archives on disk are opened in place.
An archive's own record follows its members, so it can say whether it was read to the end.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

from scanner.ingest.entries import Entry, SourceError, clean_text, raw_bytes
from scanner.ingest.folder import file_entry, iter_folder
from scanner.ingest.sevenzip import iter_7z
from scanner.ingest.tar import iter_tar
from scanner.ingest.zip import iter_zip
from scanner.media.sniff import HEADER_BYTES, claims_image, content_hint, sniff
from scanner.models import BOMB_REASON, Kind, Member, ScanOptions, Status

CHUNK = 1 << 20
_READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, ValueError, RuntimeError)


@dataclass
class ReadMember:
    """A member whose bytes were read: its identity, its bytes if needed later, and any verdict."""

    member: Member
    data: bytes | None = None
    path: str | None = None  # a video on disk: analysed from its file, never read into memory
    note: str | None = None  # something odd about the member that did not stop it being read
    status: Status | None = None  # None: to be analysed; else final (skipped, unreadable, ok)
    reason: str | None = None


class MemberReader:
    """Read every member of the given inputs, in a stable order."""

    def __init__(self, options: ScanOptions):
        self.options = options
        self._seq = itertools.count()
        self._budget: _Budget | None = None  # bytes the outermost archive being read may still expand to

    def read(self, inputs: list[str]) -> Iterator[ReadMember]:
        for path in inputs:
            yield from self.read_input(path)

    def read_input(self, path: str) -> Iterator[ReadMember]:
        if os.path.isdir(path):
            yield from self._read_folder(path)
        elif not os.path.lexists(path):
            yield self._refused(
                Entry(path, os.path.basename(path), None, status=Status.UNREADABLE, reason="no such file or directory")
            )
        else:
            # a plain file or an archive given directly: its members get relpaths without prefix
            yield from self._read_entry(file_entry(path, os.path.basename(path)), depth=0, top_level=True)

    # -- internals -----------------------------------------------------------------------------

    def _read_folder(self, path: str) -> Iterator[ReadMember]:
        for item in iter_folder(path):
            if isinstance(item, SourceError):
                yield self._refused(Entry(path, "", None, status=Status.UNREADABLE, reason=item.reason))
            else:
                yield from self._read_entry(item, depth=0)

    def _refused(self, entry: Entry) -> ReadMember:
        entry = _displayable(entry)
        member = Member(
            next(self._seq),
            entry.logical_path,
            entry.relpath,
            entry.size or 0,
            None,
            entry.mime or "",
            Kind.OTHER,
            _hex(entry.raw_name),
        )
        return ReadMember(member, status=entry.status, reason=_join(entry.note, entry.reason))

    def _read_entry(self, entry: Entry, depth: int, top_level: bool = False) -> Iterator[ReadMember]:
        entry = _displayable(entry)
        if entry.status is not None or entry.open is None:
            yield self._refused(entry)
            return
        opts = self.options
        budget = self._budget if entry.disk_path is None else None
        if budget is not None and budget.spent_out:
            yield self._bomb(entry, 0, "", Kind.OTHER, budget.reason(opts) + "; not read")
            return
        digest = hashlib.sha256()
        kept: list[bytes] | None = []
        size = 0
        mime, kind = "", Kind.OTHER
        ratio_limit = None
        if entry.packed_size is not None and budget is not None:
            ratio_limit = max(BOMB_MIN_BYTES, opts.max_expansion_ratio * entry.packed_size)
        bomb = None
        try:
            with entry.open() as stream:
                header = stream.read(HEADER_BYTES)
                mime, kind = sniff(header)
                on_disk = entry.disk_path is not None and kind in (Kind.ARCHIVE, Kind.VIDEO)
                if kind not in (Kind.IMAGE, Kind.ARCHIVE, Kind.VIDEO) or on_disk:
                    kept = None
                chunk = header
                while chunk:
                    digest.update(chunk)
                    size += len(chunk)
                    if ratio_limit is not None and size > ratio_limit:
                        bomb = (
                            f"{BOMB_REASON}: expanded more than {opts.max_expansion_ratio}x its "
                            f"compressed size of {entry.packed_size} bytes; read stopped after {size} bytes"
                        )
                        break
                    if budget is not None and not budget.spend(len(chunk)):
                        bomb = f"{budget.reason(opts)}; read stopped after {size} bytes of this member"
                        break
                    if kept is not None:
                        if size > opts.max_member_bytes:
                            kept = None
                        else:
                            kept.append(chunk)
                    chunk = stream.read(CHUNK)
        except _READ_ERRORS as exc:
            member = Member(
                next(self._seq),
                entry.logical_path,
                entry.relpath,
                entry.size or size,
                None,
                mime or "application/octet-stream",
                kind,
                _hex(entry.raw_name),
            )
            yield ReadMember(
                member,
                status=Status.UNREADABLE,
                reason=_join(entry.note, f"read failed after {size} bytes: {_describe(exc)}"),
            )
            return
        if bomb is not None:
            yield self._bomb(entry, size, mime, kind, bomb)
            return
        data = b"".join(kept) if kept is not None else None
        sha = digest.hexdigest()

        if kind is Kind.ARCHIVE:
            yield from self._read_archive(entry, size, sha, mime, data, depth, top_level)
            return
        hint = content_hint(entry.relpath, header, mime) if kind is Kind.OTHER and size else None
        member = Member(
            next(self._seq), entry.logical_path, entry.relpath, size, sha, mime, kind, _hex(entry.raw_name), hint
        )
        for read in self._classify(entry, member, data):
            read.note = entry.note
            if read.status is not None:
                read.reason = _join(entry.note, read.reason)
            yield read

    def _bomb(self, entry: Entry, size: int, mime: str, kind: Kind, reason: str) -> ReadMember:
        member = Member(
            next(self._seq),
            entry.logical_path,
            entry.relpath,
            size,
            None,
            mime or "application/octet-stream",
            kind,
            _hex(entry.raw_name),
        )
        return ReadMember(member, status=Status.SKIPPED, reason=_join(entry.note, reason))

    def _classify(self, entry: Entry, member: Member, data: bytes | None) -> Iterator[ReadMember]:
        opts = self.options
        kind, mime, size = member.kind, member.mime, member.size
        if kind is Kind.IMAGE:
            if data is None:
                yield ReadMember(
                    member,
                    status=Status.SKIPPED,
                    reason=f"{size} bytes, over the {opts.max_member_bytes}-byte limit for decoding",
                )
            else:
                yield ReadMember(member, data=data)
        elif kind is Kind.VIDEO:
            if entry.disk_path is not None:
                yield ReadMember(member, path=entry.disk_path)
            elif data is None:
                yield ReadMember(
                    member,
                    status=Status.SKIPPED,
                    reason=f"video of {size} bytes in an archive, over the {opts.max_member_bytes}-byte "
                    "limit for decoding: SHA-256 recorded",
                )
            else:
                yield ReadMember(member, data=data)
        elif mime.startswith("image/"):
            yield ReadMember(
                member,
                status=Status.SKIPPED,
                reason=f"image format {mime} is not decoded by this version; SHA-256 recorded",
            )
        elif claims_image(entry.relpath):
            what = "an empty file" if size == 0 else mime
            yield ReadMember(
                member, status=Status.UNREADABLE, reason=f"named as an image but the content is {what}, not an image"
            )
        else:
            yield ReadMember(member, status=Status.OK)

    def _read_archive(
        self, entry: Entry, size: int, sha: str, mime: str, data: bytes | None, depth: int, top_level: bool
    ) -> Iterator[ReadMember]:
        outermost = self._budget is None
        if outermost:
            self._budget = _Budget(max(self.options.min_archive_budget, self.options.max_expansion_ratio * size))
        try:
            yield from self._read_archive_members(entry, size, sha, mime, data, depth, top_level)
        finally:
            if outermost:
                self._budget = None

    def _read_archive_members(
        self, entry: Entry, size: int, sha: str, mime: str, data: bytes | None, depth: int, top_level: bool
    ) -> Iterator[ReadMember]:
        opts = self.options
        archive = Member(-1, entry.logical_path, entry.relpath, size, sha, mime, Kind.ARCHIVE, _hex(entry.raw_name))
        if depth >= opts.max_archive_depth:
            yield self._final(
                archive,
                Status.SKIPPED,
                f"archive nested more than {opts.max_archive_depth} levels deep: listed, not opened",
            )
            return
        if entry.disk_path is None and data is None:
            yield self._final(
                archive,
                Status.SKIPPED,
                f"nested archive of {size} bytes, over the {opts.max_member_bytes}-byte limit: not opened",
            )
            return
        rel_prefix = "" if top_level else f"{entry.relpath}!/"
        errors: list[str] = []
        opened = open(entry.disk_path, "rb") if data is None else io.BytesIO(data)
        with opened as fileobj:
            if mime == "application/zip":
                children = iter_zip(fileobj, entry.logical_path, rel_prefix, opts.passwords)
            elif mime == "application/x-7z-compressed":
                children = iter_7z(fileobj, entry.logical_path, rel_prefix, opts.passwords)
            else:
                children = iter_tar(fileobj, entry.logical_path, rel_prefix)
            for item in children:
                if isinstance(item, SourceError):
                    errors.append(item.reason)
                    continue
                yield from self._read_entry(item, depth + 1)
        budget = self._budget
        if budget is not None and budget.spent_out and budget.blamed is None:
            budget.blamed = entry.logical_path
            errors.append(budget.reason(opts) + "; the members after that point were listed, not read")
        if errors:
            yield self._final(archive, Status.UNREADABLE, _join(entry.note, "; ".join(errors)))
        else:
            yield self._final(archive, Status.OK, entry.note)

    def _final(self, member: Member, status: Status, reason: str | None) -> ReadMember:
        m = Member(
            next(self._seq),
            member.logical_path,
            member.relpath,
            member.size,
            member.sha256,
            member.mime,
            member.kind,
            member.raw_name,
        )
        return ReadMember(m, status=status, reason=reason)


def _displayable(entry: Entry) -> Entry:
    """The entry with names and reasons that any store, terminal or document takes: a name that
    is not UTF-8 is decoded for display (entries.display_name) and its bytes kept as raw_name
    (the relative path's bytes, unless the archive reader already kept the member name's).
    `disk_path` keeps the original, to open the file."""
    names = (entry.logical_path, entry.relpath, entry.reason or "", entry.note or "")
    if all(clean_text(t) is t for t in names):
        return entry
    return replace(
        entry,
        logical_path=clean_text(entry.logical_path),
        relpath=clean_text(entry.relpath),
        reason=None if entry.reason is None else clean_text(entry.reason),
        note=None if entry.note is None else clean_text(entry.note),
        raw_name=entry.raw_name if entry.raw_name is not None else raw_bytes(entry.relpath),
    )


BOMB_MIN_BYTES = 1 << 20  # below this, a member is never called a bomb, whatever its ratio


class _Budget:
    """Bytes that the outermost archive being read (and every archive inside it) may expand to."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.spent_out = False
        self.blamed: str | None = None

    def spend(self, n: int) -> bool:
        self.used += n
        if self.used > self.limit:
            self.spent_out = True
        return not self.spent_out

    def reason(self, opts: ScanOptions) -> str:
        return (
            f"{BOMB_REASON}: the archive expanded past {self.limit} bytes "
            f"(max({opts.max_expansion_ratio}x its size, {opts.min_archive_budget} bytes))"
        )


def _hex(raw: bytes | None) -> str | None:
    return None if raw is None else raw.hex()


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text
