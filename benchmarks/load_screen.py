"""Load: concurrent screening clients against `facetrace serve` on loopback.

Starts the service in a subprocess over a fresh workspace with one person enrolled (3 LFW photos)
and a platform key, then runs --clients threads (default 50) that each POST LFW photos to
/v1/screen for --seconds (default 60), and prints requests, errors, throughput and p50/p99
latency. Not a test: figures for docs/api.md.

Usage: python benchmarks/load_screen.py [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def facetrace() -> list[str]:
    exe = Path(sys.executable).with_name("facetrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


def main() -> None:
    data = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    people = sorted(p for p in data.iterdir() if p.is_dir())
    enrolled = sorted(people[0].iterdir())
    photos = [p.read_bytes() for person in people[:40] for p in sorted(person.iterdir())[:2]]
    with tempfile.TemporaryDirectory() as tmp:
        ws = str(Path(tmp) / "ws")
        subprocess.run(
            [*facetrace(), "enroll", "--workspace", ws, "--consent", "default", *map(str, enrolled[:3])],
            check=True,
            capture_output=True,
        )
        key = subprocess.run(
            [*facetrace(), "keys", "create", "--role", "platform", "--workspace", ws],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [*facetrace(), "serve", "--workspace", ws, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    requests.get(f"{url}/v1/health", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            stop = time.monotonic() + args.seconds

            def client(i: int):
                session = requests.Session()
                n = i
                while time.monotonic() < stop:
                    body = photos[n % len(photos)]
                    n += args.clients
                    t = time.perf_counter()
                    try:
                        r = session.post(
                            f"{url}/v1/screen",
                            params={"filename": "photo.jpg"},
                            data=body,
                            headers={"Authorization": f"Bearer {key}"},
                            timeout=120,
                        )
                        ok = r.status_code == 200
                        why = f"HTTP {r.status_code}: {r.text[:200]}"
                    except requests.RequestException as exc:
                        ok, why = False, f"{type(exc).__name__}: {exc}"
                    with lock:
                        (latencies.append(time.perf_counter() - t) if ok else errors.append(why))

            started = time.monotonic()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies.sort()
    n = len(latencies)
    print(
        f"{args.clients} clients for {args.seconds:.0f} s: {n} screens, {len(errors)} errors, "
        f"{n / elapsed:.1f} screens/s"
    )
    if n:
        print(
            f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {latencies[min(n - 1, int(n * 0.99))] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
    for e in errors[:5]:
        print(f"  error: {e}")


if __name__ == "__main__":
    main()
