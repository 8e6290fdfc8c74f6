"""Benchmark: scan throughput on a Dask cluster of 1, 2 and 4 workers, against a local scan.

Starts a `distributed.LocalCluster` of N single-threaded worker processes on this machine for
each N, scans the same photos with `scan(..., cluster=address)` and prints photos per second; the
baseline is a local scan with 2 worker processes, run first in the same process. On a 2-core
machine the cluster cannot beat two local processes (the figures say by how much the task
traffic costs); on several machines each one adds its cores (docs/deployment.md).

Usage: python benchmarks/bench_cluster.py [--folder DIR] [--limit N] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run(inputs: list[str], cluster: str | None) -> tuple[float, int]:
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    with tempfile.TemporaryDirectory() as ws:
        store, root = open_store(ws)
        t = time.perf_counter()
        summary = scan(inputs, store, ScanOptions(workers=2), workspace=root, cluster=cluster)
        elapsed = time.perf_counter() - t
        store.close()
    return elapsed, summary.counts["faces"]


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"photo folder not found: {args.folder} (give --folder or set FACETRACE_FACEDATA)")
    warnings.simplefilter("ignore")
    from distributed import LocalCluster

    files = sorted(p for p in args.folder.rglob("*") if p.is_file())[: args.limit] if args.limit else None
    inputs = [str(f) for f in files] if files else [str(args.folder)]
    n = len(files) if files else sum(1 for p in args.folder.rglob("*") if p.is_file())
    print(f"# {n} photos from {args.folder}; {os.cpu_count()} CPUs")
    print(f"{'run':40} {'seconds':>8} {'photos/s':>9} {'faces':>6} {'vs local':>9}")
    base, faces = run(inputs, None)
    print(f"{'local scan, 2 worker processes':40} {base:8.1f} {n / base:9.2f} {faces:6d} {1.0:8.2f}x", flush=True)
    for workers in args.workers:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            t, faces = run(inputs, c.scheduler_address)
        name = f"Dask LocalCluster, {workers} worker{'s' if workers > 1 else ''}"
        print(f"{name:40} {t:8.1f} {n / t:9.2f} {faces:6d} {base / t:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
