"""List and stream the members of a zip archive; nothing is extracted to disk."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from scanner.ingest.entries import Entry, SourceError, display_name, member_relpath, name_warning
from scanner.models import Status

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_S_IFMT = 0o170000
_S_IFLNK = 0o120000


def iter_zip(
    source: str | BinaryIO, logical_prefix: str, rel_prefix: str, passwords: tuple[str, ...] = ()
) -> Iterator[Entry | SourceError]:
    """Yield one Entry per file member of the zip `source`, in central-directory order.

    Encrypted members are read with the first of `passwords` that opens them (ZipCrypto; AES
    zips are listed as such), else listed as "encrypted, not read".
    """
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
            extra = {
                "packed_size": info.compress_size,
                "note": name_warning(name),
                "raw_name": None if info.flag_bits & _UTF8_FLAG or name == info.filename else _raw_name(info),
            }
            mode = info.external_attr >> 16
            if (mode & _S_IFMT) == _S_IFLNK:
                yield Entry(
                    logical,
                    rel,
                    info.file_size,
                    status=Status.SKIPPED,
                    reason="symbolic link stored in the archive: not followed",
                    mime="inode/symlink",
                    **extra,
                )
            elif info.flag_bits & _ENCRYPTED_FLAG:
                if info.compress_type == _AES:
                    yield Entry(
                        logical,
                        rel,
                        info.file_size,
                        status=Status.SKIPPED,
                        mime="application/x-encrypted",
                        reason="encrypted with AES, not read (this version reads ZipCrypto zips only)",
                        **extra,
                    )
                    continue
                pwd = _password_for(zf, info, passwords)
                if pwd is None:
                    why = "no password given" if not passwords else f"none of the {len(passwords)} passwords opens it"
                    yield Entry(
                        logical,
                        rel,
                        info.file_size,
                        status=Status.SKIPPED,
                        reason=f"encrypted, not read ({why})",
                        mime="application/x-encrypted",
                        **extra,
                    )
                else:
                    yield Entry(logical, rel, info.file_size, open=_opener(zf, info, pwd), **extra)
            else:
                yield Entry(logical, rel, info.file_size, open=_opener(zf, info), **extra)


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """Return a member's name, decoding legacy (non-UTF-8) names as UTF-8, then as the CJK
    encoding that fits (entries.display_name: GB18030, Big5, Shift-JIS), then CP437.

    Zips made on Chinese Windows store names in GBK without the UTF-8 flag; zipfile then decodes
    them as CP437 and the names become mojibake. GB18030 is a superset of GBK.
    """
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    text = display_name(raw)
    return info.filename if text == raw.decode("utf-8", "backslashreplace") and not raw.isascii() else text


_AES = 99  # the WinZip AES "compression method"


def _raw_name(info: zipfile.ZipInfo) -> bytes | None:
    try:
        return info.filename.encode("cp437")
    except UnicodeEncodeError:
        return None


def _password_for(zf: zipfile.ZipFile, info: zipfile.ZipInfo, passwords: tuple[str, ...]) -> bytes | None:
    for pw in passwords:
        pwd = pw.encode("utf-8")
        try:
            with zf.open(info, pwd=pwd) as f:
                f.read(1)  # ZipCrypto checks a one-byte verifier: a wrong password fails here
            return pwd
        except (RuntimeError, zipfile.BadZipFile, zlib.error, ValueError):
            continue
    return None


def _opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo, pwd: bytes | None = None):
    return lambda: zf.open(info, pwd=pwd)
