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


def _cut_tail(db, keep):
    import sqlite3

    con = sqlite3.connect(db)
    with con:
        seq, h = con.execute("select seq, hash from audit_log where seq = ?", (keep,)).fetchone()
        con.execute("delete from audit_log where seq > ?", (keep,))
        con.execute("update meta set value = ? where key = 'audit_head'", (f"{seq}:{h}",))
    con.close()


def test_audit_verify_detects_a_cut_end_of_the_log(tmp_path):
    # security issue, item 4: DELETE FROM audit_log WHERE seq >= 5 and the head set to entry 4
    ws = tmp_path / "ws"
    for _ in range(8):
        assert _run("registry", "list", "-w", ws).exit_code == 0  # each listing is an audit entry
    before = _run("registry", "audit", "--verify", "-w", ws)
    assert before.exit_code == 0 and "intact" in before.stdout
    _cut_tail(ws / "facetrace.db", keep=4)
    r = _run("registry", "audit", "--verify", "-w", ws)
    assert r.exit_code == 1 and "TAMPERED" in r.stdout and "5 to 8 were removed" in r.stdout, r.output
    assert "signed head: entry 8" in before.stdout  # what the intact log said it was protected by


def test_audit_verify_checks_a_head_published_in_a_report(tmp_path):
    ws = tmp_path / "ws"
    for _ in range(6):
        _run("registry", "list", "-w", ws)
    last = json.loads(_run("registry", "audit", "--json", "-w", ws).stdout)[-1]
    r = _run("registry", "audit", "--verify", "--head", f"{last['seq']}:{last['hash']}", "-w", ws)
    assert r.exit_code == 0, r.output
    # the attacker also removed the head log's lines (a file they could write): the published head remains
    _cut_tail(ws / "facetrace.db", keep=3)
    (ws / "audit-head.log").write_text("".join((ws / "audit-head.log").read_text().splitlines(True)[:3]))
    r = _run("registry", "audit", "--verify", "-w", ws)
    assert r.exit_code == 0  # what a file writer and a database writer together can hide...
    r = _run("registry", "audit", "--verify", "--head", f"{last['seq']}:{last['hash']}", "-w", ws)
    assert r.exit_code == 1 and "published" in r.stdout  # ...but not from a head published before
    r = _run("registry", "audit", "--verify", "--head", "not-a-head", "-w", ws)
    assert r.exit_code == 2
