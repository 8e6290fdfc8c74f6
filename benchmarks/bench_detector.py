"""Benchmark: scanner/fingerprints/hog.py (compiled) against dlib's HOG frontal face detector, on all of facedata.

Every image of ../shared/facedata (every collection; GIFs by their first frame) is decoded as a
scan decodes it, reduced as a scan reduces it for detection (longer side at most --max-side,
1024 by default, scanner.media.images.reduced_copy) and given, as RGB uint8, to
  dlib    dlib.get_frontal_face_detector().run(pixels, upsample, adjust)   (the reference)
  hog.py  scanner.fingerprints.hog.run(pixels, upsample, adjust)   (numba; compiled before timing)
Prints how many images and rectangles were compared, how many images differ (with the
rectangles, scores and detector indices of each), the largest score difference, the detection
closest to its threshold, and milliseconds per image for each, one thread, by size: the LFW
photos (250x250) and the detection copies whose longer side is 900 px or more.

Usage: python benchmarks/bench_detector.py [--facedata DIR] [--upsample N] [--adjust T]
                                           [--max-side N] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}


def main() -> None:
    import dlib
    import numpy as np

    from scanner.fingerprints import hog
    from scanner.media.images import ImageDecodeError, decode_image, reduced_copy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--facedata", type=Path, default=Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))
    )
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--adjust", type=float, default=0.0, help="adjust_threshold (negative: more, weaker detections)")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    if not args.facedata.is_dir():
        sys.exit(f"facedata not found at {args.facedata}")

    detector = dlib.get_frontal_face_detector()
    hog.run(np.zeros((100, 100, 3), np.uint8), args.upsample)  # parse the model outside the timings
    files = sorted(p for p in args.facedata.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[: args.limit] if args.limit else files
    images = rects = 0
    differing = []
    max_score_diff = 0.0
    closest = (float("inf"), None)
    times = {"lfw 250x250": [[], []], ">= 900 px": [[], []], "all": [[], []]}
    for f in files:
        try:
            image = decode_image(f.read_bytes(), 100_000_000).image.convert("RGB")
        except ImageDecodeError as exc:
            print(f"  not decodable, left out: {f}: {exc}")
            continue
        small, _ = reduced_copy(image, args.max_side)
        pixels = np.ascontiguousarray(np.asarray(small.convert("RGB")))
        t0 = time.perf_counter()
        ref_rects, ref_scores, ref_idx = detector.run(pixels, args.upsample, args.adjust)
        t1 = time.perf_counter()
        got_rects, got_scores, got_idx = hog.run(pixels, args.upsample, args.adjust)
        t2 = time.perf_counter()
        ref = [(r.left(), r.top(), r.right(), r.bottom()) for r in ref_rects]
        images += 1
        rects += len(ref)
        label = str(f.relative_to(args.facedata))
        groups = ["all"]
        if "lfw" in label and pixels.shape[:2] == (250, 250):
            groups.append("lfw 250x250")
        if max(pixels.shape[:2]) >= 900:
            groups.append(">= 900 px")
        for g in groups:
            times[g][0].append(t1 - t0)
            times[g][1].append(t2 - t1)
        if ref != got_rects or [int(i) for i in ref_idx] != got_idx:
            differing.append(
                (label, pixels.shape, ref, list(ref_scores), [int(i) for i in ref_idx], got_rects, got_scores, got_idx)
            )
        else:
            for a, b in zip(ref_scores, got_scores, strict=False):
                max_score_diff = max(max_score_diff, abs(a - b))
        for s, r in zip(ref_scores, ref, strict=False):
            if abs(s - args.adjust) < closest[0]:
                closest = (abs(s - args.adjust), (label, r, s))

    print(f"upsample {args.upsample}, adjust_threshold {args.adjust}, detection copy longer side <= {args.max_side}")
    print(f"images compared: {images}; dlib rectangles: {rects}")
    print(
        f"images with identical rectangles (same order, same detector): {images - len(differing)}; differing: {len(differing)}"
    )
    for label, shape, ref, rs, ri, got, gs, gi in differing:
        print(f"  DIFF {label} {shape}: dlib {ref} scores {rs} idx {ri}\n       hog.py {got} scores {gs} idx {gi}")
    print(f"largest score difference on identical images: {max_score_diff:.3g}")
    if closest[1]:
        print(f"detection closest to its threshold: {closest[1][0]} {closest[1][1]} score-threshold {closest[0]:.3g}")
    print("ms per image (one thread):   n     dlib   hog.py  hog.py/dlib")
    for g, (td, tn) in times.items():
        if td:
            a, b = 1000 * sum(td) / len(td), 1000 * sum(tn) / len(tn)
            print(f"  {g:<22} {len(td):6d} {a:8.1f} {b:8.1f} {b / a:8.2f}")


if __name__ == "__main__":
    main()
