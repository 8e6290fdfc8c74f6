"""indexes/store/acquisitions.py: records round-trip on both backends; a workspace at revision 0001 gains the table."""

from __future__ import annotations

from sqlalchemy import inspect, text

from indexes.store.acquisitions import AcquisitionStore
from indexes.store.cases import CaseStore
from indexes.store.migrations import HEAD


def _url(tmp_path, db_url):
    return db_url or f"sqlite:///{tmp_path / 'db.sqlite'}"


def _record(i: str, status="complete", sha="ab" * 32, path="/ws/acquired/x/kit.zip", parent=None) -> dict:
    return {
        "id": i,
        "requested_url": f"https://example.org/{i}",
        "final_url": "https://cdn.example.org/kit.zip",
        "status": status,
        "reason": None if status == "complete" else "HTTP 404 Not Found",
        "kind": "file",
        "parent_id": parent,
        "sha256": sha if status == "complete" else None,
        "bytes": 123,
        "path": path,
        "started_at": f"2027-01-15T10:00:0{i[-1]}.000+00:00",
        "finished_at": "2027-01-15T10:00:09.000+00:00",
        "requests": [{"attempt": 1, "headers": [["ETag", '"v1"']]}],
    }


def test_records_round_trip_and_are_found_by_bytes_or_path(tmp_path, db_url):
    store = CaseStore(_url(tmp_path, db_url))
    acq = AcquisitionStore(store.engine)
    acq.add(_record("a1"), "11" * 32)
    acq.add(_record("a2", status="failed"), "22" * 32)
    acq.add(_record("a3", sha="cd" * 32, path="/elsewhere/kit.zip", parent="a1"), "33" * 32)
    assert acq.get("a1")["record"] == _record("a1") and acq.get("a1")["record_sha256"] == "11" * 32
    assert acq.get("missing") is None
    assert [r["id"] for r in acq.for_file("ab" * 32, None)] == ["a1"]  # complete ones only
    assert [r["id"] for r in acq.for_file(None, "/elsewhere/kit.zip")] == ["a3"]
    assert [r["id"] for r in acq.for_file("ab" * 32, "/elsewhere/kit.zip")] == ["a1", "a3"]
    assert acq.for_file(None, None) == []
    assert [r["id"] for r in acq.list()] == ["a1", "a2", "a3"] and acq.get("a2")["path"] is None
    assert acq.get("a3")["parent_id"] == "a1"
    store.close()


def test_a_workspace_at_revision_0001_gains_the_acquisitions_table(tmp_path, db_url):
    url = _url(tmp_path, db_url)
    store = CaseStore(url)
    with store.engine.begin() as conn:  # as facetrace left it before acquisitions existed
        conn.execute(text("DROP TABLE acquisitions"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('kept', 'yes')"))
    store.close()
    store = CaseStore(url)
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        kept = conn.execute(text("SELECT value FROM meta WHERE key = 'kept'")).scalar()
    assert inspect(store.engine).has_table("acquisitions") and version == HEAD and kept == "yes"
    AcquisitionStore(store.engine).add(_record("a1"), "11" * 32)
    store.close()
