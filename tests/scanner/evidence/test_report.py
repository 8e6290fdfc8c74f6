"""Evidence reports built from a real scan: manifest, findings, signature, tampering, redaction."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from scanner.evidence.verify import verify_report

pytestmark = pytest.mark.facedata


def _doc(path):
    return json.loads(open(path, encoding="utf-8").read())


def test_manifest_accounts_for_every_member_with_its_hash(case):
    base, dump, _, out, _ = case
    doc = _doc(out["json"])
    manifest = {e["relpath"]: e for e in doc["acquisition"]["manifest"]}
    files = sorted(p for p in dump.rglob("*") if p.is_file())
    assert len(manifest) == len(files)
    for f in files:
        entry = manifest[f.relative_to(dump).as_posix()]
        assert entry["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest() and entry["size"] == f.stat().st_size
    assert [u["path"].split("/dump/")[1] for u in doc["acquisition"]["unreadable"]] == ["kit/broken.jpg"]
    text = open(out["manifest"]).read()
    assert text.startswith("%%%% HASHDEEP-1.0\n%%%% size,sha256,filename\n")
    assert text.count("\n") == 4 + len(files)


def test_every_finding_cites_distances_thresholds_and_model(case):
    _, _, subject, out, _ = case
    doc = _doc(out["json"])
    (found,) = doc["findings"]
    assert found["subject_id"] == subject
    kinds = {i["kind"] for i in found["items"]}
    assert {"same_person", "near_copy"} <= kinds
    for item in found["items"]:
        ev = item["evidence"]
        if item["kind"] == "same_person":
            assert ev["distance"] <= ev["thresholds"]["face_possible_max"] and "dlib" in ev["model"]
            assert ev["thresholds"]["policy"] == doc["method"]["policy"]["policy"]
        else:
            assert "policy" in ev
    assert doc["method"]["engine"]["model_files"]["dlib_face_recognition_resnet_model_v1.dat"]
    assert doc["method"]["registry_subjects_at_scan"] == 1
    assert doc["counts_under_law"]["individuals_found"] == 1
    assert {"scan_against_registry", "report"} <= {c["action"] for c in doc["custody"]}


def test_verify_passes_then_fails_on_any_changed_byte(case, tmp_path):
    _, dump, _, out, _ = case
    assert verify_report(out["json"], [str(dump)]) == []
    raw = open(out["json"], "rb").read()
    for pos in (len(raw) // 5, len(raw) // 2, len(raw) - 40):  # manifest, findings/method, signature block
        bad = bytearray(raw)
        bad[pos] = ord("0") if bad[pos] != ord("0") else ord("1")
        (tmp_path / "r.json").write_bytes(bytes(bad))
        problems = verify_report(tmp_path / "r.json")
        assert problems, f"byte {pos} changed but verify passed"
    changed = tmp_path / "dump"
    shutil.copytree(dump, changed)
    victim = sorted((changed / "kit").glob("Abdullah*"))[0]
    data = bytearray(victim.read_bytes())
    data[200] ^= 0xFF
    victim.write_bytes(bytes(data))
    problems = verify_report(out["json"], [str(changed)])
    assert len(problems) == 1 and victim.name in problems[0] and "changed" in problems[0]


def test_subject_report_holds_only_that_subject(case):
    _, _, subject, _, sub = case
    doc = _doc(sub["json"])
    assert doc["scope"]["subject_id"] == subject
    assert [f["subject_id"] for f in doc["findings"]] == [subject]
    assert all("Abdullah" not in e["path"] for e in doc["acquisition"]["manifest"])  # strangers' files not named
    assert verify_report(sub["json"]) == []


def test_html_is_self_contained_and_redacted(case):
    _, _, _, out, _ = case
    page = open(out["html"], encoding="utf-8").read()
    assert "<title>facetrace evidence report" in page and "faces redacted" in page
    for forbidden in ("http://", "https://", "<script", "<link", "src=\"", "@import", "url("):
        assert forbidden not in page, forbidden
    assert "id='kpi-findings'" in page
