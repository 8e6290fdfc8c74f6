"""Benchmark: time to build, sign and render the evidence report of a large scan.

Scans ../shared/facedata/lfw_deepfunneled (1,896 photos) into a temporary workspace with
`--enrolled` people enrolled (3 photos each, the first people in name order with at least 6), then
times `write_report` without pictures, with pixelated pictures cut from the dump (the default),
and with the CASE/UCO export too, and `verify_report` (signature only, then with the dump
re-hashed), and prints the file sizes.

Usage: python benchmarks/bench_report.py [--folder DIR] [--enrolled N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from scanner.consent import ConsentInput
    from scanner.evidence import write_report
    from scanner.evidence.verify import verify_report
    from scanner.models import ScanOptions
    from scanner.pipeline import match_against_registry, open_store, scan
    from scanner.registry import EnrollmentRefused, enroll, open_registry

    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--enrolled", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, root = open_store(str(Path(tmp) / "ws"))
        registry = open_registry(store, root)
        people = [d for d in sorted(args.folder.iterdir()) if d.is_dir() and len(list(d.iterdir())) >= 6]
        enrolled = 0
        for d in people:
            if enrolled == args.enrolled:
                break
            photos = sorted(d.iterdir())[:3]
            try:
                enroll(registry, [(p.name, p.read_bytes()) for p in photos], ConsentInput())
                enrolled += 1
            except EnrollmentRefused:
                continue  # a photo with two faces, or photos that disagree: take the next person
        print(f"enrolled {enrolled} people")
        t = time.perf_counter()
        summary = scan([str(args.folder)], store, ScanOptions(), workspace=root)
        match_against_registry(store, root, summary.scan_id, actor="bench")
        print(f"scan + match of {summary.counts['files']} members: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        write_report(store, root, str(Path(tmp) / "report-np"), actor="bench", pictures=False)
        print(f"write_report without pictures (build, sign, JSON, HTML, manifest): {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        out = write_report(store, root, str(Path(tmp) / "report"), actor="bench")
        print(
            f"write_report with {out['pictures']['count']} pixelated pictures cut from the dump, "
            f"{out['findings']} findings: {time.perf_counter() - t:.2f} s"
        )
        t = time.perf_counter()
        write_report(store, root, str(Path(tmp) / "report-case"), actor="bench", case_uco=True)
        print(f"write_report with pictures and the CASE/UCO export: {time.perf_counter() - t:.2f} s")
        for key in ("json", "html", "manifest"):
            print(f"  {Path(out[key]).name}: {Path(out[key]).stat().st_size / 1e6:.2f} MB")
        chromium = shutil.which("chromium")
        if chromium:
            t = time.perf_counter()
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--proxy-server=127.0.0.1:9",
                    f"--user-data-dir={Path(tmp) / 'chromium'}",
                    "--window-size=1200,900",
                    f"--screenshot={Path(tmp) / 'shot.png'}",
                    f"file://{out['html']}",
                ],
                capture_output=True,
                timeout=120,
            )
            print(
                f"headless Chromium: load, lay out and screenshot report.html: {time.perf_counter() - t:.2f} s "
                "(browser start included)"
            )
        t = time.perf_counter()
        assert verify_report(out["json"]) == []
        print(f"verify (signature): {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        assert verify_report(out["json"], [str(args.folder)]) == []
        print(f"verify (signature + re-hash of the dump): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
