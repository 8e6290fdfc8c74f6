"""The registry on real photos: enrollment rules, matching bands, erasure that really erases, audit."""

from __future__ import annotations

import io
import json
from datetime import UTC
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from scanner.consent import ConsentInput
from scanner.matching.matcher import match_photo
from scanner.pipeline import match_against_registry, open_store
from scanner.registry import EnrollmentRefused, enroll, erase, open_registry, verify_erasure, withdraw
from tests.conftest import facedata_path, reference_cohort, run_scan

pytestmark = pytest.mark.facedata

PERSON = "Ana_Palacio"  # 8 photos: 3 enrolled, 5 in the dump
STRANGERS = ["Abdullah_Gul", "Adrien_Brody", "Ai_Sugiyama"]
COHORT_PEOPLE = 60  # the reference cohort: people who are neither enrolled nor in the dump (one photo each)


def _photos(name, sl):
    folder = facedata_path("lfw_deepfunneled", name)
    return sorted(folder.iterdir())[sl]


def _bytes(paths):
    return [(p.name, p.read_bytes()) for p in paths]


def _jpeg(img, q):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue()


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, module_db_url):
    ws = tmp_path_factory.mktemp("reg-ws")
    store, root = open_store(str(ws), module_db_url)
    reg = open_registry(store, root)
    result = enroll(reg, _bytes(_photos(PERSON, slice(0, 3))), ConsentInput(jurisdiction="EU"), label="test")
    everyone = sorted(p.name for p in facedata_path("lfw_deepfunneled").iterdir() if p.is_dir())
    reference_cohort(root, [p for p in everyone if p not in [PERSON, *STRANGERS]][:COHORT_PEOPLE], photos=1)
    return ws, store, reg, result


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """The person's 5 other photos, 3 strangers x 3 photos, and edited copies of an enrolled photo."""
    root = tmp_path_factory.mktemp("reg-dump") / "dump"
    (root / "kit").mkdir(parents=True)
    for p in _photos(PERSON, slice(3, 8)):
        (root / "kit" / p.name).write_bytes(p.read_bytes())
    for name in STRANGERS:
        (root / name).mkdir()
        for p in _photos(name, slice(0, 3)):
            (root / name / p.name).write_bytes(p.read_bytes())
    enrolled_photo = _photos(PERSON, slice(0, 1))[0]
    img = Image.open(enrolled_photo).convert("RGB")
    (root / "copies").mkdir()
    (root / "copies" / "exact.jpg").write_bytes(enrolled_photo.read_bytes())
    (root / "copies" / "q40.jpg").write_bytes(_jpeg(img, 40))
    (root / "copies" / "mirrored.jpg").write_bytes(_jpeg(ImageOps.mirror(img), 90))
    (root / "copies" / "half.jpg").write_bytes(_jpeg(img.resize((125, 125)), 90))
    # an off-centre crop moves pHash too far; the face's pixels are still the enrolled photo's
    (root / "copies" / "cropped.jpg").write_bytes(_jpeg(img.crop((17, 0, 250, 232)), 90))
    return root


@pytest.fixture(scope="module")
def scanned(enrolled, dump, module_db_url):
    ws, store, reg, result = enrolled
    summary, _ = run_scan([dump], ws, module_db_url)
    findings = match_against_registry(store, str(ws), summary.scan_id, actor="tester")
    return summary, findings


def test_enrollment_records_consent_and_receipt(enrolled):
    ws, store, reg, result = enrolled
    subj = reg.store.get_subject(result.subject_id)
    assert subj["status"] == "active" and subj["templates"] == 3
    assert subj["consents"][0]["jurisdiction"] == "EU"
    assert subj["consents"][0]["text_sha256"] == ConsentInput().text_sha256
    assert result.receipt_path.exists() and result.receipt["subject_id"] == result.subject_id
    assert len(result.deletion_token) >= 32
    assert reg.store.check_token(result.subject_id, result.deletion_token)
    assert not reg.store.check_token(result.subject_id, "wrong")
    assert [e["action"] for e in reg.store.audit_entries(result.subject_id)] == ["enroll"]
    # photos are not kept unless asked
    from sqlalchemy import text

    with store.engine.connect() as con:
        assert con.execute(text("select count(*) from templates where photo is not null")).scalar() == 0


