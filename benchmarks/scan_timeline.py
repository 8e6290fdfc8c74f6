"""Benchmark: one scan of a folder in this process, with its timeline and where its CPU went.

Runs `scanner.pipeline.scan` on the folder (default: ../shared/facedata/lfw_deepfunneled) with
N workers into a temporary workspace and prints: the total time from the call to its return,
when the first and the last result came, the time after the last (the serial tail: clustering,
profiling, closing), the steady milliseconds per photo between 10% and 90% of the results, and
the CPU seconds of this (main) process and of its workers. docs/performance.md's table of this
session's changes was measured with it, each change against the code without it.

Usage: python benchmarks/scan_timeline.py [--folder DIR] [--workers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def timeline(folder: Path, workers: int) -> dict:
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    stamps: list[float] = []
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as ws:
        store, root = open_store(ws)
        t0, c0 = time.perf_counter(), time.process_time()
        summary = scan(
            [str(folder)],
            store,
            ScanOptions(workers=workers),
            workspace=root,
            on_result=lambda r: stamps.append(time.perf_counter()),
        )
        t1, c1 = time.perf_counter(), time.process_time()
        store.close()
    time.sleep(0.5)  # the workers exit on their own after the last member: let them be reaped
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = len(stamps)
    lo, hi = stamps[n // 10], stamps[(9 * n) // 10]
    return {
        "total": t1 - t0,
        "first": stamps[0] - t0,
        "last": stamps[-1] - t0,
        "tail": t1 - stamps[-1],
        "steady_ms": 1000 * (hi - lo) / max((9 * n) // 10 - n // 10, 1),
        "main_cpu": c1 - c0,
        "workers_cpu": (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
        "faces": summary.counts["faces"],
        "members": n,
    }


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"photo folder not found: {args.folder} (give --folder or set FACETRACE_FACEDATA)")
    print(
        f"{'total s':>8} {'first s':>8} {'last s':>8} {'tail s':>7} {'steady ms/photo':>16} {'main CPU s':>11} "
        f"{'workers CPU s':>14} {'faces':>6}"
    )
    for _ in range(args.repeat):
        r = timeline(args.folder, args.workers)
        print(
            f"{r['total']:8.2f} {r['first']:8.2f} {r['last']:8.2f} {r['tail']:7.2f} {r['steady_ms']:16.2f} "
            f"{r['main_cpu']:11.2f} {r['workers_cpu']:14.1f} {r['faces']:6d}",
            flush=True,
        )


if __name__ == "__main__":
    main()
