"""Binary index of 64-bit perceptual hashes: Hamming range search for near-copies of a photo.

FAISS `IndexBinaryFlat` behind an id map (incremental add and remove), and a numpy popcount
reference that it is tested against. The registry keeps its hashes in a `ShardedHashIndex`
(shards by id, one segment file each), so an erasure rewrites only the shards it touched. Hashes travel as 16-hex-digit strings (imagehash's form).
"""

from __future__ import annotations

import numpy as np

BITS = 64
# Shards of the registry's hash index (indexes/search/segments.py). Runs of HASH_RUN consecutive ids share
# a shard: an enrollment's hashes get consecutive ids (18 variants a photo), so an erasure touches one
# or two shards, each 1/64 of the index.
HASH_SEGMENTS = 64
HASH_RUN = 64
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hex_to_codes(hexes) -> np.ndarray:
    """Return an (n, 8) uint8 array from 16-hex-digit hash strings (big-endian, as imagehash prints)."""
    hexes = list(hexes)
    if not hexes:
        return np.empty((0, 8), dtype=np.uint8)
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), dtype=np.uint8).reshape(-1, 8).copy()


def hamming(a: str, b: str) -> int:
    return int.bit_count(int(a, 16) ^ int(b, 16))


class BruteForceHashIndex:
    """The oracle: Hamming distances with a popcount table."""

    kind = "numpy-popcount"

    def __init__(self):
        self._ids = np.empty(0, dtype=np.int64)
        self._codes = np.empty((0, 8), dtype=np.uint8)

    def add(self, ids, hexes) -> None:
        self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])
        self._codes = np.concatenate([self._codes, hex_to_codes(hexes)])

    def remove(self, ids) -> int:
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        removed = int((~keep).sum())
        self._ids, self._codes = self._ids[keep], self._codes[keep]
        return removed

    def range_search(self, hexes, radius: int) -> list[list[tuple[int, int]]]:
        """For each query, return [(id, distance)] of every hash within `radius` bits, nearest first."""
        q = hex_to_codes(hexes)
        out = []
        for code in q:
            d = _POPCOUNT[np.bitwise_xor(self._codes, code)].sum(1).astype(int)
            hit = np.nonzero(d <= radius)[0]
            out.append(sorted(((int(self._ids[i]), int(d[i])) for i in hit), key=lambda t: (t[1], t[0])))
        return out

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def __len__(self) -> int:
        return len(self._ids)


class BinaryHashIndex:
    """FAISS binary flat index with id map: exact Hamming range search."""

    kind = "faiss-binary-flat"

    def __init__(self, index=None):
        import faiss

        # IDMap, not IDMap2: no reverse hash map (16 bytes a hash instead of about 40; measured)
        self._index = index if index is not None else faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(BITS))

    def add(self, ids, hexes) -> None:
        self.add_codes(ids, hex_to_codes(hexes))

    def add_codes(self, ids, codes: np.ndarray) -> None:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, 8), ids)

    def remove(self, ids) -> int:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
        return int(self._index.remove_ids(ids)) if len(ids) else 0

    def range_search(self, hexes, radius: int) -> list[list[tuple[int, int]]]:
        q = hex_to_codes(hexes)
        if len(q) == 0 or self._index.ntotal == 0:
            return [[] for _ in range(len(q))]
        # faiss's binary range search keeps distances strictly below the radius
        lims, dist, ids = self._index.range_search(q, radius + 1)
        out = []
        for i in range(len(q)):
            hits = zip(ids[lims[i] : lims[i + 1]].tolist(), dist[lims[i] : lims[i + 1]].tolist(), strict=False)
            out.append(sorted(((int(a), int(b)) for a, b in hits), key=lambda t: (t[1], t[0])))
        return out

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def faiss_index(self):
        return self._index


