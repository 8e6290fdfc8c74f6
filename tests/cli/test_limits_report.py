"""Issue 19 item 16: an archive capped as a decompression bomb is a result, not "nothing could be
read", and the summary does not repeat the attacker's expanded sizes; a full disk says so, in one
line, instead of a traceback or "check permissions"."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zipfile

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _overlapping_zip(path, entries: int = 2000, size: int = 64 << 20) -> None:
    """One deflated member of `size` zero bytes whose central-directory record is repeated `entries`
    times: every entry points at the same compressed data (about 65 KB for 64 MiB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.bin", b"\0" * size)
    data = buf.getvalue()
    eocd = data.rfind(b"PK\x05\x06")
    cd_off = struct.unpack("<I", data[eocd + 16 : eocd + 20])[0]
    cd, local = data[cd_off:eocd] * entries, data[:cd_off]
    end = bytearray(data[eocd : eocd + 22])
    end[8:12] = struct.pack("<HH", entries, entries)
    end[12:20] = struct.pack("<II", len(cd), len(local))
    path.write_bytes(local + cd + bytes(end))


def test_an_archive_capped_as_a_bomb_is_a_result(tmp_path):
    kit = tmp_path / "overlap.zip"
    _overlapping_zip(kit)
    result = _run("scan", "--workspace", tmp_path / "ws", "--workers", "1", kit)
    assert result.exit_code == 0, result.output
    assert "nothing could be read" not in result.output
    files_line = next(line for line in result.output.splitlines() if line.strip().startswith("files"))
    assert "(0 bytes)" in files_line  # not 1,163,575,296: nothing was read whole but the zip itself
    assert "possible decompression bomb" in result.output and "bombs       " in result.output


def test_nothing_readable_still_exits_1(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    result = _run("scan", "--workspace", tmp_path / "ws", "--workers", "1", empty)
    assert result.exit_code == 1 and "nothing could be read" in result.output


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB tmpfs (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_says_so(tmp_path, tiny_disk):
    lfw = facedata_path("lfw_deepfunneled")
    dump = tmp_path / "dump"
    dump.mkdir()
    for person in sorted(p for p in lfw.iterdir() if p.is_dir())[:60]:
        for photo in person.iterdir():
            shutil.copyfile(photo, dump / photo.name)
    result = _run("scan", "--workspace", tiny_disk / "ws", "--workers", "1", dump)  # fills the disk mid-scan
    assert result.exit_code == 3, result.output
    assert "the disk is full" in result.output and "Traceback" not in result.output
    fd = os.open(tiny_disk / "fill", os.O_WRONLY | os.O_CREAT)  # whatever space is left
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    again = _run("scan", "--workspace", tiny_disk / "ws2", "--workers", "1", dump)
    assert again.exit_code == 3 and "is full" in again.output and "permissions" not in again.output
