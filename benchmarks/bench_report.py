"""Benchmark: time to build, sign and render the evidence report of a large scan.

Scans ../shared/facedata/lfw_deepfunneled (1,896 photos) into a temporary workspace with one
enrolled person, then times `write_report` (document, signature, JSON, HTML, manifest) and
`verify_report` (signature only, then with the dump re-hashed), and prints the file sizes.

Usage: python benchmarks/bench_report.py [--folder DIR]
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
    from scanner.registry import enroll, open_registry

    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, root = open_store(str(Path(tmp) / "ws"))
        person = sorted((args.folder / "Ana_Palacio").iterdir())[:3]
        enroll(open_registry(store, root), [(p.name, p.read_bytes()) for p in person], ConsentInput())
        t = time.perf_counter()
        summary = scan([str(args.folder)], store, ScanOptions(), workspace=root)
        match_against_registry(store, root, summary.scan_id, actor="bench")
        print(f"scan + match of {summary.counts['files']} members: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        out = write_report(store, root, str(Path(tmp) / "report"), actor="bench")
        print(f"write_report (build, sign, JSON, HTML, manifest): {time.perf_counter() - t:.2f} s")
        for key in ("json", "html", "manifest"):
            print(f"  {Path(out[key]).name}: {Path(out[key]).stat().st_size / 1e6:.2f} MB")
        chromium = shutil.which("chromium")
        if chromium:
            t = time.perf_counter()
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            "--proxy-server=127.0.0.1:9", f"--user-data-dir={Path(tmp) / 'chromium'}",
                            "--window-size=1200,900", f"--screenshot={Path(tmp) / 'shot.png'}",
                            f"file://{out['html']}"], capture_output=True, timeout=120)
            print(f"headless Chromium: load, lay out and screenshot report.html: {time.perf_counter() - t:.2f} s "
                  "(browser start included)")
        t = time.perf_counter()
        assert verify_report(out["json"]) == []
        print(f"verify (signature): {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        assert verify_report(out["json"], [str(args.folder)]) == []
        print(f"verify (signature + re-hash of the dump): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
