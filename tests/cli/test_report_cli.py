"""`facetrace report key` and `report verify --key/--trusted-keys`, end to end (security issue, item 2)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path

pytestmark = pytest.mark.facedata


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-cli")
    dump = base / "dump"
    dump.mkdir()
    for p in sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())[:2]:
        shutil.copy(p, dump / p.name)
    ws = base / "ws"
    assert _run("scan", dump, "-w", ws, "--workers", "1").exit_code == 0
    r = _run("report", "--out", base / "out", "-w", ws)
    assert r.exit_code == 0, r.output
    return base, ws, dump, base / "out" / "report.json"


def _forged(reported, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from scanner.evidence.signing import sign

    doc = json.loads(reported[3].read_text(encoding="utf-8"))
    doc["counts_under_law"]["items_of_biometric_data"] = 0
    path = tmp_path / "report.json"
    path.write_text(json.dumps(sign(doc, Ed25519PrivateKey.generate())), encoding="utf-8")
    return path


def test_report_key_prints_and_exports_the_workspace_key(reported, tmp_path):
    base, ws, _, report = reported
    r = _run("report", "key", "-w", ws)
    assert r.exit_code == 0, r.output
    (fp,) = re.findall(r"\b[0-9a-f]{64}\b", r.stdout)
    assert "-----BEGIN PUBLIC KEY-----" in r.stdout
    signed = json.loads(report.read_text(encoding="utf-8"))["signature"]
    assert fp.startswith(signed["key_id"])
    r = _run("report", "key", "-w", ws, "--out", tmp_path / "investigator.pem")
    assert r.exit_code == 0 and fp in r.stdout
    assert (tmp_path / "investigator.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    r = _run("report", "key", "-w", ws, "--json")
    assert json.loads(r.stdout)["fingerprint"] == fp


def test_verify_shows_the_signer_and_a_pinned_key_refuses_any_other(reported, tmp_path):
    _, ws, dump, report = reported
    fp = json.loads(_run("report", "key", "-w", ws, "--json").stdout)["fingerprint"]
    _run("report", "key", "-w", ws, "--out", tmp_path / "investigator.pem")
    forged = _forged(reported, tmp_path)

    r = _run("report", "verify", forged)  # without a pinned key the signature is valid: the signer is shown
    assert r.exit_code == 0 and fp not in r.stdout and "not checked against a trusted key" in r.stdout
    r = _run("report", "verify", forged, "--key", tmp_path / "investigator.pem")
    assert r.exit_code == 1 and "not a trusted key" in r.stdout, r.output
    r = _run("report", "verify", forged, "--key", fp)
    assert r.exit_code == 1 and "not a trusted key" in r.stdout

    r = _run("report", "verify", report, "--key", tmp_path / "investigator.pem", "--dump", dump)
    assert r.exit_code == 0, r.output
    assert fp in r.stdout and "trusted" in r.stdout
    assert "report.json, report.html, manifest.txt" in r.stdout  # the files the signature covers
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(f"# keys of the investigators we work with\n{'ab' * 32} someone else\n{fp} case team\n")
    assert _run("report", "verify", report, "--trusted-keys", trusted).exit_code == 0
    assert _run("report", "verify", forged, "--trusted-keys", trusted).exit_code == 1
    assert _run("report", "verify", report, "--key", "not-a-key").exit_code == 2
