"""The unit every ingest source yields: one file-like entry, not yet read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from scanner.models import Status


@dataclass
class Entry:
    """One file of a folder or archive, opened only when the reader gets to it."""

    logical_path: str
    relpath: str
    size: int | None  # declared size (stat, archive header); None when unknown
    open: Callable[[], BinaryIO] | None = None  # None when the entry cannot or must not be read
    disk_path: str | None = None  # set for files on disk, so archives can be opened in place
    status: Status | None = None  # preset for entries refused before reading (links, encrypted)
    reason: str | None = None
    mime: str = ""  # preset type for refused entries (inode/symlink, ...)
    packed_size: int | None = None  # compressed size in the archive, when the format says (zip, 7z)
    raw_name: bytes | None = None  # the name's bytes as stored, when it was decoded from a legacy encoding
    note: str | None = None  # something odd about the entry that does not stop it being read


@dataclass
class SourceError:
    """A failure of a container itself (a folder that cannot be listed, a truncated archive)."""

    reason: str


# File names that are not UTF-8 (a Chinese archive unpacked on Linux, a GNU tar made on Windows, a
# folder copied from an old drive) arrive from os and tarfile as lone surrogates ("surrogateescape").
# They cannot be stored, printed or put in JSON as they are: every name is made displayable once,
# where an entry enters the reader, and its bytes are kept (Member.raw_name, hex).
LEGACY_ENCODINGS = ("gb18030", "big5", "shift_jis")  # GB18030 is a superset of GBK and GB2312
COMMON_SHARE = 0.5  # a legacy decoding is believed only if at least this share of its characters is common


def display_name(raw: bytes) -> str:
    """A displayable name for a file name's (or path's) bytes, one "/"-separated part at a time
    (a folder copied from one machine can hold names from another): UTF-8, else the legacy CJK
    encoding whose decoding holds the most common characters (GB2312's for GB18030, Big5's
    frequent set, JIS level 1 and kana for Shift-JIS; ties in that order), else the bytes escaped
    as \\xNN. No byte of a Big5, Shift-JIS or GB18030 character is "/"."""
    if b"/" in raw:
        return "/".join(display_name(part) for part in raw.split(b"/"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best: tuple[float, str] | None = None
    for encoding in LEGACY_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        share = _common_share(text, encoding)
        if best is None or share > best[0]:
            best = (share, text)
    if best is not None and best[0] >= COMMON_SHARE and best[1].isprintable():
        return best[1]
    return raw.decode("utf-8", "backslashreplace")


def _common_share(text: str, encoding: str) -> float:
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return 1.0
    return sum(_common(c, encoding) for c in wide) / len(wide)


def _common(c: str, encoding: str) -> bool:
    if 0x3000 <= ord(c) <= 0x303F or 0xFF00 <= ord(c) <= 0xFFEF:  # CJK punctuation, full-width forms
        return True
    try:
        if encoding == "gb18030":
            c.encode("gb2312")  # the 6,763 common simplified characters (and symbols)
            return True
        code = int.from_bytes(c.encode(encoding), "big")
    except UnicodeEncodeError:
        return False
    if encoding == "big5":
        return 0xA440 <= code <= 0xC67E  # Big5's frequently used characters
    return 0x3040 <= ord(c) <= 0x30FF or 0x889F <= code <= 0x9872  # kana, JIS level 1 kanji


def clean_text(text: str) -> str:
    """`text` as valid Unicode: a string holding surrogate escapes of undecodable bytes (a file
    name from os or tarfile) is decoded again by `display_name`."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return (
            display_name(text.encode("utf-8", "surrogateescape"))
            if _escaped_only(text)
            else text.encode("utf-8", "backslashreplace").decode("ascii")
        )


def raw_bytes(text: str) -> bytes | None:
    """The bytes behind a name holding surrogate escapes, or None when it is valid Unicode."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape") if _escaped_only(text) else text.encode("utf-8", "surrogatepass")


def _escaped_only(text: str) -> bool:
    """Whether every surrogate in `text` is a surrogateescape (U+DC80 to U+DCFF), not a lone UTF-16 half."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def member_relpath(rel_prefix: str, name: str) -> str:
    """Return the relative path of archive member `name`, written as a folder of it would be.

    "./a.jpg" (tar's habit) and "a.jpg" must compare equal, so a folder, a zip and a tar.gz of
    the same files give the same relative paths. The logical path keeps the raw name.
    """
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return rel_prefix + name


def name_warning(name: str) -> str | None:
    """Say why an archive member's name would be dangerous to extract (nothing is extracted)."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":" and text[0].isalpha()):
        return "absolute member name: read in place, nothing extracted"
    if ".." in text.split("/"):
        return "member name leaves the archive's folder ('..'): read in place, nothing extracted"
    return None
