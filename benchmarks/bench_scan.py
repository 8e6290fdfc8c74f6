"""Benchmark: `scan` throughput against face_recognition's own per-image loop, on the same photos.

Prints images per second for:
  baseline   face_recognition.load_image_file + face_locations + face_encodings, one image at a
             time in this process (what a user of the library would write)
  scan w=1   facetrace's scan pipeline, one worker (no pool)
  scan w=2   facetrace's scan pipeline, two worker processes
All three run in this process on the same photos, so the ratios hold on any machine.

Usage: python benchmarks/bench_scan.py [--folder DIR] [--limit N]
Default folder: ../shared/facedata/lfw_deepfunneled (or $FACETRACE_FACEDATA/lfw_deepfunneled).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def photos(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return files[:limit] if limit else files


def baseline(files: list[Path]) -> tuple[float, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition
    faces = 0
    t = time.perf_counter()
    for f in files:
        img = face_recognition.load_image_file(str(f))
        locs = face_recognition.face_locations(img)
        faces += len(face_recognition.face_encodings(img, known_face_locations=locs))
    return time.perf_counter() - t, faces


def facetrace_scan(folder_or_files: list[str], workers: int) -> tuple[float, int]:
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    with tempfile.TemporaryDirectory() as ws:
        store, root = open_store(ws)
        t = time.perf_counter()
        summary = scan(folder_or_files, store, ScanOptions(workers=workers), workspace=root)
        elapsed = time.perf_counter() - t
        store.close()
    return elapsed, summary.counts["faces"]


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N photos (sorted)")
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"photo folder not found: {args.folder} (give --folder or set FACETRACE_FACEDATA)")
    files = photos(args.folder, args.limit)
    inputs = [str(f) for f in files] if args.limit else [str(args.folder)]
    n = len(files)
    print(f"# {n} photos from {args.folder}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    rows = []
    t, faces = baseline(files)
    rows.append(("face_recognition loop (1 process)", t, faces))
    for w in (1, 2):
        t, faces = facetrace_scan(inputs, w)
        rows.append((f"facetrace scan, {w} worker{'s' if w > 1 else ''}", t, faces))
    base = rows[0][1]
    print(f"{'run':36} {'seconds':>8} {'images/s':>9} {'faces':>6} {'vs loop':>8}")
    for name, t, faces in rows:
        print(f"{name:36} {t:8.1f} {n / t:9.2f} {faces:6d} {base / t:7.2f}x")


if __name__ == "__main__":
    main()
