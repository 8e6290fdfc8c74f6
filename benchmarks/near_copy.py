"""Near-copy detection: recall on edited copies, and false near-copies among distinct LFW photos.

For 100 LFW photos (seeded sample), every edit a seller makes is applied: JPEG re-encoding at
quality 30-95, resizing 0.25x-2x, crops up to 10% (centred and off-centre), grayscale, mirroring
and rotation by 90 or 180 degrees. Each edited copy's pHash is compared with the enrolled hashes
of the original (the photo and its variants, exactly as `facetrace enroll` stores them) at the
policy's threshold. Then every photo of `lfw_deepfunneled` is compared with every other photo's
enrolled hashes (all pairs), to count distinct photos that would be called near copies.

Usage: python benchmarks/near_copy.py
"""

from __future__ import annotations

import io
import os
import random
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FACEDATA = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))


def main() -> None:
    import numpy as np
    from PIL import Image, ImageOps

    from scanner.fingerprints.perceptual import perceptual_hashes
    from scanner.matching.policy import NEAR_COPY_FACE_MAX, NEAR_COPY_MAX_BITS
    from scanner.media.images import decode_image
    from scanner.registry import _variant_hashes

    def jpeg(img, q):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        return buf.getvalue()

    def phash_of(data: bytes) -> int:
        return int(perceptual_hashes(decode_image(data, 10**9).image)[0], 16)

    files = sorted((FACEDATA / "lfw_deepfunneled").rglob("*.jpg"))
    enrolled = {}
    for f in files:
        img = decode_image(f.read_bytes(), 10**9).image
        enrolled[f] = [int(h, 16) for h in _variant_hashes(img, perceptual_hashes).values()]

    edits = {
        **{f"jpeg q{q}": (lambda im, q=q: jpeg(im, q)) for q in (30, 50, 70, 95)},
        **{
            f"resize {s}x": (
                lambda im, s=s: jpeg(im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS), 90)
            )
            for s in (0.25, 0.5, 1.5, 2.0)
        },
        **{
            f"crop {c:.0%} centred": (
                lambda im, c=c: jpeg(
                    im.crop(
                        (
                            round(im.width * c),
                            round(im.height * c),
                            im.width - round(im.width * c),
                            im.height - round(im.height * c),
                        )
                    ),
                    90,
                )
            )
            for c in (0.02, 0.05, 0.10)
        },
        "crop 10% off-centre": lambda im: jpeg(im.crop((0, 0, round(im.width * 0.9), round(im.height * 0.9))), 90),
        "crop 7% off-centre": lambda im: jpeg(
            im.crop((round(im.width * 0.07), 0, im.width, round(im.height * 0.93))), 90
        ),
        "crop 3% top only": lambda im: jpeg(im.crop((0, round(im.height * 0.03), im.width, im.height)), 90),
        "grayscale": lambda im: jpeg(ImageOps.grayscale(im), 90),
        "mirror": lambda im: jpeg(ImageOps.mirror(im), 90),
        "rotate 90": lambda im: jpeg(im.transpose(Image.ROTATE_90), 90),
        "rotate 180": lambda im: jpeg(im.transpose(Image.ROTATE_180), 90),
        "mirror + q40 + 0.5x": lambda im: jpeg(ImageOps.mirror(im).resize((im.width // 2, im.height // 2)), 40),
    }
    from scanner import workers
    from scanner.models import ScanOptions

    workers.init_worker(ScanOptions())
    sample = random.Random(11).sample(files, 100)
    by_hash, by_face, found = defaultdict(int), defaultdict(int), defaultdict(int)
    for f in sample:
        img = decode_image(f.read_bytes(), 10**9).image
        original = workers.analyse(f.read_bytes()).faces
        for name, edit in edits.items():
            data = edit(img)
            hit_hash = min(bin(phash_of(data) ^ e).count("1") for e in enrolled[f]) <= NEAR_COPY_MAX_BITS
            faces = workers.analyse(data).faces
            hit_face = any(
                np.linalg.norm(np.subtract(a.encoding, b.encoding)) <= NEAR_COPY_FACE_MAX
                for a in faces
                for b in original
            )
            by_hash[name] += hit_hash
            by_face[name] += hit_face
            found[name] += hit_hash or hit_face
    total = 0
    n = len(sample)
    print(
        f"near copies of {n} LFW photos: pHash within {NEAR_COPY_MAX_BITS} bits of an enrolled variant, "
        f"or a face within {NEAR_COPY_FACE_MAX} of the enrolled face"
    )
    print(f"  {'edit':24} {'pHash':>6} {'face':>6} {'either':>7}")
    for name in edits:
        total += found[name]
        print(f"  {name:24} {by_hash[name]:6d} {by_face[name]:6d} {found[name]:7d}")
    print(f"  {'all edits':24} {total}/{n * len(edits)} = {total / (n * len(edits)):.1%}")

    originals = np.array([enrolled[f][0] for f in files], dtype=np.uint64)
    variants = np.array([enrolled[f] for f in files], dtype=np.uint64)  # (n, variants)
    false = 0
    closest = 64
    for i in range(len(files)):
        x = np.bitwise_count(variants[i][None, :] ^ originals[:, None]).min(axis=1)
        x[i] = 64
        false += int((x <= NEAR_COPY_MAX_BITS).sum())
        closest = min(closest, int(x.min()))
    pairs = len(files) * (len(files) - 1)
    print(
        f"distinct LFW photos called near copies by pHash: {false} of {pairs} ordered pairs "
        f"(closest distinct pair: {closest} bits)"
    )

    # the face route on distinct photos: every face of every photo against every other photo's faces
    import tempfile

    from scanner.pipeline import open_store, scan

    results = []
    with tempfile.TemporaryDirectory() as ws:
        store, root = open_store(ws)
        scan([str(FACEDATA / "lfw_deepfunneled")], store, ScanOptions(), on_result=results.append, workspace=root)
        store.close()
    enc = np.array([f.encoding for r in results for f in r.faces])
    photo = np.array([r.member.sha256 for r in results for _f in r.faces])
    d = np.linalg.norm(enc[:, None, :] - enc[None, :, :], axis=2)
    d[photo[:, None] == photo[None, :]] = np.inf
    face_pairs = int((d <= NEAR_COPY_FACE_MAX).sum()) // 2
    print(
        f"distinct LFW photos called near copies by face: {face_pairs} of {len(enc) * (len(enc) - 1) // 2} "
        f"face pairs (closest faces of distinct photos: {d.min():.3f})"
    )


if __name__ == "__main__":
    main()
