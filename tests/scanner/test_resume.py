"""Scans survive being killed: SIGKILL part-way, resume, and get what an uninterrupted scan gets.

Also two scans writing into one workspace at once. Uses a subset of lfw_deepfunneled (the first
25 people, 163 photos) so the test stays short; benchmarks/resume_lfw.py does the full set.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import facedata_path, run_scan

pytestmark = pytest.mark.facedata

# About 340 photos: more than FLUSH_EVERY_MEMBERS (200), so at least one batch is stored before
# the scan ends, however fast the machine (with 163 photos the ONNX engine finished a scan before
# its first batch was written, and there was nothing to kill part-way)
PEOPLE = 50


def _facetrace() -> list[str]:
    exe = Path(sys.executable).with_name("facetrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    src = facedata_path("lfw_deepfunneled")
    dst = tmp_path_factory.mktemp("resume") / "lfw"
    for person in sorted(p for p in src.iterdir() if p.is_dir())[:PEOPLE]:
        shutil.copytree(person, dst / person.name)
    return dst


def _members(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT m.seq, m.logical_path, m.sha256, m.status, m.reason, m.duplicate_of, i.phash, i.dhash "
            "FROM members m LEFT JOIN images i ON i.member_id = m.id ORDER BY m.seq"
        ).fetchall()
        faces = con.execute(
            "SELECT m.seq, f.face_index, f.top, f.right, f.bottom, f.left, f.encoding "
            "FROM faces f JOIN members m ON m.id = f.member_id ORDER BY m.seq, f.face_index"
        ).fetchall()
        return rows, faces
    finally:
        con.close()


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM members").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_a_scan_killed_part_way_resumes_without_redoing_finished_members(subset, tmp_path):
    from scanner.pipeline import FLUSH_EVERY_MEMBERS

    total = sum(1 for p in subset.rglob("*") if p.is_file())
    assert total > 1.5 * FLUSH_EVERY_MEMBERS
    run_scan([subset], tmp_path / "whole", workers=2)  # the uninterrupted reference
    ws = tmp_path / "killed"
    db = ws / "facetrace.db"
    proc = subprocess.Popen(
        [*_facetrace(), "scan", "--workspace", str(ws), "--quiet", "--workers", "2", str(subset)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while _count(db) < total // 3:
        assert proc.poll() is None, "the scan finished before it could be killed"
        assert time.monotonic() < deadline, "the scan stored nothing in time"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-flight
    proc.wait()
    stored = _count(db)
    assert 0 < stored < total

    out = subprocess.run(
        [*_facetrace(), "scan", "--workspace", str(ws), "--quiet", "--workers", "2", str(subset)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    first_line = out.stdout.splitlines()[0]
    # every stored member was taken as it was; only the others were analysed
    assert f"resumed: {stored} members taken as stored, {total - stored} analysed now" in first_line

    con = sqlite3.connect(db)
    scans = con.execute("SELECT status FROM scans").fetchall()
    con.close()
    assert scans == [("finished",)]  # resumed in place: one scan, not two
    whole_rows, whole_faces = _members(tmp_path / "whole" / "facetrace.db")
    rows, faces = _members(db)
    assert len(rows) == total == len({r[0] for r in rows})  # every member once
    assert rows == whole_rows  # paths, hashes, statuses, perceptual hashes
    assert faces == whole_faces  # boxes and encodings, bit for bit


def test_a_second_run_of_a_finished_scan_starts_a_new_one(subset, tmp_path):
    small = tmp_path / "small"
    shutil.copytree(next(p for p in subset.iterdir() if p.is_dir()), small)
    first, _ = run_scan([small], tmp_path / "ws", workers=1)
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    store, _root = open_store(str(tmp_path / "ws"))
    again = scan([str(small)], store, ScanOptions(workers=1), resume=True)
    assert again.scan_id != first.scan_id and again.resumed_members == 0 and again.analysed > 0


@pytest.mark.slow
def test_two_concurrent_scans_and_an_enrollment_into_one_workspace(subset, tmp_path, db_url):
    """Two scans and an enrollment at once, on SQLite and PostgreSQL: every member stored once,
    the subject and its templates and hashes exactly once, the audit chain unbroken."""
    import json

    from sqlalchemy import create_engine, text

    people = sorted(p for p in subset.iterdir() if p.is_dir())
    a, b = tmp_path / "a", tmp_path / "b"
    for i, person in enumerate(people[:10]):
        shutil.copytree(person, (a if i % 2 else b) / person.name)
    enrolled = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())[:3]
    ws = tmp_path / "ws"
    db = ["--db", db_url] if db_url else []
    commands = [
        [*_facetrace(), "scan", "--workspace", str(ws), *db, "--quiet", "--workers", "1", str(d)] for d in (a, b)
    ]
    commands.append(
        [*_facetrace(), "enroll", *map(str, enrolled), "--consent", "default", "--json", "--workspace", str(ws), *db]
    )
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    subject = json.loads(outs[2][0])["subject_id"]
    engine = create_engine(db_url or f"sqlite:///{ws / 'facetrace.db'}")
    try:
        with engine.connect() as con:
            if engine.dialect.name == "sqlite":
                assert con.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            per_scan = dict(
                con.execute(
                    text(
                        "SELECT s.status || ':' || count(m.id), count(m.id) FROM scans s "
                        "JOIN members m ON m.scan_id = s.id GROUP BY s.id, s.status"
                    )
                ).all()
            )
            dupes = con.execute(
                text(
                    "SELECT count(*) FROM (SELECT scan_id, seq FROM members GROUP BY scan_id, seq "
                    "HAVING count(*) > 1) AS d"
                )
            ).scalar()
            subjects = con.execute(text("SELECT id FROM subjects")).scalars().all()
            templates = con.execute(text("SELECT count(*), count(DISTINCT photo_sha256) FROM templates")).one()
            hashes = con.execute(
                text(
                    "SELECT count(*) FROM (SELECT template_id, variant FROM template_hashes "
                    "GROUP BY template_id, variant HAVING count(*) > 1) AS d"
                )
            ).scalar()
            n_hashes = con.execute(text("SELECT count(*) FROM template_hashes")).scalar()
            changes = con.execute(text("SELECT value FROM meta WHERE key = 'registry_changes'")).scalar()
    finally:
        engine.dispose()
    expected = sorted(sum(1 for p in d.rglob("*") if p.is_file()) for d in (a, b))
    assert sorted(per_scan.values()) == expected and all(k.startswith("finished:") for k in per_scan)
    assert dupes == 0
    assert subjects == [subject] and tuple(templates) == (3, 3) and hashes == 0 and n_hashes >= 3 * 8
    assert changes == "1"
    audit = subprocess.run(
        [*_facetrace(), "registry", "audit", "--verify", "--workspace", str(ws), *db],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
