"""Who is in a dump: cluster every face of a scan into people, without a registry.

Method (docs/profile.md "People in a dump", measured with benchmarks/cluster_people.py on LFW and
on East Asian collections): Ward linkage over the faces' encodings, cut at WARD_CUT, where a merge
must also pass two gates scaled by the *local density* of the faces it joins. dlib's encodings are
far more crowded for some populations than for LFW (different people within 0.6 of each other:
LFW 0.65% of pairs, Chinese/Japanese/Korean celebrities 32%, JAFFE 99%), so one absolute cut that
keeps LFW's people whole merges East Asian people by the dozen. Each face's local scale sigma is
the mean distance to its LOCAL_NEIGHBOURS nearest faces outside its own cluster (in dumps of fewer
than 250 faces, to the nearest LOCAL_SHARE of them): the nearest other people, wherever the face
lies. A merge of clusters A and B, one of them of at most GATE_MAX_SIZE faces, is allowed only when

  - their centroids are within GATE_CENTROID x sigma (sigma: the geometric mean of A's and B's), and
  - their faces are on average within GATE_AVERAGE x sigma of each other (each pair's distance
    divided by the geometric mean of its two faces' sigma).

The clusters that sigma is measured against come from plain Ward at WARD_CUT first, then once more
from the gated clustering. Where the dump is sparse (LFW) the gates rarely bind and Ward's cut
decides; where it is crowded they stop singletons and small groups from being absorbed. Gates that
fail only forbid that merge: the clustering goes on (Ward's merge order, Lance-Williams updates).
The count's uncertainty is the range of counts with both gates GATE_SPREAD looser and stricter.

A video's track counts as one observation (the mean of its faces), so all faces of a track are one
person. Above WARD_EXACT_MAX observations the all-pairs matrix would not fit in memory: FAISS
k-means splits them into blocks of about WARD_BLOCK, the gated clustering runs in each block, and
clusters of different blocks whose centroids are each other's nearest are joined when their merge
passes Ward's cut and the centroid gate.

Background faces (a passer-by behind the subject) must not count as people: a face is "primary"
when it is the largest face of its photo or video frame (the most central among equals) and at
least PRIMARY_MIN_SHARE of the photo's shorter side; a cluster counts as a person when it holds a
primary face. The faces of the other clusters are background faces.
"""

from __future__ import annotations

import numpy as np

WARD_CUT = 0.95  # LFW: 283 people of 279 with Ward alone (docs/profile.md)
# The density gates, chosen on LFW and the East Asian development photos (docs/profile.md). In plain
# Ward's merges of two single faces, one person's are within 0.58-0.89 sigma (95th percentile, by
# collection), two people's from 0.71-0.92 sigma (5th percentile); GATE_AVERAGE is the strictest that
# keeps LFW within 3% of its count.
# sigma: the mean distance to the LOCAL_NEIGHBOURS nearest faces of other clusters, or to the nearest
# LOCAL_SHARE of the dump's faces (at least 2) in dumps of fewer than 250: the 10 nearest faces of a
# 100-face dump reach far past the nearest people, which loosened the gates (docs/profile.md).
LOCAL_NEIGHBOURS = 10
LOCAL_SHARE = 0.04
GATE_CENTROID = 0.90
GATE_AVERAGE = 1.01
# Merges of two clusters of more than GATE_MAX_SIZE faces are left to Ward's cut, whose centroids are
# then reliable: in plain Ward's trees of the development dumps such merges of one person's faces
# came at heights up to 0.81 (6), of two people's from 1.18 (8). The gates are for small groups.
GATE_MAX_SIZE = 8
GATE_SPREAD = 0.03  # the count's range: both gates 3% looser and 3% stricter
WARD_EXACT_MAX = 6000
WARD_BLOCK = 3000
PRIMARY_MIN_SHARE = 0.1  # a face box at least this share of the photo's shorter side
METHOD = (
    f"Ward linkage cut at {WARD_CUT}, merges gated by local density (centroids within {GATE_CENTROID}x "
    f"and faces on average within {GATE_AVERAGE}x the distance to the nearest other people)"
)


