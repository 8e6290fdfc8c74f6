"""A real case shared by the report tests: enrolled person, dump, scan, match, reports."""

from __future__ import annotations

import shutil

import pytest

from scanner.consent import ConsentInput
from scanner.evidence import write_report
from scanner.pipeline import match_against_registry, open_store
from scanner.registry import enroll, open_registry
from tests.conftest import facedata_path, run_scan


@pytest.fixture(scope="session")
def case(tmp_path_factory):
    """Enrolled person, a dump with their photos, strangers, a near copy and an unreadable file; a report."""
    base = tmp_path_factory.mktemp("report")
    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    stranger = sorted(facedata_path("lfw_deepfunneled", "Abdullah_Gul").iterdir())
    store, root = open_store(str(base / "ws"))
    reg = open_registry(store, root)
    subject = enroll(reg, [(p.name, p.read_bytes()) for p in person[:3]], ConsentInput()).subject_id
    dump = base / "dump"
    (dump / "kit").mkdir(parents=True)
    for p in person[3:6] + stranger[:2]:
        shutil.copy(p, dump / "kit" / p.name)
    from PIL import Image

    Image.open(person[0]).resize((125, 125)).save(dump / "kit" / "small_copy.jpg", quality=80)
    (dump / "kit" / "broken.jpg").write_bytes(person[0].read_bytes()[:3000])
    summary, _ = run_scan([dump], base / "ws")
    match_against_registry(store, root, summary.scan_id, actor="tester")
    out = write_report(store, root, str(base / "out"), actor="tester")
    sub = write_report(store, root, str(base / "out-subject"), subject_id=subject, actor="tester")
    return base, dump, subject, out, sub
