"""Benchmark: a million-subject registry in a workspace (SQLite), end to end.

Builds a registry of N subjects, one template each (a random 128-d vector scaled like dlib
encodings) and H photo hashes per template (as enrollment stores 18 variants per photo), written
straight into the registry's tables; then measures, as `facetrace` runs them:
- opening the registry the first time (every id checked against the database, the index files
  built), then, in a new process, again (the files' change count is current: loaded from their
  segments, checksums checked), and that process's memory;
- erasing one subject: database rows, index segments, compaction, each timed; then
  `verify-erasure` (it reads every index file on disk);
- matching one face: the nearest templates and their subjects (looked up in the database).

Usage: python benchmarks/bench_registry_scale.py [--subjects 1000000] [--hashes 18] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from indexes.store.subjects import Consent, Subject, Template, TemplateHash
from scanner.pipeline import open_store


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (VmHWM: its peak; unlike ru_maxrss, not inherited from the
    parent that started it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(ws: Path, n: int, per: int) -> None:
    from scanner.fingerprints.faces import EMBEDDER, engine_versions
    from scanner.fingerprints.perceptual import NAME as HASHER

    version = engine_versions()["face_recognition"]
    store, _ = open_store(str(ws))
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    chunk = 20_000
    t = time.perf_counter()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA secure_delete=OFF")  # building only; the registry sets it on open
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            sids = [secrets.token_hex(8) for _ in range(m)]
            conn.execute(
                insert(Subject),
                [
                    {"id": s, "label": None, "status": "active", "created_at": now, "token_sha256": "0" * 64}
                    for s in sids
                ],
            )
            conn.execute(
                insert(Consent),
                [
                    {
                        "subject_id": s,
                        "purpose": "bench",
                        "scope": "bench",
                        "text_version": "bench",
                        "text_sha256": "0" * 64,
                        "granted_at": now,
                        "jurisdiction": "EU",
                    }
                    for s in sids
                ],
            )
            enc = rng.normal(0, 0.09, (m, 128)).astype("<f8")
            tids = list(range(start + 1, start + m + 1))
            conn.execute(
                insert(Template),
                [
                    {
                        "id": tid,
                        "subject_id": s,
                        "photo_sha256": secrets.token_hex(32),
                        "encoding": e.tobytes(),
                        "embedder": EMBEDDER,
                        "embedder_version": version,
                        "created_at": now,
                    }
                    for tid, s, e in zip(tids, sids, enc, strict=False)
                ],
            )
            if per:
                codes = rng.integers(0, 2**63, (m, per), dtype=np.int64)
                conn.execute(
                    insert(TemplateHash),
                    [
                        {
                            "template_id": tid,
                            "subject_id": s,
                            "variant": f"v{j}",
                            "phash": f"{int(c):016x}",
                            "hasher": HASHER,
                        }
                        for tid, s, row in zip(tids, sids, codes, strict=False)
                        for j, c in enumerate(row)
                    ],
                )
            if start % 200_000 == 0:
                print(f"  built {start + m:,} subjects in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    size = sum(p.stat().st_size for p in ws.glob("facetrace.db*"))
    print(
        f"registry of {n:,} subjects, {n:,} templates, {n * per:,} hashes written in "
        f"{time.perf_counter() - t:.0f} s; database {size / 2**30:.2f} GiB"
    )


def measure(ws: Path) -> None:
    """In a fresh process: open, match one face, erase one subject, verify the erasure."""
    from scanner import registry as reg_mod

    t = time.perf_counter()
    store, root = open_store(str(ws))
    registry = reg_mod.open_registry(store, root)
    print(
        f"open (a new process, index files current): {time.perf_counter() - t:.2f} s, "
        f"{len(registry.index):,} templates ({registry.index.faces.kind}), rebuilt "
        f"{registry.index.rebuilt or 'nothing'}; process RSS {rss_mib():.0f} MiB"
    )
    q = np.random.default_rng(3).normal(0, 0.09, (1, 128)).astype(np.float32)
    registry.index.search_faces(q, 32)  # warm
    t = time.perf_counter()
    dist, tids = registry.index.search_faces(q, 32)
    mid = time.perf_counter()
    subjects = registry.index.subjects_of(tids[tids >= 0].tolist())
    print(
        f"match one face: 32 nearest templates in {(mid - t) * 1000:.1f} ms, their {len(subjects)} subjects "
        f"looked up in {(time.perf_counter() - mid) * 1000:.1f} ms"
    )
    victim = subjects[int(tids[0, 0])]
    timings = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timings[name] = timings.get(name, 0) + time.perf_counter() - t0

        return wrapper

    registry.store.erase = timed("database rows", registry.store.erase)
    registry.index.remove_templates = timed("index segments", registry.index.remove_templates)
    reg_mod._compact_database = timed("compaction", reg_mod._compact_database)
    t = time.perf_counter()
    receipt = reg_mod.erase(registry, victim, actor="bench")
    total = time.perf_counter() - t
    parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items())
    print(
        f"erase one subject ({receipt['deleted']['templates']} template, {receipt['deleted']['photo_hashes']} "
        f"hashes): {total * 1000:.0f} ms ({parts})"
    )
    t = time.perf_counter()
    problems = reg_mod.verify_erasure(registry, victim)
    print(f"verify-erasure (reads every index file): {problems or 'complete'} in {time.perf_counter() - t:.2f} s")
    print(f"peak RSS of this process: {rss_mib('VmHWM'):.0f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=1_000_000)
    ap.add_argument("--hashes", type=int, default=18, help="photo hashes per template")
    ap.add_argument("--keep", type=Path, help="build the workspace here and keep it (reused if present)")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.measure:
        return measure(args.keep)
    ws = args.keep or Path(tempfile.mkdtemp(prefix="ft-registry-"))
    try:
        if not (ws / "facetrace.db").exists():
            build(ws, args.subjects, args.hashes)
        from scanner import registry as reg_mod

        t = time.perf_counter()
        store, root = open_store(str(ws))
        registry = reg_mod.open_registry(store, root)
        print(
            f"first open (ids checked against the database unless the files carry its change count; stale files rebuilt): "
            f"{time.perf_counter() - t:.2f} s, {len(registry.index):,} templates, rebuilt "
            f"{registry.index.rebuilt or 'nothing'}; peak RSS {rss_mib('VmHWM'):.0f} MiB"
        )
        del registry, store
        sys.stdout.flush()
        subprocess.run([sys.executable, __file__, "--measure", "--keep", str(ws)], check=True)
    finally:
        if args.keep is None:
            shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    main()
