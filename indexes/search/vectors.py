"""Vector indexes of face templates (128-d for dlib's encodings; any size for an operator's model): an exact numpy reference, FAISS flat, FAISS IVF.

Every index returns Euclidean (not squared) distances and the caller's int64 ids, supports
incremental `add` and `remove` (removed vectors are really deleted from the index's memory and
file, which erasure needs), and persists with a JSON manifest (kind, embedder, dimension, metric,
count, SHA-256 of every file). Nothing is pickled. The flat index is one `faiss.write_index` file;
the IVF index (the large one) is a segmented index (indexes/search/segments.py): the trained, empty index
as a FAISS header file and its inverted lists in `IVF_SEGMENTS` segment files, so that adding or
removing a subject rewrites the few segments it touched (at 1,000,000 templates about 8 MiB each)
instead of the whole 500 MiB index.

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

DIM = 128  # dlib's encodings; an index of an operator's model is made with its own size
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
# Segment files of an IVF index (list number modulo this): a subject's few templates touch as many
# segments, each 1/64 of the index (benchmarks/bench_index.py measures removal from 1M).
IVF_SEGMENTS = 64


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


def _as_vectors(x, dim: int = DIM) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, dim))


def _as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


class BruteForceIndex:
    """The oracle: exact search with numpy. Every other index is tested against it."""

    kind = "numpy-bruteforce"

    def __init__(self, dim: int = DIM):
        self.dim = dim
        self._ids = np.empty(0, dtype=np.int64)
        self._vecs = np.empty((0, dim), dtype=np.float32)

    def add(self, ids, vectors) -> None:
        ids, vectors = _as_ids(ids), _as_vectors(vectors, self.dim)
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
        q = _as_vectors(queries, self.dim)
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
    saved_manifest: dict | None = None  # the manifest of this index's last save or load

    def __init__(self, index=None, dim: int = DIM):
        self.dim = int(index.d) if index is not None else dim
        self._index = index if index is not None else self._new()

    def _new(self):
        raise NotImplementedError

    def add(self, ids, vectors) -> None:
        ids, vectors = _as_ids(ids), _as_vectors(vectors, self.dim)
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
        q = _as_vectors(queries, self.dim)
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

        return faiss.IndexIDMap2(faiss.IndexFlatL2(self.dim))

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self) -> np.ndarray:
        """Every stored vector, in the order of `ids()`."""
        return self._index.index.reconstruct_n(0, self._index.ntotal)


class IVFIndex(_FaissIndex):
    """Approximate search: inverted lists over a k-means coarse quantizer (faiss IndexIVFFlat).

    Trained on the first batch added (at least 39 vectors per list, faiss's own minimum); later
    additions and removals are incremental. `nprobe` lists are searched per query. The index
    remembers which lists changed since it was last saved or loaded, so that `save_index` rewrites
    only their segments.
    """

    kind = "faiss-ivf-flat"

    def __init__(
        self, index=None, nlist: int | None = None, nprobe: int = 32, header: bytes | None = None, dim: int = DIM
    ):
        self._nlist = nlist
        self.nprobe = nprobe
        self._header = header  # the trained index without entries, serialized (the segmented file's header)
        self._dirty: set[int] | None = None  # lists changed since the last save or load; None: all
        super().__init__(index, dim)
        if index is not None:
            self._index.nprobe = nprobe
            if header is None:  # read from a one-file index: make the header from its quantizer
                self._header = _empty_ivf_bytes(self._index)

    def _new(self):
        return None  # built at the first add, when the data size is known

    def _prepare(self, vectors) -> None:
        import faiss

        if self._index is None:
            nlist = self._nlist or max(1, min(int(LISTS_PER_SQRT_N * math.sqrt(len(vectors))), len(vectors) // 39))
            quantizer = faiss.IndexFlatL2(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_L2)
            # k-means needs a sample, not everything: 200k vectors train 4,000 lists in 10 s
            sample = vectors
            size = max(MIN_TRAIN_SAMPLE, TRAIN_PER_LIST * nlist)
            if len(vectors) > size:
                rng = np.random.default_rng(0)
                sample = vectors[rng.choice(len(vectors), size, replace=False)]
            index.train(sample)
            index.nprobe = min(self.nprobe, nlist)
            self._index = index
            self._header = _empty_ivf_bytes(index)

    def _list_sizes(self) -> np.ndarray:
        invlists = self._index.invlists
        return np.fromiter(
            (invlists.list_size(i) for i in range(self._index.nlist)), dtype=np.int64, count=self._index.nlist
        )

    def add(self, ids, vectors) -> None:
        ids, vectors = _as_ids(ids), _as_vectors(vectors, self.dim)
        if len(ids) == 0:
            return
        self._prepare(vectors)
        before = self._list_sizes() if self._dirty is not None else None
        self._index.add_with_ids(vectors, ids)
        self._track(before)

    def remove(self, ids) -> int:
        ids = _as_ids(ids)
        if self._index is None or len(ids) == 0:
            return 0
        before = self._list_sizes() if self._dirty is not None else None
        removed = int(self._index.remove_ids(ids))
        self._track(before)
        return removed

    def _track(self, before: np.ndarray | None) -> None:
        # an add only grows lists and a remove only shrinks them, so a list changed iff its size did
        if before is not None:
            self._dirty.update(np.nonzero(self._list_sizes() != before)[0].tolist())

    def search(self, queries, k):
        if self._index is None:
            q = _as_vectors(queries, self.dim)
            return np.full((len(q), k), np.inf, dtype=np.float32), np.full((len(q), k), -1, dtype=np.int64)
        return super().search(queries, k)

    def ids(self) -> np.ndarray:
        import faiss

        if self._index is None:
            return np.empty(0, dtype=np.int64)
        invlists = self._index.invlists
        out = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(self._index.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(out).astype(np.int64) if out else np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    # -- segments (indexes/search/segments.py writes and checks the files) -----------------------------

    def segment_count(self) -> int:
        return min(IVF_SEGMENTS, self._index.nlist)

    def dirty_segments(self) -> set[int] | None:
        return None if self._dirty is None else {i % self.segment_count() for i in self._dirty}

    def segment_payload(self, seg: int) -> tuple[bytes, int]:
        """Lists seg, seg + n, seg + 2n, ... as four arrays: list numbers, sizes, ids, codes."""
        import faiss

        from indexes.search.segments import pack_arrays

        invlists = self._index.invlists
        lists, sizes, ids, codes = [], [], [], []
        for i in range(seg, self._index.nlist, self.segment_count()):
            n = invlists.list_size(i)
            if n:
                lists.append(i)
                sizes.append(n)
                ids.append(faiss.rev_swig_ptr(invlists.get_ids(i), n))
                codes.append(faiss.rev_swig_ptr(invlists.get_codes(i), n * invlists.code_size))
        if not lists:
            return b"", 0
        return pack_arrays(
            np.asarray(lists, dtype=np.int64),
            np.asarray(sizes, dtype=np.int64),
            np.concatenate(ids),
            np.concatenate(codes),
        ), int(sum(sizes))

    def fill_segment(self, data: bytes) -> int:
        """Add one segment's entries (read from disk) to the inverted lists; return their count."""
        import faiss

        from indexes.search.segments import SegmentError, unpack_arrays

        lists, sizes, ids, codes = unpack_arrays(data, 4)
        invlists = self._index.invlists
        code_size = invlists.code_size
        if (
            lists.dtype != np.int64
            or sizes.dtype != np.int64
            or ids.dtype != np.int64
            or codes.dtype != np.uint8
            or len(lists) != len(sizes)
            or int(sizes.sum()) != len(ids)
            or len(codes) != len(ids) * code_size
            or (len(lists) and (lists.min() < 0 or lists.max() >= self._index.nlist or sizes.min() < 1))
        ):
            raise SegmentError("index segment does not fit its index (list numbers, sizes or code size)")
        start = 0
        for lst, n in zip(lists.tolist(), sizes.tolist(), strict=False):
            invlists.add_entries(
                lst,
                n,
                faiss.swig_ptr(ids[start : start + n]),
                faiss.swig_ptr(codes[start * code_size : (start + n) * code_size]),
            )
            start += n
        self._index.ntotal += len(ids)
        return len(ids)

    def header(self) -> bytes:
        return self._header

    def mark_saved(self, manifest: dict) -> None:
        self._dirty = set()
        self.saved_manifest = manifest


def _empty_ivf_bytes(index) -> bytes:
    """Serialize a trained IVF index without its entries: quantizer, list count, parameters."""
    import faiss

    empty = faiss.IndexIVFFlat(index.quantizer, index.d, index.nlist, index.metric_type)
    empty.is_trained = True
    empty.nprobe = index.nprobe
    return faiss.serialize_index(empty).tobytes()


def make_index(expected_size: int, dim: int = DIM) -> VectorIndex:
    """Return an empty index of `dim`-d vectors of the kind that suits `expected_size` vectors."""
    return FlatIndex(dim=dim) if expected_size <= APPROX_ABOVE else IVFIndex(dim=dim)


# -- persistence ---------------------------------------------------------------------------------


def save_index(
    index: _FaissIndex, path: str | os.PathLike, embedder: str, embedder_version: str, extra: dict | None = None
) -> dict:
    """Write an index and its manifest `path`.json; return the manifest.

    A flat index is one `faiss.write_index` file at `path`. An IVF index is segmented
    (indexes/search/segments.py): only the segments changed since this index was last saved to or loaded
    from `path` are written, when the files on disk are still that save's. Files an index no
    longer needs (a previous layout, superseded segments) are overwritten with zeros and removed.
    `extra` adds fields to the manifest (the registry's change count).
    """
    import faiss

    from indexes.search import segments

    path = Path(path)
    if index.faiss_index is None:
        raise ValueError("an untrained index has nothing to save")
    fields = {
        **(extra or {}),
        "kind": index.kind,
        "embedder": embedder,
        "embedder_version": embedder_version,
        "dim": index.dim,
        "metric": METRIC,
    }
    if isinstance(index, IVFIndex):
        manifest = segments.save(
            path,
            fields,
            index.header(),
            index.segment_count(),
            index.segment_payload,
            index.dirty_segments(),
            index.saved_manifest,
        )
        index.mark_saved(manifest)
        return manifest
    if segments.folder_of(path).exists():
        segments.remove_all(path)  # a segmented index saved here before
    tmp = path.with_suffix(path.suffix + ".tmp")
    faiss.write_index(index.faiss_index, str(tmp))
    manifest = dict(fields, format=1, count=len(index), sha256=_sha256(tmp))
    if path.exists():
        segments.shred(path)  # the old file's bytes may hold a removed vector: overwrite them first
    os.replace(tmp, path)
    _write_json(path.with_suffix(path.suffix + ".json"), manifest)
    index.saved_manifest = manifest
    return manifest


def load_index(path: str | os.PathLike, embedder: str, embedder_version: str, dim: int = DIM) -> _FaissIndex:
    """Read an index saved by `save_index`, refusing one made by another embedder or damaged."""
    import faiss

    from indexes.search import segments

    path = Path(path)
    if not path.is_file():
        raise IndexMismatch(f"index file {path} is missing")
    manifest = read_manifest(path)
    if manifest.get("embedder") != embedder or manifest.get("embedder_version") != embedder_version:
        raise IndexMismatch(
            f"{path} was built by {manifest.get('embedder')} {manifest.get('embedder_version')}, "
            f"not {embedder} {embedder_version}"
        )
    if manifest.get("dim") != dim or manifest.get("metric") != METRIC:
        raise IndexMismatch(f"{path} has dimension {manifest.get('dim')} / metric {manifest.get('metric')}")
    kind = manifest.get("kind")
    if kind not in (FlatIndex.kind, IVFIndex.kind):
        raise IndexMismatch(f"{path}: unknown index kind {kind!r}")
    if manifest.get("format") == segments.FORMAT:
        if kind != IVFIndex.kind:
            raise IndexMismatch(f"{path}: a segmented index must be {IVFIndex.kind}, not {kind!r}")
        try:
            header, parts = segments.load(path, manifest)
            try:
                raw = faiss.deserialize_index(np.frombuffer(header, dtype=np.uint8))
            except RuntimeError as exc:
                raise IndexMismatch(f"{path} cannot be read by faiss: {exc}") from None
            if raw.ntotal != 0 or not isinstance(raw, faiss.IndexIVFFlat):
                raise IndexMismatch(f"{path} is not the header of a segmented IVF index")
            index = IVFIndex(raw, header=header)
            for _seg, data in parts:
                index.fill_segment(data)
        except segments.SegmentError as exc:
            raise IndexMismatch(str(exc)) from None
        index.mark_saved(manifest)
    else:
        if _sha256(path) != manifest.get("sha256"):
            raise IndexMismatch(f"{path} does not match the checksum in its manifest")
        try:
            raw = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexMismatch(f"{path} cannot be read by faiss: {exc}") from None
        index = FlatIndex(raw) if kind == FlatIndex.kind else IVFIndex(raw)
        index.saved_manifest = manifest  # an IVF index read from one file still writes all its segments
    if len(index) != manifest.get("count"):
        raise IndexMismatch(f"{path} holds {len(index)} vectors, its manifest says {manifest.get('count')}")
    return index


def stored_ids(path: str | os.PathLike) -> dict[str, np.ndarray | None]:
    """The ids held by every file of a vector index on disk (segments.stored_ids): for erasure proofs."""
    import faiss

    from indexes.search import segments

    def one_file(p: Path) -> np.ndarray:
        raw = faiss.read_index(str(p))
        return (FlatIndex(raw) if read_manifest_or_none(p, {}).get("kind") == FlatIndex.kind else IVFIndex(raw)).ids()

    return segments.stored_ids(path, one_file, lambda data: segments.unpack_arrays(data, 3)[2])


def read_manifest(path: str | os.PathLike) -> dict:
    mpath = Path(str(path) + ".json")
    try:
        return json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise IndexMismatch(f"index manifest {mpath} is missing or unreadable: {exc}") from None


def read_manifest_or_none(path: str | os.PathLike, default: dict | None = None) -> dict | None:
    try:
        return read_manifest(path)
    except IndexMismatch:
        return default


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
