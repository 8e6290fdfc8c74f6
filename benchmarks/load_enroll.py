"""Load: a platform's screens while anonymous callers enroll 100-megapixel PNGs, on loopback.

Starts `facetrace serve` in a subprocess over a fresh workspace with one person enrolled (3 LFW
photos) and a platform key. Then, for --seconds each:

1. --clients platform clients screen LFW photos (POST /v1/screen), alone;
2. the same, while --anonymous keyless clients each enroll, again and again, three blank
   10,000 x 10,000 PNGs (about 310 KB each, 100 megapixels decoded), pausing
   --pause s between tries;

and prints the screens' p50/p95/max latency for both, and what the enrollments were answered.
Then the service's memory (VmRSS, and VmHWM: its peak) after a screen of one such PNG, and the
answer to an enrollment of 20 photos of 60 MB (1.2 GB), declared and undeclared
(chunked), with how long it took and how much of it was sent before the answer.

Bounded: every phase is --seconds long, every request has a timeout, and everything runs on
127.0.0.1. Not a test: figures for docs/performance.md.

Usage: python benchmarks/load_enroll.py [--clients 2] [--anonymous 6] [--seconds 20]
       [--pythonpath DIR]  (serve another copy of the code, e.g. an older one, for comparison)
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def facetrace() -> list[str]:
    exe = Path(sys.executable).with_name("facetrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


def big_png(side: int = 10_000) -> bytes:
    """A blank side x side PNG: a few hundred KB on the wire, side * side * 3 bytes once decoded."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 180, 160)).save(buf, "PNG")
    return buf.getvalue()


def memory(pid: int) -> str:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    mb = {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}
    return f"RSS {mb['VmRSS']:,} MB (peak {mb['VmHWM']:,} MB)"


def percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no screen completed"
    s = sorted(latencies)
    p95 = s[min(len(s) - 1, int(len(s) * 0.95))]
    return (
        f"{len(s)} screens, p50 {statistics.median(s) * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms, "
        f"max {s[-1] * 1000:,.0f} ms"
    )


