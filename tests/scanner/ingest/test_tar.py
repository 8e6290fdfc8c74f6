from __future__ import annotations

import io
import tarfile

from scanner.ingest.entries import Entry
from scanner.ingest.tar import iter_tar
from scanner.models import Status


def _tar(mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, blob in [("./p/1.txt", b"one" * 1000), ("./p/2.txt", b"two" * 1000)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(blob)
            tf.addfile(ti, io.BytesIO(blob))
        link = tarfile.TarInfo("./p/evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
        hard = tarfile.TarInfo("./p/hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "../../outside"
        tf.addfile(hard)
    return buf.getvalue()


def _read_all(blob: bytes):
    out = []
    for item in iter_tar(io.BytesIO(blob), "d.tgz", ""):
        if isinstance(item, Entry) and item.open is not None:
            with item.open() as f:
                out.append((item, f.read()))
        else:
            out.append((item, None))
    return out


def test_members_streamed_links_refused():
    items = _read_all(_tar())
    entries = [i for i, _ in items]
    assert [e.relpath for e in entries] == ["p/1.txt", "p/2.txt", "p/evil", "p/hard"]
    assert entries[0].logical_path == "d.tgz!/./p/1.txt"
    assert items[1][1] == b"two" * 1000
    assert entries[2].status is Status.SKIPPED and "symbolic link" in entries[2].reason
    assert entries[3].status is Status.SKIPPED and "hard link" in entries[3].reason
