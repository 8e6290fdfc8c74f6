"""Issue 19 item 7 (first part): a person enrolls once. Before the fix, enrolling the same person a
second time, with photos that are in a dump, created a competing subject that took over the first
subject's findings."""

from __future__ import annotations

import shutil

import pytest

from scanner.consent import ConsentInput
from scanner.pipeline import match_against_registry, open_store, scan
from scanner.registry import SimilarSubject, enroll, open_registry
from tests.conftest import facedata_path, reference_cohort

# slow: every test needs the module's workspace with a reference cohort (about 7 s in the suite)
pytestmark = pytest.mark.slow

COHORT = 64


def _people():
    lfw = facedata_path("lfw_deepfunneled")
    return [p for p in sorted(lfw.iterdir()) if p.is_dir() and len(list(p.iterdir())) >= 7]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace with a reference cohort, person A enrolled, and a dump of A's other photos scanned."""
    base = tmp_path_factory.mktemp("once")
    people = _people()
    a, others = people[0], people[1:]
    store, root = open_store(str(base / "ws"))
    reference_cohort(root, [p.name for p in others[:COHORT]])
    reg = open_registry(store, root)
    photos = sorted(a.iterdir())
    first = enroll(reg, [(p.name, p.read_bytes()) for p in photos[:3]], ConsentInput(), search_earlier=False)
    dump = base / "dump"
    dump.mkdir()
    for p in photos[3:7]:
        shutil.copyfile(p, dump / p.name)
    summary = scan([str(dump)], store, workspace=root)
    before = match_against_registry(store, root, summary.scan_id)
    return reg, first, photos, before, others[COHORT:]


def test_the_same_person_cannot_enroll_twice(workspace):
    reg, first, photos, before, _ = workspace
    assert {f["subject_id"] for f in before if f["band"] == "confident"} == {first.subject_id}
    findings_before = sorted(
        (f["logical_path"], f["kind"], f["band"]) for f in reg.store.findings(subject_id=first.subject_id)
    )
    subjects = reg.store.count_active_subjects()
    with pytest.raises(SimilarSubject) as refused:
        enroll(reg, [(p.name, p.read_bytes()) for p in photos[3:6]], ConsentInput())  # photos that are in the dump
    assert first.subject_id not in str(refused.value)  # the refusal does not say who is enrolled
    assert reg.store.count_active_subjects() == subjects
    assert (
        sorted((f["logical_path"], f["kind"], f["band"]) for f in reg.store.findings(subject_id=first.subject_id))
        == findings_before
    )
    audit = [e for e in reg.store.audit_entries() if e["action"] == "enroll_refused_similar"]
    assert audit and audit[-1]["details"]["similar_subjects"] == [first.subject_id]


def test_a_copy_of_an_enrolled_photo_is_refused_too(workspace):
    reg, _first, photos, _before, _ = workspace
    with pytest.raises(SimilarSubject):
        enroll(
            reg,
            [(p.name, p.read_bytes()) for p in photos[:1]] + [(p.name, p.read_bytes()) for p in photos[4:6]],
            ConsentInput(),
        )


def test_other_people_still_enroll_and_an_operator_may_allow_a_similar_one(workspace):
    reg, _first, photos, _before, rest = workspace
    other = sorted(rest[0].iterdir())[:3]
    enroll(reg, [(p.name, p.read_bytes()) for p in other], ConsentInput(), search_earlier=False)
    twin = enroll(
        reg, [(p.name, p.read_bytes()) for p in photos[3:6]], ConsentInput(), search_earlier=False, allow_similar=True
    )
    assert twin.subject_id
    assert any(e["action"] == "enroll_similar_allowed" for e in reg.store.audit_entries())
