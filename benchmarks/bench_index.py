"""Benchmark: registry search latency by index kind and size, on random 128-d templates.

Random vectors (normal, scaled like dlib encodings) are the worst case for an approximate index
(no cluster structure), so IVF recall here is a lower bound. Prints, per size: build time,
single-query latency p50/p99 (one query at a time, as `match` does), batch throughput, and for IVF
recall@1 against the exact flat index on the same data, for two kinds of query: a noisy copy of an
enrolled template (a new photo of an enrolled person: the case that decides a finding) and a
fresh random vector (a stranger: its nearest template is barely nearer than the rest, and no
threshold accepts it). Then the IVF index's files (segmented: indexes/search/segments.py): their size,
the time to write and hash them all and to read them back, and the time to remove one subject
(3 templates) and save the change, which rewrites only the touched segments; afterwards no file
of the index holds the removed ids (as `registry verify-erasure` checks). Last, the registry's
hash index at the size of a million-subject registry (18 hashes per photo): removing one
enrollment's hashes and saving, and one range query. Exact search is the baseline.

Usage: python benchmarks/bench_index.py [--sizes 10000,100000,1000000] [--queries 200] [--hashes 18000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexes.search.hashes import ShardedHashIndex, load_hash_index, save_hash_index, stored_hash_ids
from indexes.search.segments import files as index_files
from indexes.search.vectors import FlatIndex, IVFIndex, load_index, save_index, stored_ids


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
    ap.add_argument("--hashes", type=int, default=18_000_000, help="hash index size (0: skip)")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    print(
        f"{'size':>9} {'index':16} {'build s':>8} {'p50 ms':>7} {'p99 ms':>7} {'batch q/s':>10} "
        f"{'recall@1':>8} {'strangers':>9}"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        x = rng.normal(0, 0.09, (n, 128)).astype(np.float32)
        ids = np.arange(n, dtype=np.int64)
        # queries: noisy copies of enrolled templates, like a new photo of an enrolled person
        pick = rng.choice(n, args.queries, replace=False)
        q = x[pick] + rng.normal(0, 0.03, (args.queries, 128)).astype(np.float32)
        strangers = rng.normal(0, 0.09, (args.queries, 128)).astype(np.float32)
        flat_index, ivf_index = FlatIndex(), IVFIndex()
        flat = bench(flat_index, x, ids, q)
        print(
            f"{n:>9} {'faiss-flat':16} {flat[0]:8.2f} {flat[1]:7.3f} {flat[2]:7.3f} {flat[3]:10.0f} {'1.000':>8} "
            f"{'1.000':>9}"
        )
        ivf = bench(ivf_index, x, ids, q)
        recall = float((ivf[4] == flat[4]).mean())
        far = float((ivf_index.search(strangers, 1)[1][:, 0] == flat_index.search(strangers, 1)[1][:, 0]).mean())
        print(
            f"{n:>9} {'faiss-ivf-flat':16} {ivf[0]:8.2f} {ivf[1]:7.3f} {ivf[2]:7.3f} {ivf[3]:10.0f} {recall:8.3f} "
            f"{far:9.3f}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.faiss"
            t = time.perf_counter()
            save_index(ivf_index, path, "bench", "1")  # every segment written and hashed, then the manifest
            saved = time.perf_counter() - t
            t = time.perf_counter()
            loaded_index = load_index(path, "bench", "1")  # every SHA-256 checked, lists filled
            loaded = time.perf_counter() - t
            size = sum(p.stat().st_size for p in index_files(path))
            print(
                f"{'':>9} {'ivf files':16} {size / 2**20:.0f} MiB: saved (written and hashed) in "
                f"{saved:.2f} s, loaded (hashes checked, read) in {loaded:.2f} s"
            )
            del loaded_index
            for label in ("the index just saved", "an index just loaded"):
                index = ivf_index if label == "the index just saved" else load_index(path, "bench", "1")
                held = index.ids()
                subject = held[rng.choice(len(held), 3, replace=False)]  # one subject's templates
                t = time.perf_counter()
                removed = index.remove(subject)
                mid = time.perf_counter()
                manifest = save_index(index, path, "bench", "1")
                done = time.perf_counter()
                left = [name for name, got in stored_ids(path).items() if got is None or np.isin(subject, got).any()]
                changed = len(index.saved_manifest["segments"]) and sum(
                    1 for f in index_files(path) if f.name.endswith(f".{manifest['generation']}.seg")
                )
                print(
                    f"{'':>9} {'remove subject':16} from {label}: {removed} templates removed in "
                    f"{(mid - t) * 1000:.1f} ms, change saved in {(done - mid) * 1000:.0f} ms ({changed} of "
                    f"{len(manifest['segments'])} segments rewritten); files still holding them: {left or 'none'}"
                )
                del index
        sys.stdout.flush()
    if args.hashes:
        bench_hashes(args.hashes)


def bench_hashes(n: int) -> None:
    """The registry's hash index at n hashes: save, remove one enrollment (54 hashes), save again."""
    rng = np.random.default_rng(2)
    index = ShardedHashIndex()
    codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    t = time.perf_counter()
    index.add_codes(np.arange(n, dtype=np.int64), codes)
    built = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.faissb"
        t = time.perf_counter()
        save_hash_index(index, path, "bench")
        saved = time.perf_counter() - t
        t = time.perf_counter()
        load_hash_index(path, "bench")
        loaded = time.perf_counter() - t
        size = sum(p.stat().st_size for p in index_files(path))
        print(
            f"hash index {n:,} hashes: built {built:.1f} s, {size / 2**20:.0f} MiB in {index.segment_count()} "
            f"segments, saved in {saved:.2f} s, loaded in {loaded:.2f} s"
        )
        start = int(rng.integers(0, n - 54))
        enrollment = np.arange(start, start + 54, dtype=np.int64)  # 3 photos x 18 variants, consecutive ids
        t = time.perf_counter()
        removed = index.remove(enrollment)
        mid = time.perf_counter()
        manifest = save_hash_index(index, path, "bench")
        done = time.perf_counter()
        left = [k for k, held in stored_hash_ids(path).items() if held is None or np.isin(enrollment, held).any()]
        print(
            f"hash index remove one enrollment: {removed} hashes removed in {(mid - t) * 1000:.1f} ms, saved in "
            f"{(done - mid) * 1000:.0f} ms ({len(manifest['segments'])} segments); files still holding them: "
            f"{left or 'none'}"
        )
        q = [codes[i].tobytes().hex() for i in rng.choice(n, 40)]
        t = time.perf_counter()
        for h in q:
            index.range_search([h], 3)
        one = (time.perf_counter() - t) / len(q) * 1000
        t = time.perf_counter()
        index.range_search(q, 3)  # as a scan's batch of members is matched
        batch = (time.perf_counter() - t) / len(q) * 1000
        print(
            f"hash index range query (radius 3, the near-copy policy's): {one:.1f} ms one at a time, "
            f"{batch:.1f} ms per hash in a batch of {len(q)}"
        )


if __name__ == "__main__":
    main()