def oversized_enrollment(port: int, declared: bool, photos: int = 20, photo_mb: int = 60) -> str:
    """Send an enrollment of `photos` x `photo_mb` MB until the service answers; say what it answered."""
    boundary = "load-enroll-boundary"
    block = b"\xff" * (1 << 20)
    part_head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    total = photos * (len(part_head) + photo_mb * len(block) + 2) + len(f"--{boundary}--\r\n")
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    headers.update({"Content-Length": str(total)} if declared else {"Transfer-Encoding": "chunked"})
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(
        (
            f"POST /v1/subjects HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
    )
    sent, t = 0, time.perf_counter()
    answered = threading.Event()
    result: dict = {}

    def read():
        try:
            response = http.client.HTTPResponse(sock)
            response.begin()
            result["status"] = response.status
            result["body"] = response.read()[:200]
        except OSError as exc:
            result["status"] = f"{type(exc).__name__}"
        result["at"] = time.perf_counter() - t
        answered.set()

    threading.Thread(target=read, daemon=True).start()

    def pieces():
        for _ in range(photos):
            yield part_head
            for _ in range(photo_mb):
                yield block
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    try:
        for piece in pieces():
            if answered.is_set():
                break
            sock.sendall(piece if declared else f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
        if not declared and not answered.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the service closed the connection after answering
    answered.wait(120)
    sock.close()
    return (
        f"answered {result.get('status')} after {result.get('at', float('nan')) * 1000:,.0f} ms, "
        f"{sent / 2**20:,.0f} MB of {total / 2**20:,.0f} MB sent; {result.get('body', b'')[:120]!r}"
    )


def main() -> None:
    data = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2, help="platform clients screening")
    ap.add_argument("--anonymous", type=int, default=6, help="keyless clients enrolling 100-megapixel PNGs")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--pause", type=float, default=0.1, help="seconds an anonymous client waits between tries")
    ap.add_argument("--pythonpath", help="serve the code in this folder instead (PYTHONPATH)")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    people = sorted(p for p in data.iterdir() if p.is_dir())
    enrolled = sorted(people[0].iterdir())
    photos = [p.read_bytes() for person in people[1:21] for p in sorted(person.iterdir())[:2]]
    png = big_png()
    with tempfile.TemporaryDirectory() as tmp:
        ws = str(Path(tmp) / "ws")
        subprocess.run(
            [*facetrace(), "enroll", "--workspace", ws, "--consent", "default", *map(str, enrolled[:3])],
            check=True,
            capture_output=True,
            env=env,
        )
        key = subprocess.run(
            [*facetrace(), "keys", "create", "--role", "platform", "--workspace", ws],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.split()[-1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [*facetrace(), "serve", "--workspace", ws, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {key}"}
        try:
            for _ in range(300):
                try:
                    requests.get(f"{url}/v1/health", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            version = requests.get(f"{url}/v1/consent-text", timeout=10).json()["version"]
            requests.post(
                f"{url}/v1/screen", params={"filename": "warm.jpg"}, data=photos[0], headers=auth, timeout=120
            )
            print(f"service started and warm: {memory(server.pid)}")

            def phase(anonymous: int) -> tuple[list[float], Counter, list[float]]:
                latencies, answers, enroll_latencies = [], Counter(), []
                lock = threading.Lock()
                stop = time.monotonic() + args.seconds

                def screener(i: int):
                    session, n = requests.Session(), i
                    while time.monotonic() < stop:
                        body = photos[n % len(photos)]
                        n += args.clients
                        t = time.perf_counter()
                        r = session.post(
                            f"{url}/v1/screen", params={"filename": "photo.jpg"}, data=body, headers=auth, timeout=120
                        )
                        with lock:
                            if r.status_code == 200:
                                latencies.append(time.perf_counter() - t)
                            else:
                                answers[f"screen HTTP {r.status_code}"] += 1

                def enroller(i: int):
                    files = [("photos", (f"{i}-{k}.png", png, "image/png")) for k in range(3)]
                    while time.monotonic() < stop:
                        t = time.perf_counter()
                        try:
                            r = requests.post(
                                f"{url}/v1/subjects",
                                files=files,
                                timeout=120,
                                data={"consent": "true", "consent_version": version},
                            )
                            what = f"{r.status_code} {r.json()['error']['code'] if r.status_code >= 400 else 'ok'}"
                        except requests.RequestException as exc:
                            what = type(exc).__name__
                        with lock:
                            answers[what] += 1
                            enroll_latencies.append(time.perf_counter() - t)
                        time.sleep(args.pause)

                threads = [threading.Thread(target=screener, args=(i,)) for i in range(args.clients)]
                threads += [threading.Thread(target=enroller, args=(i,)) for i in range(anonymous)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return latencies, answers, enroll_latencies

            alone, _, _ = phase(0)
            print(f"{args.clients} platform clients, {args.seconds:.0f} s, alone: {percentiles(alone)}")
            loaded, answers, enroll_latencies = phase(args.anonymous)
            print(
                f"{args.clients} platform clients, {args.seconds:.0f} s, with {args.anonymous} anonymous clients "
                f"enrolling three 100-megapixel PNGs ({len(png) / 1000:,.0f} KB each): {percentiles(loaded)}"
            )
            el = sorted(enroll_latencies)
            print(
                f"  enrollments answered: {dict(answers)}; answer time p50 {statistics.median(el) * 1000:,.0f} ms, "
                f"max {el[-1] * 1000:,.0f} ms"
                if el
                else "  no enrollment answered"
            )
            time.sleep(5)  # anything still running ends
            print(f"after the load: {memory(server.pid)}")
            t = time.perf_counter()
            r = requests.post(f"{url}/v1/screen", params={"filename": "big.png"}, data=png, headers=auth, timeout=300)
            print(
                f"screen of one 10,000 x 10,000 PNG: HTTP {r.status_code} in {time.perf_counter() - t:.1f} s; "
                f"then {memory(server.pid)}"
            )
            for declared in (True, False):
                how = "declared (Content-Length)" if declared else "undeclared (chunked)"
                print(
                    f"enrollment of 20 photos of 60 MB, {how}: {oversized_enrollment(port, declared)}; "
                    f"then {memory(server.pid)}"
                )
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
