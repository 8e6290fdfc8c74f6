"""Benchmark: registry search latency by index kind and size, on random 128-d templates.

Random vectors (normal, scaled like dlib encodings) are the worst case for an approximate index
(no cluster structure), so IVF recall here is a lower bound. Prints, per size: build time,
single-query latency p50/p99 (one query at a time, as `match` does), batch throughput, and for IVF
recall@1 against the exact flat index on the same data, for two kinds of query: a noisy copy of an
enrolled template (a new photo of an enrolled person: the case that decides a finding) and a
fresh random vector (a stranger: its nearest template is barely nearer than the rest, and no
threshold accepts it). Then the IVF index's file size, and the time to write, hash (SHA-256, as
its manifest does) and read it back. Exact search is the baseline.

Usage: python benchmarks/bench_index.py [--sizes 10000,100000,1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexes.vectors import FlatIndex, IVFIndex, load_index, save_index  # noqa: E402


def bench(index, x, ids, queries):
    t = time.perf_counter()
    index.add(ids, x)
    build = time.perf_counter() - t
    lat = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None], 5)
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    _, found = index.search(queries, 5)
    batch = len(queries) / (time.perf_counter() - t)
    return build, np.percentile(lat, 50), np.percentile(lat, 99), batch, found[:, 0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    print(f"{'size':>9} {'index':16} {'build s':>8} {'p50 ms':>7} {'p99 ms':>7} {'batch q/s':>10} "
          f"{'recall@1':>8} {'strangers':>9}")
    for n in [int(s) for s in args.sizes.split(",")]:
        x = rng.normal(0, 0.09, (n, 128)).astype(np.float32)
        ids = np.arange(n, dtype=np.int64)
        # queries: noisy copies of enrolled templates, like a new photo of an enrolled person
        pick = rng.choice(n, args.queries, replace=False)
        q = x[pick] + rng.normal(0, 0.03, (args.queries, 128)).astype(np.float32)
        strangers = rng.normal(0, 0.09, (args.queries, 128)).astype(np.float32)
        flat_index, ivf_index = FlatIndex(), IVFIndex()
        flat = bench(flat_index, x, ids, q)
        print(f"{n:>9} {'faiss-flat':16} {flat[0]:8.2f} {flat[1]:7.3f} {flat[2]:7.3f} {flat[3]:10.0f} {'1.000':>8} "
              f"{'1.000':>9}")
        ivf = bench(ivf_index, x, ids, q)
        recall = float((ivf[4] == flat[4]).mean())
        far = float((ivf_index.search(strangers, 1)[1][:, 0] == flat_index.search(strangers, 1)[1][:, 0]).mean())
        print(f"{n:>9} {'faiss-ivf-flat':16} {ivf[0]:8.2f} {ivf[1]:7.3f} {ivf[2]:7.3f} {ivf[3]:10.0f} {recall:8.3f} "
              f"{far:9.3f}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.faiss"
            t = time.perf_counter()
            save_index(ivf_index, path, "bench", "1")  # write_index, then the manifest's SHA-256
            saved = time.perf_counter() - t
            t = time.perf_counter()
            load_index(path, "bench", "1")  # checks the SHA-256, then read_index
            loaded = time.perf_counter() - t
            print(f"{'':>9} {'ivf file':16} {path.stat().st_size / 2**20:.0f} MiB: saved (written and hashed) in "
                  f"{saved:.2f} s, loaded (hash checked, read) in {loaded:.2f} s")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
