"""Benchmark: the ONNX engine's encodings against face_recognition's, on every face of facedata.

For every image of ../shared/facedata (every collection, every photo; GIFs by their first frame)
and for the video's frames sampled once a second, faces are detected once (face_recognition's
HOG, upsample 1, as a scan does), then encoded by both engines from the same boxes:
  dlib   face_recognition.face_encodings (dlib's compute_face_descriptor), the reference
  onnx   facetrace's engine: the same landmarks and chip, dlib's ResNet in ONNX Runtime, all of
         an image's faces in one batch
  onnx, batches of 8 images
         the same, as a scan's worker runs it: the chips of 8 images (with faces) go through the
         network in one call; their encodings must equal the one-image-at-a-time ones bit for bit
Prints the number of faces, the largest absolute difference of any encoding value (the contract
is 1e-4) with the face where it occurs, and milliseconds per face for each engine (landmarks,
alignment and the network, one thread, this process), with their ratio. A second table times
the network alone on batches of 1, 8 and 32 chips.

Usage: python benchmarks/bench_embedding.py [--facedata DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}


def images(root: Path, limit: int | None):
    """Yield (label, upright RGB PIL image) for every image and sampled video frame."""
    from scanner.media.images import ImageDecodeError, decode_image
    from scanner.media.video import Sampling, sample_video

    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for f in files[:limit] if limit else files:
        try:
            yield str(f.relative_to(root)), decode_image(f.read_bytes(), 100_000_000).image.convert("RGB")
        except ImageDecodeError as exc:
            print(f"  not decodable, left out: {f}: {exc}")
    for video in sorted((root / "video").glob("*.mp4")) if not limit else ():
        for frame in sample_video(
            str(video), Sampling(), every_ms=1000, scene_change=255.0, max_frames=3600, max_pixels=100_000_000
        ):
            yield f"{video.relative_to(root)}@{frame.ms}ms", frame.image


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facedata", type=Path, default=default)
    ap.add_argument("--limit", type=int, default=None, help="only the first N image files (sorted), no video")
    args = ap.parse_args()
    if not args.facedata.is_dir():
        sys.exit(f"face photos not found: {args.facedata} (give --facedata or set FACETRACE_FACEDATA)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    import numpy as np

    from scanner.fingerprints.faces import DlibFaceEngine, OnnxFaceEngine
    from scanner.models import ScanOptions

    reference, engine = DlibFaceEngine(ScanOptions(engine="dlib")), OnnxFaceEngine(ScanOptions())
    print(
        f"# {args.facedata}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {reference.runtime} vs {engine.runtime}"
    )
    n_images = n_faces = 0
    t_ref = t_new = 0.0
    worst, worst_at = 0.0, None
    chips = []
    t_batched, held, batched_differ = 0.0, [], 0

    def describe_held():
        nonlocal t_batched, batched_differ
        t = time.perf_counter()
        out = engine.describe(np.concatenate([c for c, _ in held]))
        t_batched += time.perf_counter() - t
        batched_differ += int(not np.array_equal(out, np.concatenate([n for _, n in held])))
        held.clear()

    for label, image in images(args.facedata, args.limit):
        n_images += 1
        boxes = reference.boxes(image)
        if not boxes:
            continue
        pixels = np.asarray(image)
        t = time.perf_counter()
        ref = reference.encodings(pixels, boxes)
        t_ref += time.perf_counter() - t
        t = time.perf_counter()
        new = engine.encodings(pixels, boxes)
        t_new += time.perf_counter() - t
        t = time.perf_counter()
        held.append((engine._chips(pixels, boxes), None))
        t_batched += time.perf_counter() - t
        held[-1] = (held[-1][0], np.asarray(new))
        if len(held) == 8:
            describe_held()
        n_faces += len(boxes)
        for box, a, b in zip(boxes, ref, new, strict=True):
            d = float(np.abs(np.asarray(a) - np.asarray(b)).max())
            if d > worst:
                worst, worst_at = d, f"{label} box {box}"
        if len(chips) < 64:
            import dlib
            from face_recognition import api

            chips += [
                np.asarray(dlib.get_face_chip(pixels, s, size=150, padding=0.25))
                for s in api._raw_face_landmarks(pixels, boxes, model="small")
            ]
    if held:
        describe_held()
    print(f"{n_images} images and frames, {n_faces} faces")
    print(
        f"largest absolute difference of any encoding value: {worst:.3g} ({worst_at}); contract 1e-4: "
        f"{'met' if worst <= 1e-4 else 'NOT MET'}"
    )
    print(f"{'engine':44} {'ms per face':>12} {'vs dlib':>8}")
    for name, t in (
        ("dlib compute_face_descriptor (face_recognition)", t_ref),
        ("onnx, one image per call", t_new),
        ("onnx, 8 images per call (a scan's worker)", t_batched),
    ):
        print(f"{name:44} {1000 * t / n_faces:12.2f} {t_ref / t:7.1f}x")
    print(f"batches of 8 images whose encodings differ from one image at a time: {batched_differ}")
    batch = np.stack(chips)
    print(f"{'network alone, batch':44} {'ms per face':>12}")
    for size in (1, 8, 32):
        reps = max(1, 64 // size)
        engine._net(batch[:size])  # warm
        t = time.perf_counter()
        for _ in range(reps):
            engine._net(batch[:size])
        print(f"{size:44d} {1000 * (time.perf_counter() - t) / (reps * size):12.2f}")


if __name__ == "__main__":
    main()
