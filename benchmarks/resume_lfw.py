"""Benchmark: kill a scan of all of lfw_deepfunneled with SIGKILL part-way, resume it, compare.

Runs `facetrace scan` on ../shared/facedata/lfw_deepfunneled (1,896 photos) into a temporary
workspace, kills the CLI and its workers once `--kill-at` of the members are stored, runs the same
command again, and prints how many members were taken as stored, how many analysed again, the
times, and whether every member, hash, box and encoding equals those of an uninterrupted scan.

Usage: python benchmarks/resume_lfw.py [--folder DIR] [--kill-at 0.5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def facetrace() -> list[str]:
    exe = Path(sys.executable).with_name("facetrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


def members(db: Path):
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT m.seq, m.logical_path, m.sha256, m.status, i.phash, i.dhash FROM members m "
            "LEFT JOIN images i ON i.member_id = m.id ORDER BY m.seq"
        ).fetchall()
        faces = con.execute(
            "SELECT m.seq, f.face_index, f.top, f.right, f.bottom, f.left, f.encoding FROM faces f "
            "JOIN members m ON m.id = f.member_id ORDER BY m.seq, f.face_index"
        ).fetchall()
        return rows, faces
    finally:
        con.close()


def count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM members").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--kill-at", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    total = sum(1 for p in args.folder.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cmd = [*facetrace(), "scan", "--quiet", "--workers", str(args.workers), str(args.folder)]
        t = time.perf_counter()
        subprocess.run([*cmd, "--workspace", str(tmp / "whole")], check=True, capture_output=True)
        whole_s = time.perf_counter() - t
        ws = tmp / "killed"
        t = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, "--workspace", str(ws)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        while count(ws / "facetrace.db") < total * args.kill_at and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_s = time.perf_counter() - t
        stored = count(ws / "facetrace.db")
        t = time.perf_counter()
        out = subprocess.run([*cmd, "--workspace", str(ws)], check=True, capture_output=True, text=True)
        resume_s = time.perf_counter() - t
        same = members(tmp / "whole" / "facetrace.db") == members(ws / "facetrace.db")
        print(f"{total} members; uninterrupted scan {whole_s:.1f} s")
        print(f"killed with SIGKILL after {killed_s:.1f} s with {stored} members stored")
        print(f"resumed in {resume_s:.1f} s: {out.stdout.splitlines()[0]}")
        print(f"members, hashes, boxes and encodings identical to the uninterrupted scan: {same}")


if __name__ == "__main__":
    main()