def test_enrollment_refuses_bad_photo_sets(enrolled):
    _, _, reg, _ = enrolled
    nonface = facedata_path("nonface", "skimage_coffee.png")
    with pytest.raises(EnrollmentRefused, match="no face"):
        enroll(reg, [(nonface.name, nonface.read_bytes())], ConsentInput())
    group = facedata_path("multiface", "fr_two_people.jpg")
    with pytest.raises(EnrollmentRefused, match="2 faces"):
        enroll(reg, [(group.name, group.read_bytes())], ConsentInput())
    odd = _photos("Abdullah_Gul", slice(0, 1))
    with pytest.raises(EnrollmentRefused, match="Abdullah_Gul_0001.jpg does not look like the same person"):
        enroll(reg, _bytes(_photos(PERSON, slice(3, 6)) + odd), ConsentInput())


def test_scan_finds_the_enrolled_person_with_graded_evidence(enrolled, scanned):
    _, _, _, result = enrolled
    _, findings = scanned
    mine = [f for f in findings if f["subject_id"] == result.subject_id]
    by_path = {f["logical_path"].split("/dump/")[1]: f for f in mine}
    assert by_path["copies/exact.jpg"]["kind"] == "exact_copy"
    for name in ("q40.jpg", "mirrored.jpg", "half.jpg", "cropped.jpg"):
        assert by_path[f"copies/{name}"]["kind"] == "near_copy", name
        assert by_path[f"copies/{name}"]["band"] == "confident"
    assert by_path["copies/q40.jpg"]["evidence"]["method"] == "phash"
    assert by_path["copies/cropped.jpg"]["evidence"]["method"] == "face"
    kit = [f for p, f in by_path.items() if p.startswith("kit/")]
    assert len(kit) == 5 and all(f["kind"] == "same_person" and f["band"] == "confident" for f in kit)
    for f in kit:  # every decision cites its distances, thresholds, model, cohort and registry size
        ev = f["evidence"]
        assert ev["distance"] <= ev["thresholds"]["face_possible_max"]
        assert ev["group"]["group_photos"] >= 2 and "dlib" in ev["model"]
        assert ev["normalised"]["margin"] >= ev["group"]["member_margin_needed"]
        assert ev["group"]["group_best_margin"] >= ev["decided_under"]["group_margin"]
        assert ev["normalised"]["people_nearby"] >= 3 and ev["decided_under"]["registry_size"] == 1
        assert ev["decided_under"]["reference_people"] == COHORT_PEOPLE
        assert ev["normalised"]["expected_false_matches"] is not None
    strangers = [p for p in by_path if p.split("/")[0] in STRANGERS]
    assert all(by_path[p]["band"] == "possible" for p in strangers)  # never above possible