class ShardedHashIndex:
    """The registry's hash index: `HASH_SEGMENTS` binary flat indexes, id i in shard (i // 64) mod n.

    Same answers as one `BinaryHashIndex` (the shards' hits merged, nearest first), but each shard
    is a segment of its file (indexes/search/segments.py), so adding or removing a subject rewrites only
    the shards its hashes are in.
    """

    kind = "faiss-binary-flat-sharded"

    def __init__(self, shards: int | None = None):
        self.n = shards or HASH_SEGMENTS
        self._shards = [BinaryHashIndex() for _ in range(self.n)]
        self._dirty: set[int] | None = None  # shards changed since the last save or load; None: all
        self.saved_manifest: dict | None = None

    def _groups(self, ids):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        shard = (ids // HASH_RUN) % self.n
        order = np.argsort(shard, kind="stable")
        for rows in np.split(order, np.flatnonzero(np.diff(shard[order])) + 1):
            if len(rows):
                yield int(shard[rows[0]]), rows

    def add(self, ids, hexes) -> None:
        self.add_codes(ids, hex_to_codes(hexes))

    def add_codes(self, ids, codes: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        for s, rows in self._groups(ids):
            self._shards[s].add_codes(ids[rows], codes[rows])
            if self._dirty is not None:
                self._dirty.add(s)

    def remove(self, ids) -> int:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        removed = 0
        for s, rows in self._groups(ids):
            n = self._shards[s].remove(ids[rows])
            removed += n
            if n and self._dirty is not None:
                self._dirty.add(s)
        return removed

    def range_search(self, hexes, radius: int) -> list[list[tuple[int, int]]]:
        hexes = list(hexes)
        out: list[list[tuple[int, int]]] = [[] for _ in hexes]
        for shard in self._shards:
            if len(shard):
                for i, hits in enumerate(shard.range_search(hexes, radius)):
                    out[i] += hits
        return [sorted(hits, key=lambda t: (t[1], t[0])) for hits in out]

    def ids(self) -> np.ndarray:
        parts = [s.ids() for s in self._shards if len(s)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return sum(len(s) for s in self._shards)

    # -- segments -------------------------------------------------------------------------------

    def segment_count(self) -> int:
        return self.n

    def dirty_segments(self) -> set[int] | None:
        return None if self._dirty is None else set(self._dirty)

    def segment_payload(self, seg: int) -> tuple[bytes, int]:
        import faiss

        shard = self._shards[seg]
        if not len(shard):
            return b"", 0
        return faiss.serialize_index_binary(shard.faiss_index).tobytes(), len(shard)

    def fill_segment(self, seg: int, data: bytes) -> int:
        self._shards[seg] = _deserialize_binary(data)
        return len(self._shards[seg])

    def mark_saved(self, manifest: dict) -> None:
        self._dirty = set()
        self.saved_manifest = manifest


def _deserialize_binary(data: bytes) -> BinaryHashIndex:
    import faiss

    from indexes.search.segments import SegmentError

    try:
        raw = faiss.deserialize_index_binary(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise SegmentError(f"hash index segment cannot be read by faiss: {exc}") from None
    if not isinstance(raw, (faiss.IndexBinaryIDMap, faiss.IndexBinaryIDMap2)) or raw.d != BITS:
        raise SegmentError("hash index segment is not a 64-bit binary index with ids")
    return BinaryHashIndex(raw)


def save_hash_index(index: ShardedHashIndex, path, hasher: str, extra: dict | None = None) -> dict:
    """Write the registry's hash index (segmented, only changed shards) and its manifest."""
    from pathlib import Path

    from indexes.search import segments

    path = Path(path)
    fields = {**(extra or {}), "kind": index.kind, "hasher": hasher, "bits": BITS, "metric": "hamming"}
    manifest = segments.save(
        path, fields, b"", index.segment_count(), index.segment_payload, index.dirty_segments(), index.saved_manifest
    )
    index.mark_saved(manifest)
    return manifest


def load_hash_index(path, hasher: str) -> ShardedHashIndex:
    """Read a hash index saved by `save_hash_index` (or a one-file index of an older version),
    refusing another hasher or a damaged file."""
    from pathlib import Path

    import faiss

    from indexes.search import segments
    from indexes.search.vectors import IndexMismatch, _sha256, read_manifest

    path = Path(path)
    if not path.is_file():
        raise IndexMismatch(f"index file {path} is missing")
    manifest = read_manifest(path)
    if manifest.get("hasher") != hasher or manifest.get("bits") != BITS:
        raise IndexMismatch(f"{path} holds {manifest.get('bits')}-bit hashes of {manifest.get('hasher')}, not {hasher}")
    if manifest.get("format") == segments.FORMAT:
        index = ShardedHashIndex(manifest.get("segment_count"))
        try:
            _header, parts = segments.load(path, manifest)
            for seg, data in parts:
                if not 0 <= seg < index.n:
                    raise segments.SegmentError(f"{path}: segment {seg} outside 0..{index.n - 1}")
                index.fill_segment(seg, data)
        except segments.SegmentError as exc:
            raise IndexMismatch(str(exc)) from None
        index.mark_saved(manifest)
    else:  # format 1: one IndexBinaryIDMap2 file (older versions); resharded in memory, rewritten at the next save
        if _sha256(path) != manifest.get("sha256"):
            raise IndexMismatch(f"{path} does not match the checksum in its manifest")
        try:
            flat = BinaryHashIndex(faiss.read_index_binary(str(path)))
        except RuntimeError as exc:
            raise IndexMismatch(f"{path} cannot be read by faiss: {exc}") from None
        index = ShardedHashIndex()
        codes = faiss.vector_to_array(faiss.downcast_IndexBinary(flat.faiss_index.index).xb).reshape(-1, 8)
        index.add_codes(flat.ids(), codes)
        index.saved_manifest = manifest  # not a segmented save: the next save writes every shard
    if len(index) != manifest.get("count"):
        raise IndexMismatch(f"{path} holds {len(index)} hashes, its manifest says {manifest.get('count')}")
    return index


def stored_hash_ids(path) -> dict[str, np.ndarray | None]:
    """The ids held by every file of a hash index on disk (segments.stored_ids): for erasure proofs."""
    import faiss

    from indexes.search import segments

    return segments.stored_ids(
        path,
        lambda p: BinaryHashIndex(faiss.read_index_binary(str(p))).ids(),
        lambda data: _deserialize_binary(data).ids(),
    )
