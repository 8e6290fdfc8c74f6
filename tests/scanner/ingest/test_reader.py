from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile

from scanner.ingest import MemberReader
from scanner.models import Kind, ScanOptions, Status


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, blob in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(blob)
            tf.addfile(ti, io.BytesIO(blob))
    return buf.getvalue()


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def _read(paths, **opts):
    return list(MemberReader(ScanOptions(**opts)).read([str(p) for p in paths]))


def test_sha256_and_type_of_every_member(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    out = {r.member.relpath: r for r in _read([tmp_path])}
    assert out["a.txt"].member.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert out["a.txt"].member.mime == "text/plain" and out["a.txt"].status is Status.OK
    assert out["empty.jpg"].status is Status.UNREADABLE and "empty file" in out["empty.jpg"].reason


def test_nested_archives_get_chained_paths(tmp_path):
    inner = _zip_bytes({"deep/x.txt": b"x"})
    outer = _tar_bytes({"inner.zip": inner, "y.txt": b"y"})
    (tmp_path / "outer.tar.gz").write_bytes(gzip.compress(outer))
    out = _read([tmp_path / "outer.tar.gz"])
    paths = [r.member.logical_path for r in out]
    base = str(tmp_path / "outer.tar.gz")
    assert paths == [f"{base}!/inner.zip!/deep/x.txt", f"{base}!/inner.zip", f"{base}!/y.txt", base]
    assert [r.member.relpath for r in out][:3] == ["inner.zip!/deep/x.txt", "inner.zip", "y.txt"]
    assert out[1].member.kind is Kind.ARCHIVE and out[-1].status is Status.OK


def test_archive_depth_limit(tmp_path):
    blob = b"core"
    for level in range(3):
        blob = _zip_bytes({f"level{level}.zip" if level else "core.txt": blob})
    (tmp_path / "nest.zip").write_bytes(blob)
    out = _read([tmp_path / "nest.zip"], max_archive_depth=1)
    skipped = [r for r in out if r.status is Status.SKIPPED]
    assert len(skipped) == 1 and "nested more than 1" in skipped[0].reason
    assert not any(r.member.relpath.endswith("core.txt") for r in out)


def test_truncated_tar_gz_keeps_earlier_members_and_flags_the_archive(tmp_path):
    blob = gzip.compress(_tar_bytes({"a.txt": b"a" * 5000, "b.bin": bytes(range(256)) * 400}))
    (tmp_path / "cut.tgz").write_bytes(blob[: len(blob) // 2])
    out = _read([tmp_path / "cut.tgz"])
    by = {r.member.relpath: r for r in out}
    assert by["a.txt"].status is Status.OK
    archive = out[-1]
    assert archive.member.kind is Kind.ARCHIVE and archive.status is Status.UNREADABLE
    assert "truncated" in archive.reason or "truncated" in (by.get("b.bin").reason or "")


def test_oversized_image_is_hashed_not_decoded(tmp_path):
    from PIL import Image

    Image.new("RGB", (300, 300), "red").save(tmp_path / "big.png")
    (r,) = _read([tmp_path / "big.png"], max_member_bytes=100)
    assert r.status is Status.SKIPPED and "limit" in r.reason and r.member.sha256 and r.data is None


def test_missing_input_is_recorded(tmp_path):
    (r,) = _read([tmp_path / "nope"])
    assert r.status is Status.UNREADABLE and "no such file" in r.reason