@pytest.mark.slow
def test_erasure_really_erases(tmp_path, db_url):
    store, root = open_store(str(tmp_path / "ws"), db_url)
    reg = open_registry(store, root)
    result = enroll(reg, _bytes(_photos(PERSON, slice(0, 3))), ConsentInput())
    summary, _ = run_scan(_photos(PERSON, slice(3, 6)), tmp_path / "ws", db_url)
    assert match_against_registry(store, root, summary.scan_id, actor="t")
    receipt = erase(reg, result.subject_id, token=result.deletion_token)
    assert receipt["deleted"]["templates"] == 3
    assert verify_erasure(reg, result.subject_id) == []
    # a fresh process sees the same: reopen everything from disk
    store2, _ = open_store(str(tmp_path / "ws"), db_url)
    reg2 = open_registry(store2, root)
    assert verify_erasure(reg2, result.subject_id) == []
    assert len(reg2.index) == 0
    again, _ = run_scan(_photos(PERSON, slice(3, 6)), tmp_path / "ws", db_url)
    assert match_against_registry(store2, root, again.scan_id, actor="t") is None
    if db_url is None:
        # the erased photo hashes are not in the database file any more (secure_delete + checkpoint)
        raw = (tmp_path / "ws" / "facetrace.db").read_bytes()
        for photo in receipt_photos(result):
            assert photo.encode() not in raw
    else:
        # nor in the files of PostgreSQL's tables (VACUUM after the DELETE); the test's server runs
        # on this machine, so its data directory can be read once a checkpoint has written it out
        from sqlalchemy import text

        from scanner.registry import ERASED_TABLES

        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            con.execute(text("CHECKPOINT"))
            datadir = Path(con.execute(text("SHOW data_directory")).scalar())
            files = [datadir / con.execute(text(f"SELECT pg_relation_filepath('{t}')")).scalar() for t in ERASED_TABLES]
        raw = b"".join(f.read_bytes() for f in files if f.exists())
        assert raw and not any(photo.encode() in raw for photo in receipt_photos(result))


def receipt_photos(result):
    return [p["sha256"] for p in result.receipt["photos"]]


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_erased_vectors_and_hashes_are_in_no_index_file(tmp_path, kind, monkeypatch):
    """Both index layouts (one flat file; IVF segments, the layout above 50,000 templates): after
    an erasure, no file under indexes/ holds the erased subject's encodings or photo hashes."""
    import indexes.search.subject_index as registry_index
    from indexes.search.hashes import hex_to_codes
    from indexes.search.vectors import IVFIndex

    if kind == "ivf":
        monkeypatch.setattr(registry_index, "make_index", lambda n, dim=128: IVFIndex(dim=dim))
    store, root = open_store(str(tmp_path / "ws"), None)
    reg = open_registry(store, root)
    other = enroll(reg, _bytes(_photos(STRANGERS[0], slice(0, 2))), ConsentInput())
    result = enroll(reg, _bytes(_photos(PERSON, slice(0, 2))), ConsentInput())
    assert (reg.index.faces.kind == "faiss-ivf-flat") == (kind == "ivf")
    _, vectors, _ = reg.store.template_vectors(reg.embedder, reg.embedder_version, result.subject_id)
    hexes = reg.store.hash_rows(result.subject_id)[1]
    needles = [v.tobytes() for v in vectors] + [c.tobytes() for c in hex_to_codes(hexes)]

    def index_bytes():
        return b"".join(p.read_bytes() for p in (tmp_path / "ws" / "indexes").rglob("*") if p.is_file())

    assert all(n in index_bytes() for n in needles)
    erase(reg, result.subject_id)
    assert verify_erasure(reg, result.subject_id) == []
    raw = index_bytes()
    assert not any(n in raw for n in needles)
    reopened = open_registry(open_store(str(tmp_path / "ws"), None)[0], root)
    assert reopened.index.rebuilt == [] and len(reopened.index) == 2  # the stranger's, loaded from disk
    assert reopened.store.get_subject(other.subject_id)["status"] == "active"


def test_an_exact_index_grown_past_its_size_becomes_ivf(tmp_path, monkeypatch):
    import indexes.search.subject_index as registry_index

    monkeypatch.setattr(registry_index, "APPROX_ABOVE", 3)
    store, root = open_store(str(tmp_path / "ws"), None)
    reg = open_registry(store, root)
    first = enroll(reg, _bytes(_photos(PERSON, slice(0, 2))), ConsentInput())
    assert reg.index.faces.kind == "faiss-flat"
    enroll(reg, _bytes(_photos(STRANGERS[0], slice(0, 2))), ConsentInput())
    assert reg.index.faces.kind == "faiss-ivf-flat" and len(reg.index) == 4
    reopened = open_registry(open_store(str(tmp_path / "ws"), None)[0], root)
    assert reopened.index.faces.kind == "faiss-ivf-flat" and reopened.index.rebuilt == []
    photo = _photos(PERSON, slice(5, 6))[0]
    assert {f["subject_id"] for f in match_photo(reopened, photo.name, photo.read_bytes(), "t")} == {first.subject_id}


