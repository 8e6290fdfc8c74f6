"""Benchmark: what detecting faces on a reduced copy costs in recall, and what it saves in time.

For each photo of ../shared/facedata/multiface, counts the faces face_recognition's HOG detector
(upsample 1) finds on the full-resolution photo and on copies whose longer side is at most
2048, 1600, 1280, 1024 (facetrace's default), 800, 640 and 512 pixels, and the detection time.

Usage: python benchmarks/detect_size.py [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = [None, 2048, 1600, 1280, 1024, 800, 640, 512]


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "multiface"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"photo folder not found: {args.folder}")
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition
    from scanner.media.images import decode_image, reduced_copy

    totals = {s: [0, 0.0] for s in SIZES}
    header = f"{'photo':34} {'size':>10} " + " ".join(f"{('full' if s is None else s):>11}" for s in SIZES)
    print(header)
    for path in sorted(args.folder.iterdir()):
        img = decode_image(path.read_bytes(), 10**9).image
        cells = []
        for s in SIZES:
            small = img if s is None else reduced_copy(img, s)[0]
            arr = np.asarray(small)
            t = time.perf_counter()
            n = len(face_recognition.face_locations(arr, number_of_times_to_upsample=1))
            dt = time.perf_counter() - t
            totals[s][0] += n
            totals[s][1] += dt
            cells.append(f"{n:3d} {dt * 1000:5.0f}ms")
        print(f"{path.name[:34]:34} {img.width:>4}x{img.height:<5} " + " ".join(f"{c:>11}" for c in cells))
    full = totals[None][0]
    print(f"{'TOTAL faces':34} {'':10} " + " ".join(f"{totals[s][0]:>11d}" for s in SIZES))
    print(f"{'recall vs full resolution':34} {'':10} " + " ".join(f"{totals[s][0] / full:>11.3f}" for s in SIZES))
    print(f"{'detection seconds':34} {'':10} " + " ".join(f"{totals[s][1]:>11.2f}" for s in SIZES))


if __name__ == "__main__":
    main()
