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