def test_current_indexes_open_without_reading_ids_and_stale_ones_are_caught(tmp_path, monkeypatch):
    """The manifests' change count spares reading every id when the files are current; a change the
    index files missed (a crash between commit and save) is caught by the count and rebuilt."""
    from indexes.store.subjects import RegistryStore

    store, root = open_store(str(tmp_path / "ws"), None)
    reg = open_registry(store, root)
    kept = enroll(reg, _bytes(_photos(STRANGERS[0], slice(0, 2))), ConsentInput())
    gone = enroll(reg, _bytes(_photos(PERSON, slice(0, 2))), ConsentInput())
    assert reg.index.changes == reg.store.registry_changes() == 2

    def no_ids(*a, **k):
        raise AssertionError("the ids were read although the index files are current")

    with monkeypatch.context() as m:
        m.setattr(RegistryStore, "active_template_ids", no_ids)
        m.setattr(RegistryStore, "active_hash_ids", no_ids)
        again = open_registry(open_store(str(tmp_path / "ws"), None)[0], root)
        assert again.index.rebuilt == [] and len(again.index) == 4
    reg.store.erase(gone.subject_id, "t")  # the database changes, the index files do not (a crash)
    after = open_registry(open_store(str(tmp_path / "ws"), None)[0], root)
    assert sorted(after.index.rebuilt) == ["hashes.faissb", "templates.faiss"] and len(after.index) == 2
    assert after.index.changes == 3
    assert set(after.index.subjects_of(after.index.faces.ids()).values()) == {kept.subject_id}


def test_an_open_registry_sees_changes_made_by_another_process(tmp_path):
    """The HTTP service keeps its registry open while the CLI enrolls and erases: each search first
    compares the change count and reloads when another process changed the registry."""
    store, root = open_store(str(tmp_path / "ws"), None)
    service = open_registry(store, root)
    assert len(service.index) == 0
    cli = open_registry(open_store(str(tmp_path / "ws"), None)[0], root)
    first = enroll(cli, _bytes(_photos(PERSON, slice(0, 2))), ConsentInput())
    photo = _photos(PERSON, slice(5, 6))[0]
    found = match_photo(service, photo.name, photo.read_bytes(), "t")
    assert {f["subject_id"] for f in found} == {first.subject_id} and len(service.index) == 2
    erase(cli, first.subject_id)
    second = enroll(cli, _bytes(_photos(STRANGERS[2], slice(0, 2))), ConsentInput())
    assert match_photo(service, photo.name, photo.read_bytes(), "t") == []
    assert set(service.index.subjects_of(service.index.faces.ids()).values()) == {second.subject_id}


def test_verify_erasure_detects_a_leftover_index_entry(tmp_path, db_url):
    store, root = open_store(str(tmp_path / "ws"), db_url)
    reg = open_registry(store, root)
    result = enroll(reg, _bytes(_photos(PERSON, slice(0, 2))), ConsentInput())
    reg.store.erase(result.subject_id, "t")  # database only: the index files are not updated
    problems = verify_erasure(reg, result.subject_id)
    assert any("templates.faiss" in p for p in problems) and any("hashes.faissb" in p for p in problems)


def test_withdrawn_subject_is_no_longer_matched(tmp_path, db_url):
    store, root = open_store(str(tmp_path / "ws"), db_url)
    reg = open_registry(store, root)
    result = enroll(reg, _bytes(_photos(PERSON, slice(0, 3))), ConsentInput())
    out = withdraw(reg, result.subject_id)
    assert out["templates_deleted"] == 3 and len(reg.index) == 0
    assert reg.store.get_subject(result.subject_id)["consents"][0]["withdrawn_at"] is not None


