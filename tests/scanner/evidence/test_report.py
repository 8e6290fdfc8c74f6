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
    for forbidden in ("http://", "https://", "<script", "<link", 'src="', "@import", "url("):
        assert forbidden not in page, forbidden
    sources = page.split(" src='")[1:]
    assert sources and all(src.startswith("data:image/jpeg;base64,") for src in sources)
    assert "id='kpi-findings'" in page


def _picture_array(pic):
    import base64
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(pic["data_base64"]))).convert("RGB"))


def _encoding_at_face_box(arr):
    """The face_recognition encoding of a face picture, at the box the picture was cut around."""
    import face_recognition

    from scanner.evidence.pictures import FACE_MARGIN

    h, w = arr.shape[:2]
    whole = 1 + 2 * FACE_MARGIN
    box = (
        round(h * FACE_MARGIN / whole),
        round(w * (1 + FACE_MARGIN) / whole),
        round(h * (1 + FACE_MARGIN) / whole),
        round(w * FACE_MARGIN / whole),
    )
    return face_recognition.face_encodings(arr, [box])[0]


def _stored_face(case_base, logical_path, face_index):
    import numpy as np

    from scanner.pipeline import open_store

    store, _ = open_store(str(case_base / "ws"))
    scan = store.get_scan()
    (m,) = [m for m in store.iter_members(scan["id"]) if m["logical_path"] == logical_path]
    return m, np.asarray(m["faces"][face_index]["encoding"])


def test_redacted_pictures_show_where_a_face_was_found_not_whose(case):
    import face_recognition
    import numpy as np

    base, _, _, out, _ = case
    doc = _doc(out["json"])
    assert doc["redacted"] is True and doc["pictures"]["notes"] == []
    items = [i for s in doc["findings"] for i in s["items"]]
    assert doc["pictures"]["count"] == len(items) > 0
    for item in items:
        pic = item["picture"]
        assert pic["redacted"] is True
        arr = _picture_array(pic)
        # the detector finds no face in a redacted picture, even looking twice as hard
        assert face_recognition.face_locations(arr, number_of_times_to_upsample=2) == []
        if item["face_index"] is not None:
            member, stored = _stored_face(base, item["logical_path"], item["face_index"])
            assert pic["source_sha256"] == member["sha256"]
            # told where the face is, the model still cannot tell whose it is
            assert np.linalg.norm(_encoding_at_face_box(arr) - stored) > 0.6


def test_unredacted_report_shows_faces_and_is_marked_and_audited(case, tmp_path):
    import face_recognition
    import numpy as np

    from scanner.evidence import write_report
    from scanner.pipeline import open_store
    from scanner.registry import audit_log

    base, _, subject, _, _ = case
    store, root = open_store(str(base / "ws"))
    out = write_report(store, root, str(tmp_path / "un"), subject_id=subject, unredacted=True, actor="tester")
    doc = _doc(out["json"])
    assert doc["redacted"] is False and "UNREDACTED" in open(out["html"], encoding="utf-8").read()
    faces = [i for s in doc["findings"] for i in s["items"] if i["face_index"] is not None]
    assert faces
    for item in faces:
        assert item["picture"]["redacted"] is False
        arr = _picture_array(item["picture"])
        assert len(face_recognition.face_locations(arr, number_of_times_to_upsample=2)) == 1
        _, stored = _stored_face(base, item["logical_path"], item["face_index"])
        assert np.linalg.norm(_encoding_at_face_box(arr) - stored) < 0.3  # the same face, recognisably
    (entry,) = [
        e
        for e in audit_log(store).audit_entries()
        if e["action"] == "report" and e["details"].get("out") == str((tmp_path / "un").resolve())
    ]
    assert entry["details"]["unredacted"] is True and entry["subject_id"] == subject
    assert verify_report(out["json"]) == []


def test_no_picture_is_cut_from_a_member_that_changed_since_the_scan(case, tmp_path):
    from scanner.evidence import write_report
    from scanner.pipeline import open_store

    base, dump, _, out, _ = case
    moved = tmp_path / "moved"
    shutil.copytree(dump, moved)
    doc = _doc(out["json"])
    victim = next(i for s in doc["findings"] for i in s["items"] if i["face_index"] is not None)
    changed = moved / victim["logical_path"].split("/dump/")[1]
    changed.write_bytes(changed.read_bytes() + b"tampered")
    store, root = open_store(str(base / "ws"))
    again = _doc(write_report(store, root, str(tmp_path / "r"), actor="tester", dump_paths=[str(moved)])["json"])
    pictures = {i["logical_path"]: i["picture"] for s in again["findings"] for i in s["items"]}
    assert pictures[victim["logical_path"]] is None
    assert sum(p is not None for p in pictures.values()) == len(pictures) - 1
    (note,) = again["pictures"]["notes"]
    assert changed.name in note and "changed since the scan" in note
