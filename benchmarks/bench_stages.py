"""Benchmark: where one photo's time goes, stage by stage, in one process and one thread.

For the first N photos of lfw_deepfunneled (default 300), each stage of a worker's analysis runs
on its own and is timed: decode (Pillow, EXIF, RGB), pHash and dHash, HOG detection with
upsample 1 (what a scan uses, as face_recognition does) by scanner/fingerprints/hog.py (the
scan's) and by dlib (face_recognition's, for comparison) and with upsample 0, the 5-point
landmarks, the aligned chip, and the ResNet in ONNX Runtime (as a scan's worker runs it: the
chips of 8 photos in one call; and one photo's chips per call, for comparison) and in dlib
(face_recognition's compute_face_descriptor, for comparison). Prints milliseconds per photo for each stage and the
share of the ONNX engine's total that each one takes. Models are loaded and every stage is run
once before timing.

Usage: python benchmarks/bench_stages.py [--folder DIR] [--limit N]
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


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--limit", type=int, default=300)
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"photo folder not found: {args.folder} (give --folder or set FACETRACE_FACEDATA)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    import dlib
    import numpy as np

    from scanner.fingerprints import hog
    from scanner.fingerprints.faces import DlibFaceEngine, OnnxFaceEngine
    from scanner.fingerprints.perceptual import perceptual_hashes
    from scanner.media.images import decode_image
    from scanner.models import ScanOptions

    engine, reference = OnnxFaceEngine(ScanOptions()), DlibFaceEngine(ScanOptions(engine="dlib"))
    photos = sorted(p for p in args.folder.rglob("*") if p.is_file())[: args.limit]
    data = [p.read_bytes() for p in photos]
    dlib_detector = dlib.get_frontal_face_detector()
    stages = [
        "decode",
        "hashes",
        "detect, upsample 1 (hog.py)",
        "detect, upsample 1 (dlib)",
        "detect, upsample 0 (hog.py)",
        "landmarks",
        "chip",
        "network, 8 photos a call",
        "network, 1 photo a call",
        "network (dlib)",
    ]
    compared = ("detect, upsample 1 (dlib)", "detect, upsample 0 (hog.py)", "network, 1 photo a call", "network (dlib)")
    held = []
    total = dict.fromkeys(stages, 0.0)
    faces = 0

    def timed(stage, fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        total[stage] += time.perf_counter() - t
        return out

    perceptual_hashes(decode_image(data[0], 100_000_000).image)  # imports and first-call costs
    for warm in (True, False):
        for blob in data[:5] if warm else data:
            image = timed("decode", lambda b: decode_image(b, 100_000_000).image, blob)
            timed("hashes", perceptual_hashes, image)
            pixels = np.asarray(image)
            timed("detect, upsample 0 (hog.py)", hog.detect, pixels, 0)
            timed("detect, upsample 1 (dlib)", dlib_detector, pixels, 1)
            rects = [dlib.rectangle(*r) for r in timed("detect, upsample 1 (hog.py)", hog.detect, pixels, 1)]
            if not rects:
                continue
            shapes = timed("landmarks", lambda: [engine._landmarks(pixels, r) for r in rects])
            chips = timed(
                "chip",
                lambda: np.stack([np.asarray(dlib.get_face_chip(pixels, s, size=150, padding=0.25)) for s in shapes]),
            )
            timed("network, 1 photo a call", engine._net, chips)
            held.append(chips)
            if len(held) == 8:
                timed("network, 8 photos a call", engine.describe, np.concatenate(held))
                held.clear()
            timed(
                "network (dlib)",
                lambda: [reference._fr.api.face_encoder.compute_face_descriptor(pixels, s, 1) for s in shapes],
            )
            faces += 0 if warm else len(rects)
        if held:
            timed("network, 8 photos a call", engine.describe, np.concatenate(held))
            held.clear()
        if warm:
            total = dict.fromkeys(stages, 0.0)
    n = len(data)
    engine_total = sum(v for k, v in total.items() if k not in compared)
    print(f"# {n} photos from {args.folder}, {faces} faces; one process, one thread")
    print(f"{'stage':28} {'ms per photo':>13} {'share of the ONNX engine':>25}")
    for stage in stages:
        share = "" if stage in compared else f"{100 * total[stage] / engine_total:.0f}%"
        print(f"{stage:28} {1000 * total[stage] / n:13.2f} {share:>25}")
    print(f"{'ONNX engine, all stages':28} {1000 * engine_total / n:13.2f}")


if __name__ == "__main__":
    main()