def test_stale_or_damaged_index_is_rebuilt_from_the_database(enrolled, tmp_path):
    ws, store, reg, result = enrolled
    path = ws / "indexes" / "templates.faiss"
    path.write_bytes(path.read_bytes()[:-10])  # damaged
    reg2 = open_registry(store, str(ws))
    assert "templates.faiss" in reg2.index.rebuilt and len(reg2.index) == 3
    path.unlink()
    reg3 = open_registry(store, str(ws))
    assert "templates.faiss" in reg3.index.rebuilt and len(reg3.index) == 3
    assert open_registry(store, str(ws)).index.rebuilt == []  # now current: loaded, not rebuilt


def test_audit_chain_detects_edits_and_deletions(tmp_path, db_url):
    from sqlalchemy import text

    store, root = open_store(str(tmp_path / "ws"), db_url)
    reg = open_registry(store, root)
    for i in range(4):
        reg.store.audit("search", "tester", None, {"i": i})
    assert reg.store.verify_audit() == []
    with store.engine.begin() as con:  # someone with write access to the database, behind facetrace's back
        con.execute(text("update audit_log set actor = 'someone else' where seq = 2"))
    assert any("entry 2" in p and "altered" in p for p in reg.store.verify_audit())
    with store.engine.begin() as con:
        con.execute(text("update audit_log set actor = 'tester' where seq = 2"))
        con.execute(text("delete from audit_log where seq = 4"))  # the newest entry, removed
    assert any("removed" in p for p in reg.store.verify_audit())


def test_enrolling_after_a_scan_finds_the_person_in_it_without_rescanning(tmp_path, db_url):
    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    strangers = sorted(facedata_path("lfw_deepfunneled", "Abdullah_Gul").iterdir())
    dump = tmp_path / "dump"
    dump.mkdir()
    for p in person[3:7] + strangers[:3]:
        (dump / p.name).write_bytes(p.read_bytes())
    (dump / "copy_of_enrolled.jpg").write_bytes(person[0].read_bytes())
    summary, _ = run_scan([dump], tmp_path / "ws", db_url)
    store, root = open_store(str(tmp_path / "ws"), db_url)
    reg = open_registry(store, root)
    assert match_against_registry(store, root, summary.scan_id) is None  # nobody enrolled yet
    result = enroll(reg, [(p.name, p.read_bytes()) for p in person[:3]], ConsentInput())
    assert len(store.list_scans()) == 1  # the dump was not scanned again
    found = result.earlier["findings"]
    assert result.earlier["scans"] == 1
    assert {f["subject_id"] for f in found} == {result.subject_id}
    assert {f["scan_id"] for f in found} == {summary.scan_id}
    paths = {f["logical_path"].rsplit("/", 1)[1]: f for f in found}
    assert {p.name for p in person[3:7]} <= set(paths) and not any(s.name in paths for s in strangers[:3])
    assert paths["copy_of_enrolled.jpg"]["kind"] == "exact_copy"
    # recorded like a scan's findings, and audited
    assert len(reg.store.findings(scan_id=summary.scan_id, subject_id=result.subject_id)) == len(found)
    (entry,) = [e for e in reg.store.audit_entries() if e["action"] == "retroactive_search"]
    assert entry["details"]["findings"] == len(found) and entry["subject_id"] == result.subject_id


def test_concurrent_audit_appends_keep_one_unbroken_chain(tmp_path, db_url):
    # several writers at once (scans, the HTTP service) must neither fork nor lose the chain
    import threading

    store, root = open_store(str(tmp_path / "ws"), db_url)
    errors = []

    def append(worker):
        from indexes.store.cases import CaseStore
        from indexes.store.subjects import RegistryStore

        own = CaseStore(store.url)  # a connection pool of its own, as another process would have
        try:
            for i in range(15):
                RegistryStore(own.engine).audit("search", f"worker{worker}", None, {"i": i})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            own.close()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg = open_registry(store, root)
    assert errors == []
    assert reg.store.verify_audit() == [] and len(reg.store.audit_entries()) == 60


