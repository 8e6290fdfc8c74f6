"""Stream the members of a tar archive (plain, gzip, bzip2 or xz), in order, without extracting."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from scanner.ingest.entries import Entry, SourceError, member_relpath, name_warning, raw_bytes
from scanner.models import Status

_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError)


def iter_tar(fileobj: BinaryIO, logical_prefix: str, rel_prefix: str) -> Iterator[Entry | SourceError]:
    """Yield one Entry per member; each must be read before the next is requested (stream mode)."""
    count = 0
    try:
        tf = tarfile.open(fileobj=fileobj, mode="r|*")
    except _READ_ERRORS as exc:
        yield SourceError(f"not a readable tar archive: {exc}")
        return
    try:
        with tf:
            for ti in tf:
                count += 1
                logical = f"{logical_prefix}!/{ti.name}"
                rel = member_relpath(rel_prefix, ti.name)
                if ti.isdir():
                    continue
                raw = raw_bytes(ti.name)  # a name that is not UTF-8 (tarfile's surrogate escapes): its bytes
                if ti.issym():
                    yield Entry(
                        logical,
                        rel,
                        None,
                        status=Status.SKIPPED,
                        reason=f"symbolic link to {ti.linkname!r}: not followed",
                        mime="inode/symlink",
                        raw_name=raw,
                    )
                elif ti.islnk():
                    yield Entry(
                        logical,
                        rel,
                        None,
                        status=Status.SKIPPED,
                        reason=f"hard link to {ti.linkname!r}: not followed",
                        mime="inode/hardlink",
                        raw_name=raw,
                    )
                elif not ti.isreg():
                    yield Entry(
                        logical,
                        rel,
                        None,
                        status=Status.SKIPPED,
                        reason="special file (device or pipe): not read",
                        mime="inode/special",
                        raw_name=raw,
                    )
                else:
                    yield Entry(logical, rel, ti.size, open=_opener(tf, ti), note=name_warning(ti.name), raw_name=raw)
    except _READ_ERRORS as exc:
        yield SourceError(f"archive truncated or corrupt after {count} members: {exc}")


def _opener(tf: tarfile.TarFile, ti: tarfile.TarInfo):
    return lambda: tf.extractfile(ti)
