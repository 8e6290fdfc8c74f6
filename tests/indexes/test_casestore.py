from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexes.store.cases import CaseStore, pack_encoding, unpack_encoding


@given(st.lists(st.floats(allow_nan=False, width=64), min_size=128, max_size=128))
def test_encoding_round_trip_is_exact(values):
    assert unpack_encoding(pack_encoding(values)) == tuple(values)


def test_scan_members_round_trip(tmp_path, db_url):
    store = CaseStore(db_url or f"sqlite:///{tmp_path / 'db.sqlite'}")
    now = datetime.now(UTC)
    store.create_scan(
        "s1",
        now,
        "0.1",
        {"embedder": "x"},
        {"detector": "hog"},
        {"hostname": "h"},
        [{"path": "d", "abspath": "/d", "kind": "folder", "size": None, "sha256": None}],
    )
    enc = tuple(float(i) / 7 for i in range(128))
    store.add_members(
        "s1",
        [
            {
                "seq": 0,
                "logical_path": "d/a.jpg",
                "relpath": "a.jpg",
                "size": 10,
                "sha256": "ab" * 32,
                "mime": "image/jpeg",
                "kind": "image",
                "status": "ok",
                "reason": None,
                "duplicate_of": None,
                "image": {
                    "width": 2,
                    "height": 3,
                    "format": "JPEG",
                    "orientation": 1,
                    "phash": "0" * 16,
                    "dhash": "f" * 16,
                    "hasher": "h",
                    "hasher_version": "1",
                },
                "faces": [
                    {
                        "top": 1,
                        "right": 2,
                        "bottom": 3,
                        "left": 0,
                        "encoding": enc,
                        "embedder": "e",
                        "embedder_version": "1",
                        "detector": "hog",
                    }
                ],
            },
            {
                "seq": 1,
                "logical_path": "d/b.txt",
                "relpath": "b.txt",
                "size": 1,
                "sha256": None,
                "mime": "",
                "kind": "other",
                "status": "unreadable",
                "reason": "because",
                "duplicate_of": None,
            },
        ],
    )
    store.finish_scan("s1", now, "finished", {"files": 2})
    scan = store.get_scan()
    assert scan["id"] == "s1" and scan["status"] == "finished" and scan["counts"] == {"files": 2}
    members = list(store.iter_members("s1", batch=1))
    assert [m["relpath"] for m in members] == ["a.jpg", "b.txt"]
    assert members[0]["faces"][0]["encoding"] == enc
    assert members[1]["reason"] == "because"
    assert store.analysis_by_sha("s1", "ab" * 32)["image"]["width"] == 2
    store.close()


def test_a_long_read_does_not_hold_the_write_lock(tmp_path):
    # A scan streams its faces to clustering through an open read; another process (a second scan,
    # the HTTP service) must still be able to write meanwhile. Reads used to begin with BEGIN
    # IMMEDIATE and so held SQLite's write lock for as long as the generator was open: the second
    # scan waited out busy_timeout and failed with "database is locked" (seen in CI).
    import sqlite3

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    reader, writer = CaseStore(url), CaseStore(url)
    now = datetime.now(UTC)
    scan = ("s1", now, "0.1", {}, {}, {}, [])
    reader.create_scan(*scan)
    reader.add_members(
        "s1",
        [
            {
                "seq": i,
                "logical_path": f"{i}",
                "relpath": f"{i}",
                "size": 1,
                "sha256": f"{i:064x}",
                "mime": "",
                "kind": "other",
                "status": "ok",
                "reason": None,
                "duplicate_of": None,
            }
            for i in range(3)
        ],
    )
    rows = reader.member_hashes("s1")
    assert next(rows)[1] == f"{0:064x}"  # the read is open here, its transaction begun
    raw = sqlite3.connect(tmp_path / "db.sqlite", timeout=0)  # fails at once if anyone holds the write lock
    raw.execute("BEGIN IMMEDIATE")
    raw.rollback()
    raw.close()
    writer.create_scan("s2", *scan[1:])
    assert len(list(rows)) == 2  # the open read goes on from its snapshot
    assert {s["id"] for s in writer.list_scans()} == {"s1", "s2"}
    reader.close()
    writer.close()


@pytest.mark.slow
def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path, db_url):
    # two scans started together on a new workspace: SQLite answered "database is locked" at once
    # to the WAL switch (no busy handler), and on PostgreSQL both created the same tables
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    code = (
        "import sys, time\n"
        "from indexes.store.cases import CaseStore\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "CaseStore(sys.argv[1]).close()\n"
    )
    for attempt in range(4 if db_url is None else 2):
        url = db_url if db_url else f"sqlite:///{tmp_path / f'new{attempt}.db'}"
        if db_url and attempt:  # a fresh database each round
            from sqlalchemy import create_engine, text

            eng = create_engine(db_url)
            with eng.begin() as con:
                con.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            eng.dispose()
        start = time.time() + 1.0
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url, str(start)], cwd=REPO, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
