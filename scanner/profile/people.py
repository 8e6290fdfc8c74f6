"""Who is in a dump: cluster every face of a scan into people, without a registry.

Method (chosen by measurement on lfw_deepfunneled, docs/profile.md "People in a dump"): Ward
linkage over the faces' encodings, cut at WARD_CUT. Average, complete and weighted linkage and
Chinese whispers were measured too and did worse. A video's track counts as one observation (the
mean of its faces), so all faces of a track are one person. Above WARD_EXACT_MAX observations the
all-pairs matrix would not fit in memory: FAISS k-means splits them into blocks of about
WARD_BLOCK, Ward runs in each block, and clusters of different blocks that are each other's
nearest, with centroids within BLOCK_MERGE, are joined.

Background faces (a passer-by behind the subject) must not count as people: a face is "primary"
when it is the largest face of its photo or video frame (the most central among equals) and at
least PRIMARY_MIN_SHARE of the photo's shorter side; a cluster counts as a person when it holds a
primary face. The faces of the other clusters are background faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LINK_DISTANCE = 0.5  # for link_graph (kept for the benchmark's comparison)
WARD_CUT = 0.95
WARD_EXACT_MAX = 6000
WARD_BLOCK = 3000
BLOCK_MERGE = 0.35
PRIMARY_MIN_SHARE = 0.1  # a face box at least this share of the photo's shorter side
CW_ITERATIONS = 100


@dataclass
class FaceRef:
    seq: int  # member
    face_index: int
    encoding: np.ndarray
    primary: bool
    track: int | None = None  # video track within the member


def link_graph(encodings: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Edges (i, j, weight) between faces within `threshold` of each other (FAISS range search)."""
    import faiss

    x = np.ascontiguousarray(encodings, dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    lims, dist, ids = index.range_search(x, threshold * threshold)
    edges = []
    for i in range(len(x)):
        for d, j in zip(dist[lims[i]:lims[i + 1]], ids[lims[i]:lims[i + 1]]):
            if j > i:
                edges.append((i, int(j), float(1.0 - np.sqrt(max(d, 0.0)))))
    return edges


def chinese_whispers(encodings: np.ndarray, threshold: float = LINK_DISTANCE) -> list[int]:
    """Chinese whispers (dlib) over the link graph: measured against Ward, not used by default."""
    import dlib

    n = len(encodings)
    edges = [(i, j) for i, j, _w in link_graph(encodings, threshold)] + [(i, i) for i in range(n)]
    return _renumber(dlib.chinese_whispers(edges))


def cluster(encodings: np.ndarray, must_link_groups: list[list[int]] = ()) -> list[int]:
    """Label each face with its person (0, 1, ... by first face). Faces in one of `must_link_groups`
    (a video track) are one observation and share a label."""
    n = len(encodings)
    if n == 0:
        return []
    group_of = {}
    for g, idx in enumerate(must_link_groups):
        for i in idx:
            group_of[i] = g
    obs_index: list[list[int]] = []
    seen_groups: dict[int, int] = {}
    for i in range(n):
        g = group_of.get(i)
        if g is None:
            obs_index.append([i])
        elif g in seen_groups:
            obs_index[seen_groups[g]].append(i)
        else:
            seen_groups[g] = len(obs_index)
            obs_index.append([i])
    obs = np.asarray([encodings[idx].mean(axis=0) for idx in obs_index])
    obs_labels = _ward(obs) if len(obs) <= WARD_EXACT_MAX else _ward_blocks(obs)
    labels = [0] * n
    for idx, label in zip(obs_index, obs_labels):
        for i in idx:
            labels[i] = label
    return _renumber(labels)


def _ward(x: np.ndarray) -> list[int]:
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(x) == 1:
        return [0]
    return [int(v) for v in fcluster(linkage(x, method="ward"), WARD_CUT, criterion="distance")]


def _ward_blocks(x: np.ndarray) -> list[int]:
    import faiss

    k = int(np.ceil(len(x) / WARD_BLOCK))
    km = faiss.Kmeans(x.shape[1], k, niter=20, seed=1234)
    xf = np.ascontiguousarray(x, dtype=np.float32)
    km.train(xf)
    _, block = km.index.search(xf, 1)
    labels = np.empty(len(x), dtype=np.int64)
    next_label = 0
    for b in range(k):
        idx = np.flatnonzero(block[:, 0] == b)
        if len(idx) == 0:
            continue
        local = np.asarray(_ward(x[idx]) if len(idx) <= WARD_EXACT_MAX else _ward_blocks(x[idx]))
        labels[idx] = local + next_label
        next_label = int(labels[idx].max()) + 1
    # join clusters cut apart by a block boundary: mutual nearest centroids within BLOCK_MERGE (a
    # one-sided or transitive rule chains different people together: measured in docs/profile.md)
    import faiss

    ids = np.unique(labels)
    centroids = np.ascontiguousarray([x[labels == c].mean(axis=0) for c in ids], dtype=np.float32)
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    dist, nn = index.search(centroids, 2)  # itself, then its nearest other centroid
    parent = list(range(len(ids)))
    for i in range(len(ids)):
        j = int(nn[i, 1])
        if j >= 0 and int(nn[j, 1]) == i and i < j and np.sqrt(max(dist[i, 1], 0.0)) <= BLOCK_MERGE:
            parent[j] = i
    root = {c: parent[i] for i, c in enumerate(ids)}
    return [int(root[c]) for c in labels]


def _renumber(labels) -> list[int]:
    first: dict[int, int] = {}
    return [first.setdefault(int(label), len(first)) for label in labels]


def is_primary(box: dict, all_boxes: list[dict], width: int, height: int) -> bool:
    """Whether `box` is the photo's subject: its largest face (the one nearest the centre among
    equals: HOG boxes come in a few sizes), and not a speck."""
    def side(b):
        return max(b["right"] - b["left"], b["bottom"] - b["top"])

    def rank(b):
        cx, cy = (b["left"] + b["right"]) / 2 - width / 2, (b["top"] + b["bottom"]) / 2 - height / 2
        return (side(b), -(cx * cx + cy * cy))

    subject = max(all_boxes, key=rank)
    return rank(box) == rank(subject) and side(box) >= PRIMARY_MIN_SHARE * min(width, height)


def pairwise_scores(labels: list[int], truth: list[str]) -> dict:
    """Pairwise precision, recall and F1 of a clustering against true identities."""
    from collections import Counter

    def pairs(counter):
        return sum(c * (c - 1) // 2 for c in counter.values())

    both = pairs(Counter(zip(labels, truth)))
    predicted = pairs(Counter(labels))
    actual = pairs(Counter(truth))
    precision = both / predicted if predicted else 1.0
    recall = both / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def assign_people(faces: list[dict]) -> tuple[list[tuple[int, int, bool]], dict]:
    """Cluster a scan's faces (rows of CaseStore.iter_faces) into people.

    Return ([(face id, person, background)], summary). Persons are numbered by first appearance;
    background faces keep the number of their cluster but do not count as people.
    """
    from collections import defaultdict

    if not faces:
        return [], {"people": 0, "faces": 0, "background_faces": 0}
    encodings = np.asarray([f["encoding"] for f in faces], dtype=np.float64)
    by_member: dict[int, list[dict]] = defaultdict(list)
    for f in faces:
        by_member[f["seq"]].append(f)
    tracks: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, f in enumerate(faces):
        if f["video"] and f["track"] is not None:
            tracks[(f["seq"], f["track"])].append(i)
    labels = cluster(encodings, list(tracks.values()))
    by_frame: dict[tuple, list[dict]] = defaultdict(list)
    for f in faces:
        by_frame[(f["seq"], f["frame_ms"])].append(f)
    primary = []
    for f in faces:
        # a photo's subject, or in a video the subject of the frame (the frame's size is that of the
        # largest face's photo: a speck rule needs no frame size, so the video's width is unknown)
        width, height = (f["width"] or 0, f["height"] or 0)
        primary.append(is_primary(f, by_frame[(f["seq"], f["frame_ms"])], width, height))
    members_of: dict[int, set[int]] = defaultdict(set)
    has_primary: set[int] = set()
    for f, label, p in zip(faces, labels, primary):
        members_of[label].add(f["seq"])
        if p:
            has_primary.add(label)
    people = has_primary  # a cluster of background faces only is passers-by, however often they pass
    out = [(f["face_id"], label, label not in people) for f, label in zip(faces, labels)]
    return out, {"people": len(people), "faces": len(faces),
                 "background_faces": sum(1 for _, label, bg in out if bg), "method": f"ward@{WARD_CUT}"}


def ensure_people(store, scan_id: str) -> dict | None:
    """Cluster a stored scan's faces if that was never done (scans made before this version)."""
    if store.faces_without_person(scan_id) == 0:
        return None
    assignments, summary = assign_people(list(store.iter_faces(scan_id)))
    store.set_people(assignments)
    return summary
