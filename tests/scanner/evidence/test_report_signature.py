"""What a report's signature covers, and who signed it (security issue, item 2).

Every file `report` writes is covered by the signature in report.json; `verify` names the files it
checked and refuses the others; it shows the signer's key, and a pinned key makes any other
signer fail; the signed report carries the audit log's head.
"""

from __future__ import annotations

import json
import shutil

import pytest

from scanner.evidence.verify import verify_report

pytestmark = pytest.mark.facedata


def _copy(out, folder):
    folder.mkdir()
    for k in ("json", "html", "manifest", "case_uco"):
        if k in out:
            shutil.copy(out[k], folder)
    return folder / "report.json"


def _workspace_fingerprint(case):
    from scanner.evidence.signing import workspace_fingerprint

    return workspace_fingerprint(case[0] / "ws")


def test_an_edited_report_html_fails_verification(case, tmp_path):
    report = _copy(case[3], tmp_path / "r")
    assert verify_report(report) == []
    page = report.with_name("report.html")
    page.write_text(page.read_text(encoding="utf-8").replace("possible", "POSSIBLE"), encoding="utf-8")
    problems = verify_report(report)
    assert any("report.html" in p and "changed" in p for p in problems), problems


def test_an_edited_manifest_fails_verification(case, tmp_path):
    report = _copy(case[3], tmp_path / "r")
    manifest = report.with_name("manifest.txt")
    lines = manifest.read_text(encoding="utf-8").splitlines(True)
    lines.pop()  # a member dropped from the hashdeep manifest
    manifest.write_text("".join(lines), encoding="utf-8")
    problems = verify_report(report)
    assert any("manifest.txt" in p for p in problems), problems


def test_a_report_re_signed_with_another_key_fails_against_the_workspace_key(case, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from scanner.evidence.signing import fingerprint, sign
    from scanner.evidence.verify import check_report

    doc = json.loads(open(case[3]["json"], encoding="utf-8").read())
    doc["findings"] = []  # the findings emptied, and the report signed again with a key of one's own
    forger = Ed25519PrivateKey.generate()
    forged = tmp_path / "report.json"
    forged.write_text(json.dumps(sign(doc, forger)), encoding="utf-8")
    check = check_report(forged)
    assert check.problems == []  # a valid signature...
    assert check.signer == fingerprint(forger.public_key()) != _workspace_fingerprint(case)  # ...by someone else
    trusted = {_workspace_fingerprint(case)}
    problems = verify_report(forged, trusted=trusted)
    assert any("not a trusted key" in p and check.signer in p for p in problems), problems
    assert verify_report(case[3]["json"], trusted=trusted) == []


def test_the_signed_report_carries_the_audit_head_at_signing(case):
    from scanner.evidence.verify import check_report

    doc = json.loads(open(case[3]["json"], encoding="utf-8").read())
    own = [c for c in doc["custody"] if c["action"] == "report"][-1]  # the report's own making
    assert doc["audit_head"] == {"seq": own["seq"], "hash": own["hash"]}
    assert "audit_head" in doc["signature"]["sections"]
    assert check_report(case[3]["json"]).audit_head == doc["audit_head"]


def test_verify_names_the_files_it_covers_and_refuses_the_others(case, tmp_path):
    from scanner.evidence.verify import check_report

    report = _copy(case[3], tmp_path / "r")
    report.with_name("summary.txt").write_text("all clear, no findings\n")
    check = check_report(report)
    assert check.problems == []
    assert check.covered == ["report.json", "report.html", "manifest.txt"]
    assert check.refused == ["summary.txt"]


def test_an_edited_case_uco_export_fails_verification(case, tmp_path):
    from scanner.evidence import write_report
    from scanner.evidence.verify import check_report
    from scanner.pipeline import open_store

    store, root = open_store(str(case[0] / "ws"))
    out = write_report(store, root, str(tmp_path / "out"), actor="tester", pictures=False, case_uco=True)
    assert check_report(out["json"]).covered == ["report.json", "report.html", "manifest.txt", "report.jsonld"]
    export = tmp_path / "out" / "report.jsonld"
    export.write_text(
        export.read_text(encoding="utf-8").replace("facetrace-finding", "facetrace-note"), encoding="utf-8"
    )
    problems = verify_report(out["json"])
    assert any("report.jsonld" in p for p in problems), problems
