"""Benchmark: how a scan's cost and memory grow with the dump's size (1k, 5k, 20k photos).

Builds a dump of N distinct photos from ../shared/facedata/lfw_deepfunneled by re-encoding,
resizing and cropping them (each variant has different bytes), scans it with `facetrace scan`
(2 workers) in a subprocess, and prints photos per second and the peak memory of the scan: the
largest sum over the CLI process and all its workers at one moment (sampled every 0.2 s from
/proc) of the resident memory (RSS, which counts shared libraries once per process: an upper
bound) and of the proportional set size (PSS, shared pages divided among their processes: what
the scan adds to the machine), and the largest single process's RSS. Throughput must stay about
the same from 1k to 20k (a linear cost), and memory bounded. Besides the whole command's rate
(which includes the start, about a second, and the clustering of all faces at the end), it
prints the steady rate: photos stored per second between the first store of 10% of the dump and
the last at or under 90% (the workspace database's member count, read every 0.1 s).

Usage: python benchmarks/bench_dump_size.py [--sizes 1000 5000 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from resume_lfw import count as stored_members  # noqa: E402 - the members a running scan has stored


def _tree_memory(root: int) -> tuple[int, int, int]:
    """(RSS sum, PSS sum, largest RSS) in bytes of process `root` and all its descendants (/proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid and p not in tree]
        tree.update(kids)
        frontier += kids
    rss, pss = [], []
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss.append(int(line.split()[1]) * 1024)
                elif line.startswith("Pss:"):
                    pss.append(int(line.split()[1]) * 1024)
        except OSError:
            pass
    return sum(rss), sum(pss), max(rss, default=0)


def run_measured(cmd: list[str], db: Path, n: int) -> tuple[float, int, int, int, float | None]:
    """Run `cmd`; return (seconds, peak RSS sum, peak PSS sum, peak single-process RSS, steady
    photos per second)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peaks = [0, 0, 0]
    seen: list[tuple[float, int]] = []  # (time, count) whenever the stored count changed
    last_memory = 0.0
    while proc.poll() is None:
        now = time.perf_counter()
        if now - last_memory >= 0.2:
            peaks = [max(p, m) for p, m in zip(peaks, _tree_memory(proc.pid), strict=False)]
            last_memory = now
        count = stored_members(db)  # 0 until the database exists
        if not seen or count != seen[-1][1]:
            seen.append((time.perf_counter(), count))
        time.sleep(0.1)
    elapsed = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"scan failed with exit status {proc.returncode}: {' '.join(cmd)}")
    lo = next(((s, c) for s, c in seen if c >= 0.1 * n), None)
    hi = next(((s, c) for s, c in reversed(seen) if c <= 0.9 * n), None)
    steady = (hi[1] - lo[1]) / (hi[0] - lo[0]) if lo and hi and hi[0] > lo[0] else None
    return elapsed, *peaks, steady


def facetrace() -> list[str]:
    exe = Path(sys.executable).with_name("facetrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


def build_dump(src: Path, out: Path, n: int) -> None:
    """N distinct photos: source photos at quality, size and crop variants, in folders of 20.

    Photo i is source i mod S in variant (i // S + i) mod V: every dump size gets the same mix of
    sizes and qualities (so photos per second compare across sizes), and no (photo, variant) pair
    repeats below S x V photos (S + 1 = 1,897 and V = 27 are coprime).
    """
    from PIL import Image

    sources = sorted(p for p in src.rglob("*.jpg"))
    variants = [(q, s, c) for q in (95, 85, 75) for s in (250, 220, 190) for c in (0, 6, 12)]
    if n > len(sources) * len(variants):
        raise SystemExit(f"at most {len(sources) * len(variants)} distinct photos can be made from {src}")
    for i in range(n):
        p = sources[i % len(sources)]
        v = (i // len(sources) + i) % len(variants)
        quality, size, crop = variants[v]
        im = Image.open(p).convert("RGB")
        if crop:
            im = im.crop((crop, crop, im.width - crop, im.height - crop))
        im = im.resize((size, size))
        folder = out / f"person_{i // 20:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        (folder / f"{v:02d}_{p.name}").write_bytes(buf.getvalue())


def main() -> None:
    data = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(
        f"{'photos':>7} {'seconds':>8} {'photos/s':>9} {'steady photos/s':>16} {'faces':>7} {'peak RSS MiB':>13} "
        f"{'peak PSS MiB':>13} {'largest RSS':>12}"
    )
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            build_dump(data, tmp / "dump", n)
            elapsed, peak_rss, peak_pss, peak_one, steady = run_measured(
                [
                    *facetrace(),
                    "scan",
                    "--quiet",
                    "--workers",
                    str(args.workers),
                    "--workspace",
                    str(tmp / "ws"),
                    str(tmp / "dump"),
                ],
                tmp / "ws" / "facetrace.db",
                n,
            )
            import sqlite3

            con = sqlite3.connect(tmp / "ws" / "facetrace.db")
            faces = con.execute("SELECT count(*) FROM faces").fetchone()[0]
            con.close()
            rate = f"{steady:.2f}" if steady else "-"
            print(
                f"{n:>7} {elapsed:>8.1f} {n / elapsed:>9.2f} {rate:>16} {faces:>7} {peak_rss / 2**20:>13.0f} "
                f"{peak_pss / 2**20:>13.0f} {peak_one / 2**20:>12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