# -- the end of the audit log: signed heads outside the database (security issue, item 4) ------------


def _cut_tail(engine, keep: int) -> None:
    """What a database writer can do: delete the newest entries and point the recorded head at the
    last one left (everything a chain check reads stays consistent)."""
    from sqlalchemy import text

    with engine.begin() as con:
        last = con.execute(text("select seq, hash from audit_log where seq = :s"), {"s": keep}).one()
        con.execute(text("delete from audit_log where seq > :s"), {"s": keep})
        con.execute(text("update meta set value = :v where key = 'audit_head'"), {"v": f"{last.seq}:{last.hash}"})


def test_cutting_the_end_of_the_audit_log_is_detected(tmp_path):
    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    for i in range(8):
        reg.store.audit("search", "tester", None, {"i": i})
    assert reg.store.verify_audit() == []
    _cut_tail(store.engine, keep=4)  # DELETE FROM audit_log WHERE seq >= 5, and the head set to entry 4
    problems = reg.store.verify_audit()
    assert any("5 to 8 were removed" in p for p in problems), problems


def test_rewriting_the_whole_chain_after_an_entry_is_detected(tmp_path):
    from sqlalchemy import text

    from indexes.store.subjects import GENESIS, _entry_hash

    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    for i in range(6):
        reg.store.audit("search", "tester", None, {"i": i})
    # someone who knows the hash function edits entry 3 and recomputes every hash after it
    with store.engine.begin() as con:
        rows = con.execute(text("select seq, at, actor, action, subject_id, details from audit_log order by seq")).all()
        prev = GENESIS
        for r in rows:
            actor = "someone else" if r.seq == 3 else r.actor
            h = _entry_hash(r.seq, r.at, actor, r.action, r.subject_id, r.details, prev)
            con.execute(
                text("update audit_log set actor = :a, prev_hash = :p, hash = :h where seq = :s"),
                {"a": actor, "p": prev, "h": h, "s": r.seq},
            )
            prev = h
        con.execute(text("update meta set value = :v where key = 'audit_head'"), {"v": f"{rows[-1].seq}:{prev}"})
    problems = reg.store.verify_audit()
    assert any("entry 6 is not the entry that was signed" in p for p in problems), problems


def test_the_head_log_holds_one_signed_line_per_entry_and_forgeries_fail(tmp_path):
    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    for i in range(3):
        reg.store.audit("search", "tester", None, {"i": i})
    log = Path(root) / "audit-head.log"
    lines = log.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    head = reg.store.audit_entries()[-1]
    assert json.loads(lines[-1])["hash"] == head["hash"]
    # a line whose signature is not the workspace key's: someone who can append to the file, not sign
    forged = {**json.loads(lines[-1]), "seq": 9}
    with open(log, "a") as f:
        f.write(json.dumps(forged) + "\n")
    problems = reg.store.verify_audit()
    assert any("entry 9" in p and "valid signature" in p for p in problems), problems


def test_a_rolled_back_audit_entry_signs_no_head(tmp_path):
    from sqlalchemy.orm import Session

    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    reg.store.audit("search", "tester", None, {})
    with pytest.raises(RuntimeError), Session(store.engine) as s, s.begin():
        reg.store._audit(s, "search", "tester", None, {"rolled": "back"})
        raise RuntimeError("the change this entry recorded failed")
    assert len((Path(root) / "audit-head.log").read_text().splitlines()) == 1
    reg.store.audit("search", "tester", None, {})
    assert reg.store.verify_audit() == []
    assert len((Path(root) / "audit-head.log").read_text().splitlines()) == 2


def test_signed_heads_protect_a_postgresql_log_kept_with_its_workspace_folder(tmp_path, db_url):
    # the database may be a server (--db) while the workspace folder, with the key and the head
    # log, stays on the investigator's machine: a database writer cannot sign a head
    from scanner.auditlog import open_audit_log

    store, root = open_store(str(tmp_path / "ws"), db_url)
    log = open_audit_log(store, root)
    for i in range(8):
        log.audit("search", "tester", None, {"i": i})
    assert log.verify_audit() == []
    _cut_tail(store.engine, keep=4)
    assert any("5 to 8 were removed" in p for p in log.verify_audit())


