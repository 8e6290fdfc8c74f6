"""Vector indexes of 128-d face templates: an exact numpy reference, FAISS flat, FAISS IVF.

Every index returns Euclidean (not squared) distances and the caller's int64 ids, supports
incremental `add` and `remove` (removed vectors are really deleted from the index's memory and
file, which erasure needs), and persists as `faiss.write_index` output plus a JSON manifest
(kind, embedder, dimension, metric, count, SHA-256 of the index file). Nothing is pickled.

`make_index(n)` picks the kind by size: exact flat search below `APPROX_ABOVE` vectors, where a
single query stays under a few milliseconds (benchmarks/bench_index.py), IVF above it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Protocol

import numpy as np

DIM = 128
METRIC = "l2"
# Above this many vectors an exact search of one query costs more than about 5 ms on the
# reference machine (benchmarks/bench_index.py), so an approximate index takes over.
APPROX_ABOVE = 50_000
# IVF: 4 x sqrt(n) lists, 32 searched per query. At 1,000,000 templates (4,000 lists) one query
# costs 0.76 ms at p50 with recall@1 0.993 for a new photo of an enrolled person, against 1.4 ms
# for sqrt(n) lists (benchmarks/bench_index.py, docs/performance.md).
LISTS_PER_SQRT_N = 4
TRAIN_PER_LIST = 50  # k-means points per list (faiss warns below 39)
MIN_TRAIN_SAMPLE = 100_000


class IndexMismatch(Exception):
    """A stored index was built for another embedder, dimension or kind, or its file is damaged."""


class VectorIndex(Protocol):
    kind: str

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances, ids), each (len(queries), k), nearest first; missing slots are (inf, -1)."""
        ...

    def ids(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


def _as_vectors(x) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, DIM))
    return x


def _as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


class BruteForceIndex:
    """The oracle: exact search with numpy. Every other index is tested against it."""

    kind = "numpy-bruteforce"

    def __init__(self):
        self._ids = np.empty(0, dtype=np.int64)
        self._vecs = np.empty((0, DIM), dtype=np.float32)

    def add(self, ids, vectors) -> None:
        ids, vectors = _as_ids(ids), _as_vectors(vectors)
        if np.isin(ids, self._ids).any() or len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate ids")
        self._ids = np.concatenate([self._ids, ids])
        self._vecs = np.concatenate([self._vecs, vectors])

    def remove(self, ids) -> int:
        keep = ~np.isin(self._ids, _as_ids(ids))
        removed = int((~keep).sum())
        self._ids, self._vecs = self._ids[keep], self._vecs[keep]
        return removed

    def search(self, queries, k):
        q = _as_vectors(queries)
        dist = np.full((len(q), k), np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        if len(self._ids) == 0:
            return dist, out
        d = np.sqrt(((q[:, None, :].astype(np.float64) - self._vecs[None, :, :]) ** 2).sum(-1)).astype(np.float32)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        n = order.shape[1]
        dist[:, :n] = np.take_along_axis(d, order, 1)
        out[:, :n] = self._ids[order]
        return dist, out

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def __len__(self) -> int:
        return len(self._ids)


class _FaissIndex:
    kind = ""

    def __init__(self, index=None):
        self._index = index if index is not None else self._new()

    def _new(self):
        raise NotImplementedError

    def add(self, ids, vectors) -> None:
        ids, vectors = _as_ids(ids), _as_vectors(vectors)
        if len(ids) == 0:
            return
        self._prepare(vectors)
        self._index.add_with_ids(vectors, ids)

    def _prepare(self, vectors) -> None:
        pass

    def remove(self, ids) -> int:
        ids = _as_ids(ids)
        return int(self._index.remove_ids(ids)) if len(ids) else 0

    def search(self, queries, k):
        q = _as_vectors(queries)
        d2, out = self._index.search(q, k)
        dist = np.sqrt(np.maximum(d2, 0), dtype=np.float32)
        dist[out < 0] = np.inf
        return dist, out

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def faiss_index(self):
        return self._index


class FlatIndex(_FaissIndex):
    """Exact L2 search (faiss IndexFlatL2 behind an id map that supports removal)."""

    kind = "faiss-flat"

    def _new(self):
        import faiss

        return faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)


