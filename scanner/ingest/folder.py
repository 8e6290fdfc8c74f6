"""Walk a folder recursively, in a stable (sorted) order, without following links.

Links are reported, not followed: a link in a seized folder can point anywhere on the
investigator's machine, and a looping directory link would never end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from scanner.ingest.entries import Entry, SourceError
from scanner.models import Status


def iter_folder(top: str) -> Iterator[Entry | SourceError]:
    """Yield every file below `top` as an Entry, and listing failures as SourceError."""
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=errors.append, followlinks=False):
        while errors:
            err = errors.pop(0)
            yield SourceError(f"cannot list folder {err.filename}: {err.strerror}")
        dirnames.sort()
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                dirnames.remove(d)
                yield _link_entry(top, full)
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            yield _file_entry(top, full)
    for err in errors:
        yield SourceError(f"cannot list folder {err.filename}: {err.strerror}")


def file_entry(path: str, relpath: str) -> Entry:
    """Return the Entry for one file on disk given directly as input."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return Entry(path, relpath, None, status=Status.UNREADABLE, reason=f"cannot read: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Entry(
            path,
            relpath,
            None,
            status=Status.SKIPPED,
            reason="not a regular file (device, pipe or socket)",
            mime="inode/special",
        )
    return Entry(path, relpath, st.st_size, open=lambda: open(path, "rb"), disk_path=path)


def _file_entry(top: str, full: str) -> Entry:
    if os.path.islink(full):
        return _link_entry(top, full)
    return file_entry(full, _rel(top, full))


def _link_entry(top: str, full: str) -> Entry:
    try:
        target = os.readlink(full)
    except OSError:
        target = "?"
    return Entry(
        full,
        _rel(top, full),
        None,
        status=Status.SKIPPED,
        reason=f"symbolic link to {target!r}: not followed",
        mime="inode/symlink",
    )


def _rel(top: str, full: str) -> str:
    return os.path.relpath(full, top).replace(os.sep, "/")
