"""Peak memory and speed of `facetrace acquire` on a large file served over loopback.

Serves a generated file (default 500 MiB, a repeated 1 MiB random block, never held whole in
memory) from a local HTTP server in this process, runs `facetrace acquire` on it as a child
process, and reads that child's peak RSS (tests/webserver.py `run_measured`). Then it serves the
same file cut off half-way, acquires it (truncated, kept as .part), acquires it again (resumed
with Range/If-Range) and checks that the SHA-256 equals the full download's.

Usage: python benchmarks/bench_acquire.py [--mib 500]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.webserver import File, LoopbackServer, run_measured  # noqa: E402


def facetrace() -> str:
    exe = Path(sys.executable).parent / "facetrace"
    return str(exe) if exe.exists() else "facetrace"


def run_acquire(url: str, workspace: Path) -> tuple[dict, float, float]:
    """Run `facetrace acquire --json URL` in a child; return (its record, seconds, that child's peak RSS in MiB)."""
    out_file = workspace.with_name(workspace.name + ".jsonl")
    started = time.monotonic()
    # the file is served on loopback, an internal address the acquisition refuses unless it is named
    _rc, peak, _err = run_measured(
        [
            facetrace(),
            "acquire",
            "--json",
            "-q",
            "--retries",
            "0",
            "--lab-network",
            "127.0.0.1/32",
            "--workspace",
            str(workspace),
            url,
        ],
        out_file,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    seconds = time.monotonic() - started
    record = json.loads(out_file.read_text().splitlines()[0])
    return record, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=500, help="size of the served file in MiB")
    args = ap.parse_args()
    size = args.mib << 20
    block = os.urandom(1 << 20)
    expected = hashlib.sha256()
    for _ in range(args.mib):
        expected.update(block)
    want = expected.hexdigest()
    tmp = Path(tempfile.mkdtemp(prefix="bench-acquire-"))
    try:
        with LoopbackServer() as server:
            small = server.route("/small.bin", File(size=1 << 20, block=block))
            _, seconds, peak = run_acquire(small, tmp / "ws-small")
            print(f"baseline, a 1 MiB download: {seconds:.1f} s, peak RSS of the acquiring process {peak:.1f} MiB")
            url = server.route("/big.bin", File(size=size, block=block))
            record, seconds, peak = run_acquire(url, tmp / "ws-full")
            assert record["status"] == "complete" and record["sha256"] == want, record["reason"]
            print(
                f"full download of {size / 2**20:.0f} MiB: {seconds:.1f} s ({size / 2**20 / seconds:.0f} MiB/s), "
                f"peak RSS of the acquiring process {peak:.1f} MiB; SHA-256 {record['sha256'][:16]}... as served"
            )
            # cut off half-way once, then resumed by running the same command again
            cut = server.route("/cut.bin", File(size=size, block=block, cut_after=size // 2, cut_times=1))
            first, s1, _ = run_acquire(cut, tmp / "ws-resume")
            second, s2, peak2 = run_acquire(cut, tmp / "ws-resume")
            print(
                f"cut off at {size // 2:,} bytes: {first['status']} ({first['reason']}) in {s1:.1f} s; "
                f"run again: {second['status']}, resumed from byte {second['resumed_from']['offset']:,} in {s2:.1f} s"
            )
            same = second["sha256"] == record["sha256"] == want
            print(
                f"resumed SHA-256 equals the full download's: {same}; peak RSS of the resuming process {peak2:.1f} MiB"
            )
            assert same
    finally:
        for p in tmp.rglob("*"):
            if p.is_file():
                p.chmod(0o644)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
