"""`facetrace scan` as a user runs it: output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path


def _run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


@pytest.mark.facedata
def test_json_lines_one_object_per_member(tmp_path):
    photo = facedata_path("fr_examples", "biden", "biden.jpg")
    (tmp_path / "notes.txt").write_text("hello")
    result = _run(
        ["scan", "-q", "--json", "--workspace", str(tmp_path / "ws"), str(photo), str(tmp_path / "notes.txt")]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["path"] for x in lines] == [str(photo), str(tmp_path / "notes.txt")]
    face = lines[0]["faces"][0]
    assert set(face["box"]) == {"top", "right", "bottom", "left"} and len(face["encoding"]) == 128
    assert lines[0]["type"] == "image/jpeg" and len(lines[0]["sha256"]) == 64
    assert lines[0]["image"]["phash"] and lines[0]["scan_id"] == lines[1]["scan_id"]
    assert lines[1]["kind"] == "other" and lines[1]["faces"] == []
    assert "Scan " in result.stderr and "faces" in result.stderr  # summary kept off stdout


def test_summary_on_stdout_and_nothing_readable_exits_1(tmp_path):
    (tmp_path / "fake.jpg").write_text("I am text")
    result = _run(["scan", "--workspace", str(tmp_path / "ws"), str(tmp_path / "fake.jpg")])
    assert result.exit_code == 1
    assert "unreadable  1" in result.stdout
    assert "named as an image but the content is text/plain" in result.stdout
    assert "nothing could be read" in result.stderr


def test_missing_input_exits_2(tmp_path):
    result = _run(["scan", "--workspace", str(tmp_path / "ws"), str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_unusable_workspace_exits_3(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "a.txt").write_text("x")
    result = _run(["scan", "--workspace", str(tmp_path / "file" / "ws"), str(tmp_path / "a.txt")])
    assert result.exit_code == 3
    assert "workspace" in result.stderr


def test_facetrace_home_is_the_default_workspace(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("x")
    monkeypatch.setenv("FACETRACE_HOME", str(tmp_path / "home"))
    result = _run(["scan", str(tmp_path / "a.txt")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "facetrace.db").exists()
    assert (tmp_path / "home").stat().st_mode & 0o077 == 0  # biometric data: owner only


def test_installed_console_script_runs():
    exe = __import__("shutil").which("facetrace") or str(
        __import__("pathlib").Path(sys.executable).parent / "facetrace"
    )
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "facetrace" in out.stdout


@pytest.mark.slow
@pytest.mark.facedata
def test_both_engines_give_the_same_faces_and_record_their_runtime(tmp_path):
    # --engine dlib is face_recognition's own call, kept as the reference for the default ONNX engine
    from scanner.pipeline import open_store

    photo = facedata_path("fr_examples", "obama", "obama.jpg")
    faces, runtimes = {}, {}
    for engine in ("onnx", "dlib"):
        result = _run(["scan", "-q", "--json", "--engine", engine, "--workspace", str(tmp_path / engine), str(photo)])
        assert result.exit_code == 0, result.output
        faces[engine] = json.loads(result.stdout)["faces"]
        store, _ = open_store(str(tmp_path / engine))
        scan = store.get_scan()
        runtimes[engine] = (scan["engine"]["runtime"], scan["parameters"]["engine"], scan["engine"]["embedder"])
        store.close()
    assert [f["box"] for f in faces["onnx"]] == [f["box"] for f in faces["dlib"]] and faces["onnx"]
    for a, b in zip(faces["onnx"], faces["dlib"], strict=False):
        assert max(abs(x - y) for x, y in zip(a["encoding"], b["encoding"], strict=False)) <= 1e-4
    assert runtimes["onnx"][0].startswith("onnxruntime ") and runtimes["dlib"][0].startswith("dlib ")
    assert (runtimes["onnx"][1], runtimes["dlib"][1]) == ("onnx", "dlib")
    assert runtimes["onnx"][2] == runtimes["dlib"][2]  # one model: a registry made with one is searched with the other
