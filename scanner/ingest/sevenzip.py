"""Stream the members of a 7z archive with py7zr, one at a time, without extracting to disk.

py7zr decompresses by pushing each member's bytes into writer objects. A background thread runs
that extraction into a small bounded queue, and the entries yielded here read from it: memory
stays at a few chunks whatever the archive's size, and a solid archive is decompressed once.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

from scanner.ingest.entries import Entry, SourceError, member_relpath, name_warning
from scanner.models import Status

_QUEUE_CHUNKS = 16
_START, _DATA, _END, _DONE, _ERROR = range(5)


class _Cancelled(Exception):
    pass


def iter_7z(
    source: str | BinaryIO, logical_prefix: str, rel_prefix: str, passwords: tuple[str, ...] = ()
) -> Iterator[Entry | SourceError]:
    """Yield one Entry per file member of a 7z archive, in archive order."""
    try:
        import py7zr
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        yield SourceError(f"7z support is not installed ({exc})")
        return
    archive, password, why = _open(py7zr, source, passwords)
    if archive is None:
        yield SourceError(why)
        return
    with archive:
        infos = [i for i in archive.list() if not i.is_directory]
        if archive.needs_password() and password is None:
            reason = (
                "encrypted, not read ("
                + ("no password given" if not passwords else f"none of the {len(passwords)} passwords opens it")
                + ")"
            )
            for info in infos:
                yield _entry(
                    info,
                    logical_prefix,
                    rel_prefix,
                    status=Status.SKIPPED,
                    reason=reason,
                    mime="application/x-encrypted",
                )
            return
        by_name = {i.filename: i for i in infos}
        yield from _stream(archive, by_name, logical_prefix, rel_prefix)


def _open(py7zr, source, passwords):
    """Return (archive, password that decrypts it or None, None), or (None, None, why not)."""
    bad = (
        py7zr.exceptions.Bad7zFile,
        py7zr.exceptions.UnsupportedCompressionMethodError,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        LZMAErrorType,
    )

    def attempt(pw):
        if hasattr(source, "seek"):
            source.seek(0)
        return py7zr.SevenZipFile(source, mode="r", password=pw)

    try:
        plain = attempt(None)
    except py7zr.exceptions.PasswordRequired:
        plain = None  # the names are encrypted too
    except bad as exc:
        return None, None, f"not a readable 7z archive: {exc}"
    if plain is not None and not plain.needs_password():
        return plain, None, None
    for pw in passwords:
        try:
            archive = attempt(pw)
        except (py7zr.exceptions.PasswordRequired, *bad):
            continue
        if _password_works(archive):
            if plain is not None:
                plain.close()
            return archive, pw, None
        archive.close()
    if plain is not None:
        return plain, None, None  # listed, each member "encrypted, not read"
    given = "no password given" if not passwords else f"none of the {len(passwords)} passwords opens it"
    return None, None, f"encrypted 7z archive whose member names are encrypted too: not read ({given})"


def _password_works(archive) -> bool:
    try:
        return archive.testzip() is None
    except Exception:  # noqa: BLE001 - py7zr raises various errors for a wrong password
        return False
    finally:
        try:
            archive.reset()
        except Exception:  # noqa: BLE001
            pass


def _entry(info, logical_prefix, rel_prefix, **kw) -> Entry:
    name = info.filename
    return Entry(
        f"{logical_prefix}!/{name}",
        member_relpath(rel_prefix, name),
        info.uncompressed,
        packed_size=info.compressed,
        note=name_warning(name),
        **kw,
    )


def _stream(archive, by_name, logical_prefix, rel_prefix) -> Iterator[Entry | SourceError]:
    from py7zr.io import Py7zIO, WriterFactory

    q: queue.Queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
    cancel = threading.Event()

    def put(item):
        while True:
            if cancel.is_set():
                raise _Cancelled
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    class Writer(Py7zIO):
        def __init__(self, name):
            self.name, self.length = name, 0
            put((_START, name))

        def write(self, s):
            if s:
                put((_DATA, bytes(s)))
                self.length += len(s)
            return len(s)

        def read(self, size=None):
            return b""

        def seek(self, offset, whence=0):
            return offset

        def flush(self):
            return None

        def size(self):
            return self.length

        def close(self):
            put((_END, self.name))

    class Factory(WriterFactory):
        def create(self, filename):
            return Writer(filename)

    def run():
        try:
            archive.extract(factory=Factory())
            put((_DONE, None))
        except _Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - reported as the archive's error
            try:
                put((_ERROR, f"{type(exc).__name__}: {exc}"))
            except _Cancelled:
                return

    worker = threading.Thread(target=run, name="7z-extract", daemon=True)
    worker.start()
    pending = None  # an item read ahead while skipping a member the consumer did not read to the end
    try:
        while True:
            kind, value = pending if pending is not None else q.get()
            pending = None
            if kind == _DONE:
                return
            if kind == _ERROR:
                yield SourceError(f"archive truncated or corrupt: {value}")
                return
            if kind != _START or value not in by_name:
                continue  # a directory, or data of a member already abandoned
            stream = _QueueStream(q)
            yield _entry(by_name[value], logical_prefix, rel_prefix, open=lambda s=stream: s)
            pending = stream.drain()
    finally:
        cancel.set()
        while worker.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()


class _QueueStream(io.RawIOBase):
    """One member's bytes, read from the extraction queue until its end marker."""

    def __init__(self, q: queue.Queue):
        self.q = q
        self.buf = bytearray()
        self.ended = False
        self.after = None  # an item beyond this member, when the queue skipped its end (an error)

    def readable(self):
        return True

    def read(self, size=-1):
        while not self.ended and (size is None or size < 0 or len(self.buf) < size):
            kind, value = self.q.get()
            if kind == _DATA:
                self.buf += value
            else:
                self.ended = True
                if kind != _END:
                    self.after = (kind, value)
        if size is None or size < 0:
            size = len(self.buf)
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def close(self):
        super().close()

    def drain(self):
        """Discard what the consumer left unread; return an item that belongs to what follows."""
        while not self.ended:
            kind, value = self.q.get()
            if kind != _DATA:
                self.ended = True
                if kind != _END:
                    self.after = (kind, value)
        self.buf = bytearray()
        return self.after


try:  # the LZMA module's error, which py7zr lets through on corrupt streams
    from lzma import LZMAError as LZMAErrorType
except ImportError:  # pragma: no cover
    LZMAErrorType = OSError
