"""Benchmark: how many people the dump profile counts, per population, with the real scan path.

Scans into a workspace (kept in --cache for reruns), as a dump is scanned:
- `lfw`: ../shared/facedata/lfw_deepfunneled (1,896 photos, 279 people, one folder each);
- `east_asian`: ../shared/facedata/east_asian as one dump (asian_faces_nz, asianfaces_tfp with its
  many single-photo people, jaffe, nuaa_clientraw; see its SOURCES.md), and each collection alone
  (the faces of that collection's photos in the same scan: a photo's faces do not depend on the
  rest of the dump, so this is the clustering a scan of the collection alone runs);
- `mixed`: both folders in one scan.
Then clusters the stored faces with `scanner.profile.people.assign_people` (the scan's own step)
and, for comparison, with plain Ward at WARD_CUT (the method before the density gates). Each
photo's primary face is scored against its folder (east_asian/identities.csv links the people
filed under two names, and East Asian people also in LFW): people counted (clusters holding a
primary face) against the true number, the count's range (assign_people's `people_range`), and
pairwise precision, recall and F1 over the primary faces.

The lfw and east_asian dumps are also clustered in k-means blocks (--blocks), the path of dumps
of more than WARD_EXACT_MAX faces, forced here with small blocks; and smaller dumps of the same
populations are taken from the same scans (the first 40 and 100 LFW people by name, the first 60
and 150 asianfaces_tfp people, every second East Asian person).

Usage: python benchmarks/cluster_people.py [--facedata DIR] [--cache DIR] [--dumps lfw east_asian mixed]
       [--blocks 1500 700 400]
(about 2 minutes on 2 cores the first time, for the three scans; about 20 s afterwards)
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
EAST_ASIAN = ("asian_faces_nz", "asianfaces_tfp", "jaffe", "nuaa_clientraw")


def stored_faces(folders: list[Path], cache: Path) -> list[dict]:
    """The faces of a scan of `folders` (scanned once, then taken from the cache's workspace)."""
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    store, root = open_store(str(cache))
    inputs = [str(f.resolve()) for f in folders]
    done = [
        s for s in store.list_scans() if s["status"] == "finished" and [i["abspath"] for i in s["inputs"]] == inputs
    ]
    scan_id = done[-1]["id"] if done else scan(inputs, store, ScanOptions(), workspace=root).scan_id
    return list(store.iter_faces(scan_id))


def same_people(facedata: Path) -> dict[str, str]:
    """{folder identity: one name for the person} for the people east_asian/identities.csv links
    across collections and to LFW names."""
    canon: dict[str, str] = {}
    table = facedata / "east_asian" / "identities.csv"
    if not table.exists():
        return canon
    for row in csv.DictReader(table.open(encoding="utf-8")):
        names = [f"{row['collection']}/{row['identity']}"]
        if row.get("same_person_as"):
            names.append(row["same_person_as"])
        overlap = row.get("lfw_name_overlap") or ""
        if overlap.startswith("name also in LFW as "):
            lfw_name = overlap[len("name also in LFW as ") :].split(";")[0].strip()
            canon[lfw_name] = lfw_name
            names.append(lfw_name)
        lfw = [n for n in names if "/" not in n]
        canon[names[0]] = min(lfw) if lfw else min(names)
    return canon


def identity(relpath: str, canon: dict[str, str]) -> str:
    """The true person of a face from its path: <collection>/<identity>/<file> (east_asian) or
    <person>/<file> (LFW)."""
    parts = relpath.split("/")
    name = "/".join(parts[:2]) if len(parts) >= 3 and parts[0] in EAST_ASIAN else parts[0]
    return canon.get(name, name)


def first_people(faces: list[dict], canon: dict[str, str], n: int) -> list[dict]:
    """The faces of the first `n` people by name: a smaller dump of the same population."""
    keep = set(sorted({identity(f["relpath"], canon) for f in faces})[:n])
    return [f for f in faces if identity(f["relpath"], canon) in keep]


def plain_ward(faces: list[dict]) -> list[int]:
    from scipy.cluster.hierarchy import fcluster, linkage

    from scanner.profile.people import WARD_CUT

    x = np.asarray([f["encoding"] for f in faces])
    return [0] * len(x) if len(x) < 2 else list(fcluster(linkage(x, "ward"), WARD_CUT, criterion="distance"))


def primary_flags(faces: list[dict]) -> list[bool]:
    from scanner.profile.people import is_primary

    by_frame: dict[tuple, list[dict]] = defaultdict(list)
    for f in faces:
        by_frame[(f["seq"], f["frame_ms"])].append(f)
    return [is_primary(f, by_frame[(f["seq"], f["frame_ms"])], f["width"] or 0, f["height"] or 0) for f in faces]


def report(name: str, faces: list[dict], canon: dict[str, str], blocks: tuple[int, ...] = ()) -> None:
    import scanner.profile.people as people
    from scanner.profile.people import assign_people, pairwise_scores

    primary = primary_flags(faces)
    truth = [identity(f["relpath"], canon) for f in faces]
    true_people = len({t for t, p in zip(truth, primary, strict=False) if p})
    t = time.perf_counter()
    assignments, summary = assign_people(faces)
    elapsed = time.perf_counter() - t
    rows = [
        ("ward (before)", plain_ward(faces), None),
        ("gated ward (assign_people)", [person for _, person, _ in assignments], summary["people_range"]),
    ]
    for method, labels, spread in rows:
        counted = len({lab for lab, p in zip(labels, primary, strict=False) if p})
        s = pairwise_scores(
            [lab for lab, p in zip(labels, primary, strict=False) if p],
            [t for t, p in zip(truth, primary, strict=False) if p],
        )
        span = f"{spread[0]}-{spread[1]}" if spread else ""
        print(
            f"{name:<16} {method:<27} {sum(primary):>7} {true_people:>6} {counted:>7} {span:>9} "
            f"{(counted - true_people) / true_people:+7.1%}  {s['precision']:.3f}  {s['recall']:.3f}  {s['f1']:.3f}"
        )
    print(f"{'':<16} {'':<27} clustering with the range: {elapsed:.1f} s", flush=True)
    exact = people.WARD_EXACT_MAX, people.WARD_BLOCK
    for size in blocks:  # the path of dumps above WARD_EXACT_MAX faces, forced with small blocks
        people.WARD_EXACT_MAX = people.WARD_BLOCK = size
        try:
            labels = [person for _, person, _ in assign_people(faces)[0]]
        finally:
            people.WARD_EXACT_MAX, people.WARD_BLOCK = exact
        counted = len({lab for lab, p in zip(labels, primary, strict=False) if p})
        s = pairwise_scores(
            [lab for lab, p in zip(labels, primary, strict=False) if p],
            [t for t, p in zip(truth, primary, strict=False) if p],
        )
        print(
            f"{name:<16} {'  in blocks of ' + str(size):<27} {sum(primary):>7} {true_people:>6} {counted:>7} {'':>9} "
            f"{(counted - true_people) / true_people:+7.1%}  {s['precision']:.3f}  {s['recall']:.3f}  {s['f1']:.3f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--facedata", type=Path, default=Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))
    )
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facetrace-people-cache"))
    ap.add_argument(
        "--dumps", nargs="+", default=["lfw", "east_asian", "mixed"], choices=["lfw", "east_asian", "mixed"]
    )
    ap.add_argument(
        "--blocks",
        nargs="*",
        type=int,
        default=[1500, 700, 400],
        help="also cluster the lfw and east_asian dumps in k-means blocks of these sizes",
    )
    args = ap.parse_args()
    lfw, east = args.facedata / "lfw_deepfunneled", args.facedata / "east_asian"
    for folder in (lfw, east):
        if not folder.is_dir():
            sys.exit(f"photo folder not found: {folder} (give --facedata or set FACETRACE_FACEDATA)")
    canon = same_people(args.facedata)
    print(
        f"{'dump':<16} {'method':<27} {'primary':>7} {'truth':>6} {'counted':>7} {'range':>9} {'error':>7}  "
        f"{'prec.':<5}  {'rec.':<5}  {'F1':<5}"
    )
    if "lfw" in args.dumps:
        faces = stored_faces([lfw], args.cache)
        report("lfw", faces, canon, tuple(args.blocks))
        for n in (40, 100):  # smaller dumps: the first people by name
            report(f"  first {n}", first_people(faces, canon, n), canon)
    if "east_asian" in args.dumps:
        faces = stored_faces([east], args.cache)
        report("east_asian", faces, canon, tuple(args.blocks))
        for coll in EAST_ASIAN:
            report(f"  {coll}", [f for f in faces if f["relpath"].startswith(coll + "/")], canon)
        tfp = [f for f in faces if f["relpath"].startswith("asianfaces_tfp/")]
        for n in (60, 150):
            report(f"  tfp first {n}", first_people(tfp, canon, n), canon)
        names = sorted({identity(f["relpath"], canon) for f in faces})
        half = set(names[::2])
        report("  every 2nd", [f for f in faces if identity(f["relpath"], canon) in half], canon)
    if "mixed" in args.dumps:
        report("lfw+east_asian", stored_faces([lfw, east], args.cache), canon)


if __name__ == "__main__":
    main()