def test_a_published_head_must_stay_in_the_log(tmp_path, db_url):
    from scanner.auditlog import open_audit_log

    store, root = open_store(str(tmp_path / "ws"), db_url)
    log = open_audit_log(store, root)
    for i in range(6):
        log.audit("search", "tester", None, {"i": i})
    published = log.head()  # what a signed report carries
    assert published == {"seq": 6, "hash": log.audit_entries()[-1]["hash"]}
    assert log.verify_audit(anchors=[(published["seq"], published["hash"])]) == []
    assert any("entry 6" in p and "published" in p for p in log.verify_audit(anchors=[(6, "0" * 64)]))


def test_concurrent_appends_each_sign_their_head(tmp_path):
    import threading

    from indexes.store.cases import CaseStore
    from indexes.store.subjects import RegistryStore

    store, root = open_store(str(tmp_path / "ws"))

    def append(worker):
        own = CaseStore(store.url)
        try:
            for i in range(10):
                RegistryStore(own.engine).audit("search", f"worker{worker}", None, {"i": i})
        finally:
            own.close()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg = open_registry(store, root)
    lines = (Path(root) / "audit-head.log").read_text().splitlines()
    assert sorted(json.loads(line)["seq"] for line in lines) == list(range(1, 41))  # every line whole
    assert reg.store.verify_audit() == []


def test_verify_erasure_reports_personal_data_left_in_the_audit_log(tmp_path, db_url):
    """The audit log is hash-chained: an entry cannot be edited, so verify-erasure says which still hold
    a URL's path or query, an e-mail address or a label (ids and counts only pass)."""
    from datetime import datetime

    store, root = open_store(str(tmp_path / "ws"), db_url)
    reg = open_registry(store, root)
    c = ConsentInput()
    consent = {
        "purpose": c.purpose,
        "scope": c.scope,
        "text_version": c.text_version,
        "text_sha256": c.text_sha256,
        "granted_at": datetime.now(UTC),
        "expires_at": None,
        "withdrawn_at": None,
        "jurisdiction": "test",
    }

    def subject():
        return reg.store.create_subject(
            label="Jane Doe", token_sha256="0" * 64, consent=consent, templates=[], actor="t"
        )[0]

    leaky, clean = subject(), subject()
    old_outcome = (
        "ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
        "/hooks/jane-doe?email=jane.doe@example.org (Caused by NewConnectionError('refused'))"
    )
    reg.store.audit(
        "webhook_delivery",
        "facetrace-service",
        leaky,
        {"owner": f"subject:{leaky}", "attempt": 1, "outcome": old_outcome, "delivered": False},
    )
    reg.store.audit(
        "webhook_delivery",
        "facetrace-service",
        leaky,
        {"owner": f"subject:{leaky}", "outcome": "refused: https://hooks.example.org/u/jane-doe is not public"},
    )
    reg.store.audit("note", "t", leaky, {"label": "Jane Doe"})
    reg.store.audit(
        "webhook_delivery",
        "facetrace-service",
        clean,
        {
            "owner": f"subject:{clean}",
            "attempt": 1,
            "outcome": "ConnectionError: [Errno 111] Connection refused",
            "delivered": False,
            "target": {"scheme": "https", "host": "hooks.example.org", "port": None, "url_hmac": "0" * 64},
        },
    )
    for sid in (leaky, clean):
        erase(reg, sid)
    problems = verify_erasure(reg, leaky)
    audit = [p for p in problems if p.startswith("audit entry")]
    assert len(audit) == 3, problems
    assert "webhook_delivery" in audit[0] and "outcome" in audit[0] and "label" in audit[2]
    assert not any("jane" in p.lower() for p in problems)  # the report itself repeats nothing personal
    assert verify_erasure(reg, clean) == []
