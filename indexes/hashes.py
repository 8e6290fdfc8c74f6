"""Binary index of 64-bit perceptual hashes: Hamming range search for near-copies of a photo.

FAISS `IndexBinaryFlat` behind an id map (incremental add and remove), and a numpy popcount
reference that it is tested against. Hashes travel as 16-hex-digit strings (imagehash's form).
"""

from __future__ import annotations

import numpy as np

BITS = 64
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

        self._index = index if index is not None else faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(BITS))

    def add(self, ids, hexes) -> None:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
        if len(ids):
            self._index.add_with_ids(hex_to_codes(hexes), ids)

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
            hits = zip(ids[lims[i]:lims[i + 1]].tolist(), dist[lims[i]:lims[i + 1]].tolist())
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


def save_hash_index(index: BinaryHashIndex, path, hasher: str) -> dict:
    """Write a binary index with `faiss.write_index_binary` and its JSON manifest; return the manifest."""
    import os
    from pathlib import Path

    import faiss

    from indexes.vectors import _sha256, _write_json

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    faiss.write_index_binary(index.faiss_index, str(tmp))
    manifest = {"format": 1, "kind": index.kind, "hasher": hasher, "bits": BITS, "metric": "hamming",
                "count": len(index), "sha256": _sha256(tmp)}
    os.replace(tmp, path)
    _write_json(path.with_suffix(path.suffix + ".json"), manifest)
    return manifest


def load_hash_index(path, hasher: str) -> BinaryHashIndex:
    """Read a binary index saved by `save_hash_index`, refusing another hasher or a damaged file."""
    import faiss

    from indexes.vectors import IndexMismatch, _sha256, read_manifest

    from pathlib import Path

    if not Path(path).is_file():
        raise IndexMismatch(f"index file {path} is missing")
    manifest = read_manifest(path)
    if manifest.get("hasher") != hasher or manifest.get("bits") != BITS:
        raise IndexMismatch(f"{path} holds {manifest.get('bits')}-bit hashes of {manifest.get('hasher')}, not {hasher}")
    if _sha256(path) != manifest.get("sha256"):
        raise IndexMismatch(f"{path} does not match the checksum in its manifest")
    try:
        index = BinaryHashIndex(faiss.read_index_binary(str(path)))
    except RuntimeError as exc:
        raise IndexMismatch(f"{path} cannot be read by faiss: {exc}") from None
    if len(index) != manifest.get("count"):
        raise IndexMismatch(f"{path} holds {len(index)} hashes, its manifest says {manifest.get('count')}")
    return index
