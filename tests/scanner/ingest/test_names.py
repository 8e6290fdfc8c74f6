"""File names that are not UTF-8 (issue 19 item 1): a Chinese archive unpacked on Linux, a GNU tar
made on Windows. Before the fix, one such name killed the whole scan (`UnicodeEncodeError ...
surrogates not allowed`, exit 1, the scan left `running`) on the CLI and through POST /v1/screen."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile

import pytest
import requests
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path

GBK = "人脸.jpg".encode("gbk")  # b"\xc8\xcb\xc1\xb3.jpg"
NAMES = {  # raw bytes -> the name shown
    GBK: "人脸.jpg",
    "张伟_照片01.jpg".encode("gbk"): "张伟_照片01.jpg",
    "臉部照片.jpg".encode("big5"): "臉部照片.jpg",
    "顔写真.jpg".encode("shift_jis"): "顔写真.jpg",
    b"\xff\xfe\x80.jpg": "\\xff\\xfe\\x80.jpg",  # no encoding fits: the bytes, escaped
}


@pytest.mark.parametrize("raw, shown", list(NAMES.items()))
def test_legacy_names_are_decoded_for_display(raw, shown):
    from scanner.ingest.entries import display_name

    assert display_name(raw) == shown


def _face_photo() -> bytes:
    lfw = facedata_path("lfw_deepfunneled")
    person = next(p for p in sorted(lfw.iterdir()) if p.is_dir())
    return next(iter(sorted(person.iterdir()))).read_bytes()


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _gnu_tar(members: dict[bytes, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tf:
        for raw, blob in members.items():
            ti = tarfile.TarInfo(os.fsdecode(raw))  # surrogate escapes: the bytes are written as they are
            ti.size = len(blob)
            tf.addfile(ti, io.BytesIO(blob))
    return buf.getvalue()


def test_a_folder_and_a_tar_with_legacy_names_scan_to_the_end(tmp_path):
    photo = _face_photo()
    dump = os.fsencode(tmp_path / "dump")
    os.mkdir(dump)
    folder = os.path.join(dump, "相册".encode("gbk"))  # a folder name that is not UTF-8 either
    os.mkdir(folder)
    for raw in NAMES:
        with open(os.path.join(folder, raw), "wb") as fh:
            fh.write(photo)
    with open(os.path.join(dump, b"kit.tar"), "wb") as fh:
        fh.write(_gnu_tar({b"p/" + GBK: photo + b"\0"}))
    ws = tmp_path / "ws"
    result = _run("scan", "--json", "--workspace", ws, "--workers", "1", os.fsdecode(dump))
    assert result.exit_code == 0, result.output
    rows = {r["relpath"]: r for r in map(json.loads, result.stdout.splitlines()) if "relpath" in r}
    for raw, shown in NAMES.items():
        row = rows[f"相册/{shown}"]
        assert row["raw_name"] == ("相册".encode("gbk") + b"/" + raw).hex()
        assert row["status"] in ("ok", "duplicate") and (row["status"] == "duplicate" or len(row["faces"]) == 1)
    member = rows["kit.tar!/p/人脸.jpg"]
    assert member["raw_name"] == (b"p/" + GBK).hex() and len(member["faces"]) == 1
    from scanner.pipeline import open_store

    store, _root = open_store(str(ws))
    assert store.list_scans()[-1]["status"] == "finished"
    store.close()
    out = _run("report", "--workspace", ws, "--out", tmp_path / "report")
    assert out.exit_code == 0, out.output
    for name in ("report.json", "report.html", "manifest.txt"):
        assert "人脸.jpg" in (tmp_path / "report" / name).read_text(encoding="utf-8")
    verified = _run("report", "verify", tmp_path / "report" / "report.json", "--dump", os.fsdecode(dump))
    assert verified.exit_code == 0, verified.output


def test_the_service_screens_a_tar_with_legacy_names(tmp_path):
    from api.app import create_app
    from tests.api.server import LiveServer

    app = create_app(str(tmp_path / "ws"))
    key = app.state.service.keys.create_key("platform", "test platform")[1]
    with LiveServer(app) as srv:
        r = requests.post(
            f"{srv.url}/v1/screen",
            params={"filename": "kit.tar"},
            headers={"Authorization": f"Bearer {key}"},
            data=_gnu_tar({GBK: _face_photo()}),
            timeout=120,
        )
    assert r.status_code == 200, r.text
    items = [i for i in r.json()["items"] if i["path"].endswith("人脸.jpg")]
    assert len(items) == 1 and items[0]["faces"] == 1 and items[0]["status"] == "ok"


def test_a_scan_input_named_in_legacy_bytes(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), "证据".encode("gbk"))
    os.mkdir(raw)
    shutil.copyfile(facedata_path("nonface", "skimage_brick.png"), os.path.join(raw, b"a.png"))
    result = _run("scan", "--json", "--workspace", tmp_path / "ws", "--workers", "1", os.fsdecode(raw))
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.splitlines()[0])
    assert row["path"].endswith("证据/a.png") and row["relpath"] == "a.png"
