"""Accuracy figures of `scan` on LFW: faces found per photo, same/different-person distances.

Scans ../shared/facedata/lfw_deepfunneled with facetrace's defaults and prints:
  - how many photos yield exactly one face, none, or several;
  - the acceptance rate at several thresholds for the tests' 200 same-person and 200
    different-person pairs (tests/scanner/fingerprints/test_faces.py), and for every same-person
    pair of the set and 20,000 random different-person pairs.
The face used per photo is the one nearest the centre (LFW photos are centred on their subject).

Usage: python benchmarks/lfw_accuracy.py [--folder DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

THRESHOLDS = (0.45, 0.5, 0.55, 0.6)


def main() -> None:
    import numpy as np

    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan
    from tests.scanner.fingerprints.test_faces import _pairs, central_encodings

    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as ws:
        store, root = open_store(ws)
        scan([str(args.folder)], store, ScanOptions(), on_result=results.append, workspace=root)
        store.close()
    per_photo = Counter(min(len(r.faces), 2) for r in results)
    n = len(results)
    print(f"# {n} photos from {args.folder}")
    print(
        f"faces per photo: one {per_photo[1] / n:.1%}, none {per_photo[0] / n:.1%}, two or more {per_photo[2] / n:.1%}"
    )
    central = central_encodings(results)

    def rates(pairs):
        d = [
            np.linalg.norm(central[str(a)] - central[str(b)]) if str(a) in central and str(b) in central else np.inf
            for a, b in pairs
        ]
        d = np.array(d)
        return [float((d <= t).mean()) for t in THRESHOLDS], len(pairs)

    same, different, _ = _pairs(args.folder)
    by_person = {}
    for r in results:
        by_person.setdefault(r.member.relpath.split("/")[0], []).append(args.folder / r.member.relpath)
    all_same = [p for photos in by_person.values() for p in itertools.combinations(photos, 2)]
    rng = random.Random(7)
    names = sorted(by_person)
    many_diff = []
    while len(many_diff) < 20000:
        a, b = rng.sample(names, 2)
        many_diff.append((rng.choice(by_person[a]), rng.choice(by_person[b])))
    print(f"{'pairs':44} " + " ".join(f"<= {t:<5}" for t in THRESHOLDS))
    for label, pairs in [
        ("tests' same-person pairs", same),
        ("tests' different-person pairs", different),
        ("all same-person pairs", all_same),
        ("random different-person pairs", many_diff),
    ]:
        r, count = rates(pairs)
        print(f"{label + f' ({count})':44} " + " ".join(f"{x:8.2%}" for x in r))


if __name__ == "__main__":
    main()
