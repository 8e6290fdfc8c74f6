"""Benchmark: choose how to cluster a dump's faces into people, measured on lfw_deepfunneled.

Scans ../shared/facedata/lfw_deepfunneled (1,896 photos, 279 people) once into a workspace (kept
in --cache for reruns), takes each photo's primary face (scanner.profile.people.is_primary) with
its folder as the true identity, and prints for each method and threshold: the estimated number
of people (clusters holding a primary face), its error against 279, and
pairwise precision, recall and F1 over the primary faces. Background faces are counted apart.

Usage: python benchmarks/cluster_lfw.py [--folder DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def scan_of(folder: Path, cache: Path):
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    store, _root = open_store(str(cache))
    done = [
        s
        for s in store.list_scans()
        if s["status"] == "finished" and [i["abspath"] for i in s["inputs"]] == [str(folder.resolve())]
    ]
    return store, (done[-1]["id"] if done else scan([str(folder.resolve())], store, ScanOptions()).scan_id)


def load_faces(folder: Path, cache: Path):
    store, scan_id = scan_of(folder, cache)
    return [m for m in store.iter_members(scan_id) if m["status"] == "ok" and m["image"]]


def link_graph(encodings: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Edges (i, j, weight) between faces within `threshold` of each other (FAISS range search)."""
    import faiss

    x = np.ascontiguousarray(encodings, dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    lims, dist, ids = index.range_search(x, threshold * threshold)
    edges = []
    for i in range(len(x)):
        for d, j in zip(dist[lims[i] : lims[i + 1]], ids[lims[i] : lims[i + 1]], strict=False):
            if j > i:
                edges.append((i, int(j), float(1.0 - np.sqrt(max(d, 0.0)))))
    return edges


def chinese_whispers(encodings: np.ndarray, threshold: float) -> list[int]:
    """Chinese whispers (dlib) over the link graph: measured against Ward, not what a scan uses."""
    import dlib

    n = len(encodings)
    edges = [(i, j) for i, j, _w in link_graph(encodings, threshold)] + [(i, i) for i in range(n)]
    first: dict[int, int] = {}
    return [first.setdefault(int(label), len(first)) for label in dlib.chinese_whispers(edges)]


def main() -> None:
    from scanner.profile.people import cluster, is_primary, pairwise_scores

    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facetrace-lfw-cache"))
    args = ap.parse_args()
    members = load_faces(args.folder, args.cache)
    encs, truth, primary = [], [], []
    for m in members:
        for f in m["faces"]:
            encs.append(f["encoding"])
            truth.append(m["relpath"].split("/")[0])
            primary.append(is_primary(f, m["faces"], m["image"]["width"], m["image"]["height"]))
    encs = np.asarray(encs)
    primary = np.asarray(primary)
    people = len(set(truth))
    print(
        f"{len(members)} photos with faces, {len(encs)} faces, {int(primary.sum())} primary, "
        f"{len(encs) - int(primary.sum())} background; {people} people"
    )
    print(f"{'method':<38} thr   people  error   precision recall  F1      time")
    from scipy.cluster.hierarchy import fcluster, linkage

    runs = [("gated ward (profile.people.cluster)", None)]  # benchmarks/cluster_people.py: other populations
    runs += [("ward", t) for t in (0.8, 0.9, 1.0, 1.2)]
    runs += [
        (m, t)
        for m in ("average-linkage", "complete-linkage", "chinese-whispers", "connected")
        for t in (0.45, 0.5, 0.55, 0.6, 0.65)
    ]
    for method, thr in runs:
        if True:
            t = time.perf_counter()
            if thr is None:
                labels = cluster(encs)
            elif method == "ward":
                labels = list(fcluster(linkage(encs, "ward"), thr, criterion="distance"))
            elif method == "chinese-whispers":
                labels = chinese_whispers(encs, thr)
            elif method in ("average-linkage", "complete-linkage"):
                labels = list(fcluster(linkage(encs, method.split("-")[0]), thr, criterion="distance"))
            else:
                from scipy.sparse import coo_matrix
                from scipy.sparse.csgraph import connected_components

                e = link_graph(encs, thr)
                g = coo_matrix(([1] * len(e), ([a for a, _, _ in e], [b for _, b, _ in e])), shape=(len(encs),) * 2)
                labels = list(connected_components(g, directed=False)[1])
            elapsed = time.perf_counter() - t
            labels = np.asarray(labels)
            counted = set(labels[primary])
            s = pairwise_scores(list(labels[primary]), [t for t, p in zip(truth, primary, strict=False) if p])
            print(
                f"{method:<38} {'gate' if thr is None else f'{thr:.2f}'}  {len(counted):>6}  {(len(counted) - people) / people:+6.1%}  "
                f"{s['precision']:.4f}    {s['recall']:.4f}  {s['f1']:.4f}  {elapsed:.2f} s"
            )
    from scanner.profile.dump import build_profile
    from scanner.profile.people import assign_people

    store, scan_id = scan_of(args.folder, args.cache)
    assignments, _summary = assign_people(list(store.iter_faces(scan_id)))  # this version's clustering
    store.set_people(assignments)
    profile = build_profile(store, scan_id)
    print(f"facetrace profile: {profile['packaging']['signature']}")
    print(f"  photos per person {profile['people']['photos_per_person']}; bundle score {profile['bundle']['score']}")


if __name__ == "__main__":
    main()