def cluster(encodings: np.ndarray, must_link_groups: list[list[int]] = ()) -> list[int]:
    """Label each face with its person (0, 1, ... by first face). Faces in one of `must_link_groups`
    (a video track) are one observation and share a label."""
    return cluster_spread(encodings, must_link_groups, (1.0,))[0]


def cluster_spread(
    encodings: np.ndarray, must_link_groups: list[list[int]] = (), factors: tuple[float, ...] = (1.0,)
) -> list[list[int]]:
    """`cluster` with the density gates multiplied by each of `factors` (1.0: as chosen; above:
    looser, fewer people; below: stricter), one labelling per factor, sharing the local scales."""
    n = len(encodings)
    if n == 0:
        return [[] for _ in factors]
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
    obs = np.asarray([encodings[idx].mean(axis=0) for idx in obs_index], dtype=np.float64)
    out = []
    for obs_labels in _people(obs, factors)[0]:
        labels = [0] * n
        for idx, label in zip(obs_index, obs_labels, strict=False):
            for i in idx:
                labels[i] = int(label)
        out.append(_renumber(labels))
    return out


def _people(x: np.ndarray, factors: tuple[float, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """Labels of the observations `x` for each gate factor, and each observation's local scale."""
    if len(x) <= WARD_EXACT_MAX:
        return _gated_exact(x, factors)
    return _gated_blocks(x, factors)


def _gated_exact(x: np.ndarray, factors: tuple[float, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform

    n = len(x)
    if n == 1:
        return [np.zeros(1, dtype=np.int64) for _ in factors], np.full(1, np.inf)
    condensed = pdist(x)
    first = fcluster(linkage(condensed, method="ward"), WARD_CUT, criterion="distance")
    dist = squareform(condensed.astype(np.float32))  # float32: 144 MB at WARD_EXACT_MAX
    del condensed
    # the local scales are measured against plain Ward's clusters, then against the gated ones
    # (plain Ward merges crowded people, which hides their nearest other people)
    neighbours = min(LOCAL_NEIGHBOURS, max(2, round(LOCAL_SHARE * n)))
    sigma = local_scale(dist, first, neighbours)
    sigma = local_scale(dist, gated_ward(x, dist, sigma), neighbours)
    return [gated_ward(x, dist, sigma, f) for f in factors], sigma


def local_scale(dist: np.ndarray, labels, neighbours: int | None = None) -> np.ndarray:
    """Each face's mean distance to its `neighbours` (LOCAL_NEIGHBOURS) nearest faces outside its own
    cluster (fewer when the dump has fewer; infinite when every face is in its cluster: no density
    to adapt to)."""
    neighbours = neighbours or LOCAL_NEIGHBOURS
    labels = np.asarray(labels)
    n = len(labels)
    sigma = np.full(n, np.inf)
    for lo in range(0, n, 512):
        rows = slice(lo, min(n, lo + 512))
        d = np.where(labels[rows, None] == labels[None, :], np.inf, dist[rows])
        k = min(neighbours, n - 1)
        nearest = np.partition(d, k - 1, axis=1)[:, :k]
        finite = np.isfinite(nearest)
        count = finite.sum(axis=1)
        total = np.where(finite, nearest, 0.0).sum(axis=1)
        sigma[rows] = np.where(count > 0, total / np.maximum(count, 1), np.inf)
    return np.maximum(sigma, 1e-6)  # identical encodings in two clusters would divide by zero


def gated_ward(x: np.ndarray, dist: np.ndarray, sigma: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Ward linkage cut at WARD_CUT whose merges must also pass the density gates (module docstring).

    Greedy: the pair of clusters with the least Ward cost is merged next (the same merges as
    scipy's Ward when no gate fails); a pair that fails a gate is set aside until one of the two
    clusters changes. Returns a cluster id per observation.
    """
    n = len(x)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    cost = np.square(dist, dtype=np.float32)  # Ward's squared merge heights, Lance-Williams updated
    np.fill_diagonal(cost, np.inf)
    barred = np.zeros((n, n), dtype=bool)
    size = np.ones(n)
    sigma_sum = np.array(sigma, dtype=np.float64)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    cut2 = WARD_CUT * WARD_CUT
    gate_centroid2, gate_average = (GATE_CENTROID * factor) ** 2, GATE_AVERAGE * factor

    def centroid_gate(k: int, cost_k: np.ndarray) -> np.ndarray:
        # Ward's cost is 2 nA nB / (nA + nB) times the squared centroid distance: the centroid gate
        # for a whole row at once, so that only pairs that pass it come up as candidates
        r2 = cost_k * (size[k] + size) / (2.0 * size[k] * size)
        return (r2 <= gate_centroid2 * (sigma_sum[k] / size[k]) * (sigma_sum / size)) | (
            np.minimum(size, size[k]) > GATE_MAX_SIZE
        )

    def nearest(k: int) -> tuple[float, int]:
        row = np.where(barred[k] | ~centroid_gate(k, cost[k]), np.inf, cost[k])
        j = int(np.argmin(row))
        return float(row[j]), j

    best = np.empty(n)
    best_of = np.empty(n, dtype=np.int64)
    for k in range(n):
        best[k], best_of[k] = nearest(k)
    with np.errstate(invalid="ignore", over="ignore"):
        while True:
            i = int(np.argmin(best))
            if not best[i] <= cut2:
                break
            j = int(best_of[i])
            ni, nj = size[i], size[j]
            a, b = members[i], members[j]
            pair_scale = np.sqrt(np.outer(sigma[a], sigma[b]))  # the centroid gate passed in nearest()
            if min(ni, nj) <= GATE_MAX_SIZE and float((dist[np.ix_(a, b)] / pair_scale).mean()) > gate_average:
                barred[i, j] = barred[j, i] = True
                best[i], best_of[i] = nearest(i)
                best[j], best_of[j] = nearest(j)
                continue
            new = ((size + ni) * cost[i] + (size + nj) * cost[j] - size * cost[i, j]) / (size + ni + nj)
            new[i] = np.inf
            new[j] = np.inf
            cost[i] = new
            cost[:, i] = new
            cost[j] = np.inf
            cost[:, j] = np.inf
            barred[i] = False
            barred[:, i] = False
            size[i] = ni + nj
            sigma_sum[i] += sigma_sum[j]
            members[i] = a + members.pop(j)
            best[j] = np.inf
            best[i], best_of[i] = nearest(i)
            for k in np.flatnonzero((best_of == i) | (best_of == j)):
                if k != i and k != j and np.isfinite(best[k]):
                    best[k], best_of[k] = nearest(int(k))
            better = (new < best) & centroid_gate(i, new)
            better[i] = False
            best[better] = new[better]
            best_of[better] = i
    labels = np.empty(n, dtype=np.int64)
    for root, idx in members.items():
        labels[idx] = root
    return labels


def _gated_blocks(x: np.ndarray, factors: tuple[float, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    import faiss

    k = int(np.ceil(len(x) / WARD_BLOCK))
    km = faiss.Kmeans(x.shape[1], k, niter=20, seed=1234)
    xf = np.ascontiguousarray(x, dtype=np.float32)
    km.train(xf)
    _, block = km.index.search(xf, 1)
    labels = [np.empty(len(x), dtype=np.int64) for _ in factors]
    sigma = np.full(len(x), np.inf)
    next_label = [0] * len(factors)
    for b in range(k):
        idx = np.flatnonzero(block[:, 0] == b)
        if len(idx) == 0:
            continue
        local, sigma[idx] = _people(x[idx], factors)
        for f in range(len(factors)):
            labels[f][idx] = local[f] + next_label[f]
            next_label[f] = int(labels[f][idx].max()) + 1
    return [_join_blocks(x, lab, sigma, factor) for lab, factor in zip(labels, factors, strict=False)], sigma


def _join_blocks(x: np.ndarray, labels: np.ndarray, sigma: np.ndarray, factor: float) -> np.ndarray:
    """Join clusters cut apart by a block boundary: clusters whose centroids are each other's nearest,
    when their merge would pass Ward's cut and the centroid gate (a one-sided or transitive rule
    chains different people together: measured in docs/profile.md)."""
    import faiss

    ids = np.unique(labels)
    if len(ids) < 2:
        return labels
    centroids = np.ascontiguousarray([x[labels == c].mean(axis=0) for c in ids], dtype=np.float32)
    size = np.asarray([np.count_nonzero(labels == c) for c in ids], dtype=np.float64)
    scale = np.asarray([sigma[labels == c].mean() for c in ids])
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    dist, nn = index.search(centroids, 2)  # itself, then its nearest other centroid
    parent = list(range(len(ids)))
    for i in range(len(ids)):
        j = int(nn[i, 1])
        if j < 0 or int(nn[j, 1]) != i or i >= j:
            continue
        d = np.sqrt(max(float(dist[i, 1]), 0.0))
        ward = np.sqrt(2 * size[i] * size[j] / (size[i] + size[j])) * d
        if ward <= WARD_CUT and d <= GATE_CENTROID * factor * np.sqrt(scale[i] * scale[j]):
            parent[j] = i
    root = {c: parent[i] for i, c in enumerate(ids)}
    return np.asarray([root[c] for c in labels], dtype=np.int64)


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

    both = pairs(Counter(zip(labels, truth, strict=False)))
    predicted = pairs(Counter(labels))
    actual = pairs(Counter(truth))
    precision = both / predicted if predicted else 1.0
    recall = both / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def assign_people(faces: list[dict]) -> tuple[list[tuple[int, int, bool]], dict]:
    """Cluster a scan's faces (rows of CaseStore.iter_faces) into people.

    Return ([(face id, person, background)], summary). Persons are numbered by first appearance;
    background faces keep the number of their cluster but do not count as people. The summary's
    `people_range` is the count with the density gates GATE_SPREAD stricter and looser: how much
    the count depends on where the gates sit (wide in crowded dumps), not a confidence interval.
    """
    from collections import defaultdict

    if not faces:
        return [], {"people": 0, "people_range": [0, 0], "faces": 0, "background_faces": 0}
    encodings = np.asarray([f["encoding"] for f in faces], dtype=np.float64)
    by_member: dict[int, list[dict]] = defaultdict(list)
    for f in faces:
        by_member[f["seq"]].append(f)
    tracks: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, f in enumerate(faces):
        if f["video"] and f["track"] is not None:
            tracks[(f["seq"], f["track"])].append(i)
    labels, *nearby = cluster_spread(encodings, list(tracks.values()), (1.0, 1.0 - GATE_SPREAD, 1.0 + GATE_SPREAD))
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
    for f, label, p in zip(faces, labels, primary, strict=False):
        members_of[label].add(f["seq"])
        if p:
            has_primary.add(label)
    people = has_primary  # a cluster of background faces only is passers-by, however often they pass
    out = [(f["face_id"], label, label not in people) for f, label in zip(faces, labels, strict=False)]
    counts = [len(people)] + [len({lab for lab, p in zip(other, primary, strict=False) if p}) for other in nearby]
    return out, {
        "people": len(people),
        "people_range": [min(counts), max(counts)],
        "faces": len(faces),
        "background_faces": sum(1 for _, label, bg in out if bg),
        "method": METHOD,
    }


def ensure_people(store, scan_id: str) -> dict | None:
    """Cluster a stored scan's faces if that was never done (scans made before this version)."""
    if store.faces_without_person(scan_id) == 0:
        return None
    assignments, summary = assign_people(list(store.iter_faces(scan_id)))
    store.set_people(assignments)
    return summary
