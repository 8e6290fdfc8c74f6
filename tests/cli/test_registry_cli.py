"""enroll / match / registry commands, end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path

pytestmark = pytest.mark.facedata


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_enroll_match_erase_verify(tmp_path):
    ws = tmp_path / "ws"
    photos = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    r = _run("enroll", *photos[:2], "--consent", "default", "--json", "-w", ws)
    assert r.exit_code == 0, r.output
    assert "only 2 photo(s)" in r.stderr  # fewer than 3: accepted with a warning
    out = json.loads(r.stdout)
    subject, token = out["subject_id"], out["deletion_token"]

    r = _run("match", photos[5], "-w", ws)
    assert r.exit_code == 0 and subject in r.stdout and "same_person" in r.stdout
    assert "confident" not in r.stdout  # one photo never earns 'confident'

    r = _run("registry", "list", "-w", ws)
    assert subject in r.stdout and "active" in r.stdout

    r = _run("registry", "erase", subject, "--token", "not-the-token", "-w", ws)
    assert r.exit_code == 2 and "token does not match" in r.stderr
    r = _run("registry", "erase", subject, "--token", token, "-w", ws)
    assert r.exit_code == 0 and "Erasure receipt" in r.stdout
    r = _run("registry", "verify-erasure", subject, "-w", ws)
    assert r.exit_code == 0 and "verified" in r.stdout
    r = _run("match", photos[5], "-w", ws)
    assert "No enrolled person" in r.stdout

    r = _run("registry", "audit", "--verify", "-w", ws)
    assert r.exit_code == 0 and "intact" in r.stdout
    r = _run("registry", "audit", "--json", "-w", ws)
    actions = [e["action"] for e in json.loads(r.stdout)]
    assert actions == ["enroll", "search", "list", "erase", "search"]


def test_enroll_requires_consent(tmp_path):
    photo = facedata_path("lfw_deepfunneled", "Ana_Palacio", "Ana_Palacio_0001.jpg")
    r = _run("enroll", photo, "-w", tmp_path / "ws")
    assert r.exit_code == 2 and "--consent" in r.output
