"""Benchmark: how a scan's cost and memory grow with the dump's size (1k, 5k, 20k photos).

Builds a dump of N distinct photos from ../shared/facedata/lfw_deepfunneled by re-encoding,
resizing and cropping them (each variant has different bytes), scans it with `facetrace scan`
(2 workers) in a subprocess, and prints photos per second and the peak RSS of the scan's own
processes (measured by a launcher: the largest RSS among the CLI and its workers). Throughput
must stay about the same from 1k to 20k (a linear cost), and memory bounded.

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
LAUNCHER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL)
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""


def facetrace() -> list[str]:
    exe = Path(sys.executable).with_name("facetrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


def build_dump(src: Path, out: Path, n: int) -> None:
    """N distinct photos: every source photo at quality, size and crop variants, in folders of 20."""
    from PIL import Image

    sources = sorted(p for p in src.rglob("*.jpg"))
    variants = [(q, s, c) for q in (95, 85, 75) for s in (250, 220, 190) for c in (0, 6, 12)]
    made = 0
    for v, (quality, size, crop) in enumerate(variants):
        for p in sources:
            if made == n:
                return
            im = Image.open(p).convert("RGB")
            if crop:
                im = im.crop((crop, crop, im.width - crop, im.height - crop))
            im = im.resize((size, size))
            folder = out / f"person_{made // 20:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=quality)
            (folder / f"{v:02d}_{p.name}").write_bytes(buf.getvalue())
            made += 1


def main() -> None:
    data = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(f"{'photos':>7} {'seconds':>8} {'photos/s':>9} {'faces':>7} {'peak RSS MiB':>13}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            build_dump(data, tmp / "dump", n)
            rss = tmp / "rss.txt"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", LAUNCHER, str(rss), *facetrace(), "scan", "--quiet",
                            "--workers", str(args.workers), "--workspace", str(tmp / "ws"), str(tmp / "dump")],
                           check=True)
            elapsed = time.perf_counter() - t
            import sqlite3

            con = sqlite3.connect(tmp / "ws" / "facetrace.db")
            faces = con.execute("SELECT count(*) FROM faces").fetchone()[0]
            con.close()
            print(f"{n:>7} {elapsed:>8.1f} {n / elapsed:>9.2f} {faces:>7} {int(rss.read_text()) / 1024:>13.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
