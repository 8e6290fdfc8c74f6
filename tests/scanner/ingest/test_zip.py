from __future__ import annotations

import io
import zipfile

from scanner.ingest.entries import Entry, SourceError
from scanner.ingest.zip import iter_zip
from scanner.models import Status


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def test_members_listed_and_streamed_in_order():
    blob = _zip({"a/1.txt": b"one", "a/2.txt": b"two"})
    entries, contents = [], []
    for entry in iter_zip(io.BytesIO(blob), "dump.zip", ""):  # members are read while the zip is open
        entries.append(entry)
        with entry.open() as f:
            contents.append(f.read())
    assert [e.logical_path for e in entries] == ["dump.zip!/a/1.txt", "dump.zip!/a/2.txt"]
    assert [e.relpath for e in entries] == ["a/1.txt", "a/2.txt"]
    assert contents == [b"one", b"two"]


def test_gbk_names_from_chinese_windows_are_decoded():
    name = "张三/照片01.jpg"
    raw = name.encode("gbk")
    placeholder = b"A" * len(raw)
    blob = _zip({placeholder.decode(): b"x"})
    blob = blob.replace(placeholder, raw)  # a legacy zip: GBK bytes, UTF-8 flag not set
    entries = list(iter_zip(io.BytesIO(blob), "d.zip", ""))
    assert entries[0].relpath == name
    assert entries[0].raw_name == raw  # the stored bytes are kept, for the record


def test_dangerous_names_are_noted_never_extracted():
    blob = _zip({"../../evil.txt": b"x", "/abs/evil2.txt": b"y", "fine/ok.txt": b"z"})
    notes = {e.relpath: e.note for e in iter_zip(io.BytesIO(blob), "d.zip", "")}
    assert "leaves the archive's folder" in notes["../../evil.txt"]
    assert "absolute member name" in notes["/abs/evil2.txt"] and notes["fine/ok.txt"] is None


def test_encrypted_member_is_listed_not_read():
    blob = bytearray(_zip({"secret.jpg": b"data"}))
    # set the "encrypted" general-purpose flag in the local header (offset 6) and central directory (offset 8)
    local = blob.find(b"PK\x03\x04")
    central = blob.find(b"PK\x01\x02")
    blob[local + 6] |= 1
    blob[central + 8] |= 1
    (entry,) = list(iter_zip(io.BytesIO(bytes(blob)), "d.zip", ""))
    assert isinstance(entry, Entry) and entry.status is Status.SKIPPED and "encrypted" in entry.reason


def test_not_a_zip_is_a_source_error():
    (err,) = list(iter_zip(io.BytesIO(b"PK\x03\x04 garbage"), "d.zip", ""))
    assert isinstance(err, SourceError) and "zip" in err.reason