class IVFIndex(_FaissIndex):
    """Approximate search: inverted lists over a k-means coarse quantizer (faiss IndexIVFFlat).

    Trained on the first batch added (at least 39 vectors per list, faiss's own minimum); later
    additions and removals are incremental. `nprobe` lists are searched per query.
    """

    kind = "faiss-ivf-flat"

    def __init__(self, index=None, nlist: int | None = None, nprobe: int = 32):
        self._nlist = nlist
        self.nprobe = nprobe
        super().__init__(index)
        if index is not None:
            self._index.nprobe = nprobe

    def _new(self):
        return None  # built at the first add, when the data size is known

    def _prepare(self, vectors) -> None:
        import faiss

        if self._index is None:
            nlist = self._nlist or max(1, min(int(LISTS_PER_SQRT_N * math.sqrt(len(vectors))), len(vectors) // 39))
            quantizer = faiss.IndexFlatL2(DIM)
            index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_L2)
            # k-means needs a sample, not everything: 200k vectors train 4,000 lists in 10 s
            sample = vectors
            size = max(MIN_TRAIN_SAMPLE, TRAIN_PER_LIST * nlist)
            if len(vectors) > size:
                rng = np.random.default_rng(0)
                sample = vectors[rng.choice(len(vectors), size, replace=False)]
            index.train(sample)
            index.nprobe = min(self.nprobe, nlist)
            self._index = index

    def search(self, queries, k):
        if self._index is None:
            q = _as_vectors(queries)
            return np.full((len(q), k), np.inf, dtype=np.float32), np.full((len(q), k), -1, dtype=np.int64)
        return super().search(queries, k)

    def remove(self, ids) -> int:
        return 0 if self._index is None else super().remove(ids)

    def ids(self) -> np.ndarray:
        import faiss

        if self._index is None:
            return np.empty(0, dtype=np.int64)
        invlists = self._index.invlists
        out = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
               for i in range(self._index.nlist) if invlists.list_size(i)]
        return np.concatenate(out).astype(np.int64) if out else np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)


def make_index(expected_size: int) -> VectorIndex:
    """Return an empty index of the kind that suits `expected_size` vectors."""
    return FlatIndex() if expected_size <= APPROX_ABOVE else IVFIndex()


# -- persistence ---------------------------------------------------------------------------------


def save_index(index: _FaissIndex, path: str | os.PathLike, embedder: str, embedder_version: str) -> dict:
    """Write `path` (faiss format) and `path`.json (manifest) atomically; return the manifest."""
    import faiss

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if index.faiss_index is None:
        raise ValueError("an untrained index has nothing to save")
    faiss.write_index(index.faiss_index, str(tmp))
    manifest = {
        "format": 1,
        "kind": index.kind,
        "embedder": embedder,
        "embedder_version": embedder_version,
        "dim": DIM,
        "metric": METRIC,
        "count": len(index),
        "sha256": _sha256(tmp),
    }
    os.replace(tmp, path)
    _write_json(path.with_suffix(path.suffix + ".json"), manifest)
    return manifest


def load_index(path: str | os.PathLike, embedder: str, embedder_version: str) -> _FaissIndex:
    """Read an index saved by `save_index`, refusing one made by another embedder or damaged."""
    import faiss

    path = Path(path)
    if not path.is_file():
        raise IndexMismatch(f"index file {path} is missing")
    manifest = read_manifest(path)
    if manifest.get("embedder") != embedder or manifest.get("embedder_version") != embedder_version:
        raise IndexMismatch(f"{path} was built by {manifest.get('embedder')} {manifest.get('embedder_version')}, "
                            f"not {embedder} {embedder_version}")
    if manifest.get("dim") != DIM or manifest.get("metric") != METRIC:
        raise IndexMismatch(f"{path} has dimension {manifest.get('dim')} / metric {manifest.get('metric')}")
    if _sha256(path) != manifest.get("sha256"):
        raise IndexMismatch(f"{path} does not match the checksum in its manifest")
    try:
        raw = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexMismatch(f"{path} cannot be read by faiss: {exc}") from None
    kind = manifest.get("kind")
    index = FlatIndex(raw) if kind == FlatIndex.kind else IVFIndex(raw) if kind == IVFIndex.kind else None
    if index is None:
        raise IndexMismatch(f"{path}: unknown index kind {kind!r}")
    if len(index) != manifest.get("count"):
        raise IndexMismatch(f"{path} holds {len(index)} vectors, its manifest says {manifest.get('count')}")
    return index


def read_manifest(path: str | os.PathLike) -> dict:
    mpath = Path(str(path) + ".json")
    try:
        return json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise IndexMismatch(f"index manifest {mpath} is missing or unreadable: {exc}") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)
