"""List and stream the members of a zip archive; nothing is extracted to disk."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from scanner.ingest.entries import Entry, SourceError, member_relpath
from scanner.models import Status

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_S_IFMT = 0o170000
_S_IFLNK = 0o120000


def iter_zip(source: str | BinaryIO, logical_prefix: str, rel_prefix: str) -> Iterator[Entry | SourceError]:
    """Yield one Entry per file member of the zip `source`, in central-directory order."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        yield SourceError(f"not a readable zip archive: {exc}")
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = decode_member_name(info)
            logical = f"{logical_prefix}!/{name}"
            rel = member_relpath(rel_prefix, name)
            mode = info.external_attr >> 16
            if (mode & _S_IFMT) == _S_IFLNK:
                yield Entry(logical, rel, info.file_size, status=Status.SKIPPED,
                            reason="symbolic link stored in the archive: not followed", mime="inode/symlink")
            elif info.flag_bits & _ENCRYPTED_FLAG:
                yield Entry(logical, rel, info.file_size, status=Status.SKIPPED,
                            reason="encrypted, not read (no password given)", mime="application/x-encrypted")
            else:
                yield Entry(logical, rel, info.file_size, open=_opener(zf, info))


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """Return a member's name, decoding legacy (non-UTF-8) names as UTF-8, then GB18030, then CP437.

    Zips made on Chinese Windows store names in GBK without the UTF-8 flag; zipfile then decodes
    them as CP437 and the names become mojibake. GB18030 is a superset of GBK.
    """
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    return lambda: zf.open(info)
