"""Formats beyond JPEG/PNG and zip/tar: 7z (plain, encrypted, encrypted names), HEIC, WebP, AVIF,
ZipCrypto zips with a password, and decompression-bomb limits, scanned from real photos."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import pytest

from tests.conftest import by_relpath, facedata_path, run_scan

pytestmark = pytest.mark.facedata


@pytest.fixture(scope="module")
def photos():
    return sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())


def _7z(path, files, **kw):
    import py7zr

    with py7zr.SevenZipFile(path, "w", **kw) as z:
        for name, src in files.items():
            z.write(src, name)
    return path


def test_7z_plain_and_encrypted_with_and_without_the_password(photos, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    _7z(dump / "kit.7z", {"kit/a.jpg": photos[0], "kit/b.jpg": photos[1]})
    _7z(dump / "locked.7z", {"locked/c.jpg": photos[2]}, password="s3cret")
    _7z(dump / "hidden.7z", {"hidden/d.jpg": photos[3]}, password="s3cret", header_encryption=True)
    _, results = run_scan([dump], tmp_path / "ws1", workers=1)
    r = by_relpath(results)
    assert r["kit.7z!/kit/a.jpg"].status.value == "ok" and len(r["kit.7z!/kit/a.jpg"].faces) == 1
    locked = r["locked.7z!/locked/c.jpg"]
    assert locked.status.value == "skipped" and locked.reason == "encrypted, not read (no password given)"
    assert r["hidden.7z"].status.value == "unreadable" and "names are encrypted too" in r["hidden.7z"].reason
    _, results = run_scan([dump], tmp_path / "ws2", workers=1, passwords=("wrong", "s3cret"))
    r = by_relpath(results)
    for rel in ("locked.7z!/locked/c.jpg", "hidden.7z!/hidden/d.jpg"):
        assert r[rel].status.value == "ok" and len(r[rel].faces) == 1, rel
    _, results = run_scan([dump], tmp_path / "ws3", workers=1, passwords=("wrong",))
    assert "none of the 1 passwords opens it" in by_relpath(results)["locked.7z!/locked/c.jpg"].reason


def test_truncated_7z_keeps_what_was_read_and_says_why(photos, tmp_path):
    whole = _7z(tmp_path / "whole.7z", {"a.txt": photos[0]}).read_bytes()
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "cut.7z").write_bytes(whole[: len(whole) // 2])
    _, results = run_scan([tmp_path / "dump"], tmp_path / "ws", workers=1)
    (cut,) = [r for r in results if r.member.relpath == "cut.7z"]
    assert cut.status.value == "unreadable" and cut.reason


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP's zip (to make a ZipCrypto zip) is not installed")
def test_zipcrypto_member_is_read_with_its_password(photos, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    shutil.copy(photos[4], tmp_path / "e.jpg")
    subprocess.run(["zip", "-q", "-P", "zpass", str(dump / "z.zip"), "e.jpg"], cwd=tmp_path, check=True)
    _, results = run_scan([dump], tmp_path / "ws1", workers=1)
    assert by_relpath(results)["z.zip!/e.jpg"].reason == "encrypted, not read (no password given)"
    _, results = run_scan([dump], tmp_path / "ws2", workers=1, passwords=("zpass",))
    r = by_relpath(results)["z.zip!/e.jpg"]
    assert r.status.value == "ok" and len(r.faces) == 1


def test_phone_and_web_formats_are_decoded(photos, tmp_path):
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    dump = tmp_path / "dump"
    dump.mkdir()
    image = Image.open(photos[0])
    image.save(dump / "phone.heic", quality=85)
    image.save(dump / "web.webp", quality=85)
    image.save(dump / "next.avif", quality=85)
    _, results = run_scan([dump], tmp_path / "ws", workers=1)
    r = by_relpath(results)
    for name, mime in (("phone.heic", "image/heic"), ("web.webp", "image/webp"), ("next.avif", "image/avif")):
        assert r[name].member.mime == mime and r[name].status.value == "ok" and len(r[name].faces) == 1, name


def test_zip_bomb_member_is_stopped_and_the_rest_of_the_archive_read(photos, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    with zipfile.ZipFile(dump / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(photos[0], "before.jpg")
        with z.open("zeros.bin", "w") as f:
            block = bytes(1 << 20)
            for _ in range(300):
                f.write(block)
        z.write(photos[1], "after.jpg")
    _, results = run_scan([dump], tmp_path / "ws", workers=1)
    r = by_relpath(results)
    assert (
        r["bomb.zip!/zeros.bin"].status.value == "skipped"
        and "possible decompression bomb" in r["bomb.zip!/zeros.bin"].reason
    )
    assert r["bomb.zip!/zeros.bin"].member.sha256 is None and r["bomb.zip!/zeros.bin"].member.size < 300 << 20
    assert r["bomb.zip!/before.jpg"].status.value == "ok" and r["bomb.zip!/after.jpg"].status.value == "ok"


def test_archive_budget_stops_a_nested_bomb(tmp_path):
    import os

    dump = tmp_path / "dump"
    dump.mkdir()
    with zipfile.ZipFile(dump / "nested.zip", "w") as z:
        for i in range(8):
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as iz:
                iz.writestr("payload.bin", os.urandom(4 << 20))
            z.writestr(f"part{i}.zip", inner.getvalue())
    # nested.zip is 32 MiB and some headers; at a ratio of 1 it may expand to that in all, and
    # each part costs 8 MiB (the inner zip's bytes, then its member's): four parts fit

    _, results = run_scan([dump], tmp_path / "ws", workers=1, min_archive_budget=1 << 20, max_expansion_ratio=1)
    r = by_relpath(results)
    ok = sorted(k for k, v in r.items() if k.endswith("payload.bin") and v.status.value == "ok")
    assert ok == [f"nested.zip!/part{i}.zip!/payload.bin" for i in range(4)]
    stopped = {k: v.reason for k, v in r.items() if k != "nested.zip" and v.status.value == "skipped"}
    assert stopped and all("possible decompression bomb: the archive expanded past" in why for why in stopped.values())
    assert all(f"nested.zip!/part{i}.zip" in r or f"nested.zip!/part{i}.zip!/payload.bin" in r for i in range(8))
    assert "the members after that point were listed, not read" in r["nested.zip"].reason
