"""Issue 19 item 3: erasure must not leave biometric data in SQLite's write-ahead log while
verify-erasure says it is gone. Before the fix, with another connection holding a read
transaction, `PRAGMA wal_checkpoint(TRUNCATE)` failed silently: verify-erasure passed while
facetrace.db-wal still held the label, the encodings and the photo hashes."""

from __future__ import annotations

import sqlite3
import struct

import numpy as np

from scanner.consent import ConsentInput
from scanner.pipeline import open_store
from scanner.registry import enroll, erase, open_registry, verify_erasure
from tests.conftest import facedata_path

LABEL = "label-that-must-go-7f3a"


def _photos(n=3):
    lfw = facedata_path("lfw_deepfunneled")
    person = next(p for p in sorted(lfw.iterdir()) if p.is_dir() and len(list(p.iterdir())) >= n)
    return [(p.name, p.read_bytes()) for p in sorted(person.iterdir())[:n]]


def _holds(path, needles) -> list[bytes]:
    data = path.read_bytes() if path.exists() else b""
    return [n for n in needles if n in data]


def test_erasure_waits_for_readers_and_verify_checks_the_wal(tmp_path, monkeypatch):
    from scanner import registry as registry_module

    monkeypatch.setattr(registry_module, "CHECKPOINT_PATIENCE_S", 0.5)  # a reader that never lets go
    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    result = enroll(reg, _photos(), ConsentInput(), label=LABEL, search_earlier=False)
    _, vectors, _ = reg.store.template_vectors(reg.embedder, reg.embedder_version, result.subject_id)
    needles = [LABEL.encode()] + [struct.pack("<128d", *np.asarray(v, dtype=np.float64)) for v in vectors[:1]]
    reader = sqlite3.connect(tmp_path / "ws" / "facetrace.db")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM audit_log").fetchone()  # a read transaction pins the WAL
    out = erase(reg, result.subject_id, token=result.deletion_token)
    wal = tmp_path / "ws" / "facetrace.db-wal"
    assert out["pending"], "the erasure cannot be complete while a reader pins the write-ahead log"
    problems = verify_erasure(reg, result.subject_id)
    assert any("write-ahead log" in p for p in problems), problems  # not "erased" while the WAL holds it
    reader.rollback()
    reader.close()
    assert verify_erasure(reg, result.subject_id) == []  # completes the checkpoint now that it can
    assert not _holds(wal, needles) and not _holds(tmp_path / "ws" / "facetrace.db", needles)
    kinds = [e["action"] for e in reg.store.audit_entries(result.subject_id)]
    assert "erasure_pending" in kinds and "erasure_completed" in kinds
    store.close()


def test_an_erasure_without_readers_completes_at_once(tmp_path):
    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    result = enroll(reg, _photos(), ConsentInput(), label=LABEL, search_earlier=False)
    out = erase(reg, result.subject_id, token=result.deletion_token)
    assert not out["pending"]
    assert not _holds(tmp_path / "ws" / "facetrace.db-wal", [LABEL.encode()])
    assert verify_erasure(reg, result.subject_id) == []
    store.close()
