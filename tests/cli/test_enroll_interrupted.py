"""Issue 19 item 11: kill -9 during `facetrace enroll`, after the subject is committed and before
the deletion token is printed, must not leave an active subject that nobody can reach with a
token (and whose earlier scans were never searched). Before the fix it did, for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path

REPO = Path(__file__).resolve().parents[2]
KILLED_ENROLL = """
import os, signal, sys
import scanner.matching.matcher as matcher
def die(*args, **kwargs):  # the moment between the commit and the token reaching the person
    os.kill(os.getpid(), signal.SIGKILL)
matcher.search_earlier_scans = die
from cli.main import cli
sys.argv = ["facetrace"] + sys.argv[1:]
cli()
"""


def _photos():
    lfw = facedata_path("lfw_deepfunneled")
    person = next(p for p in sorted(lfw.iterdir()) if p.is_dir() and len(list(p.iterdir())) >= 3)
    return [str(p) for p in sorted(person.iterdir())[:3]]


def _subjects(ws) -> list[dict]:
    out = CliRunner().invoke(cli, ["registry", "list", "--json", "--workspace", str(ws)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_a_killed_enrollment_leaves_no_unreachable_subject(tmp_path):
    ws = tmp_path / "ws"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_ENROLL, "enroll", *_photos(), "--consent", "default", "--workspace", str(ws)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    assert "Deletion token" not in killed.stdout  # the person never got it
    markers = list((ws / "pending").glob("*.json"))
    assert len(markers) == 1
    subject = json.loads(markers[0].read_text())["subject_id"]
    # within the hour, the enrolling process may still be alive somewhere: nothing is touched
    assert [s["status"] for s in _subjects(ws) if s["id"] == subject] == ["active"]
    old = time.time() - 2 * 3600
    os.utime(markers[0], (old, old))
    assert [s["status"] for s in _subjects(ws) if s["id"] == subject] == ["erased"]
    assert not markers[0].exists()
    out = CliRunner().invoke(cli, ["registry", "audit", "--json", "--workspace", str(ws)], catch_exceptions=False)
    actions = [e["action"] for e in json.loads(out.output) if e["subject_id"] == subject]
    assert "enrollment_incomplete" in actions and "erase" in actions


def test_a_completed_enrollment_leaves_no_marker(tmp_path):
    ws = tmp_path / "ws"
    out = CliRunner().invoke(
        cli, ["enroll", *_photos(), "--consent", "default", "--workspace", str(ws)], catch_exceptions=False
    )
    assert out.exit_code == 0 and "Deletion token" in out.output
    assert not list((ws / "pending").glob("*.json"))
