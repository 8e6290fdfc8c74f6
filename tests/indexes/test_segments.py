"""Segmented index files: a change rewrites only the segments it touched, superseded files are
overwritten and removed, damage is detected, and an older one-file index is read and converted."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from indexes.search import segments
from indexes.search.hashes import (
    BruteForceHashIndex,
    ShardedHashIndex,
    load_hash_index,
    save_hash_index,
    stored_hash_ids,
)
from indexes.search.vectors import IndexMismatch, IVFIndex, load_index, save_index, stored_ids

RNG = np.random.default_rng(11)


def _ivf(n=4000, nlist=32):
    ids = np.arange(1, n + 1, dtype=np.int64) * 3
    x = RNG.normal(0, 0.1, (n, 128)).astype(np.float32)
    idx = IVFIndex(nlist=nlist, nprobe=nlist)
    idx.add(ids, x)
    return idx, ids, x


def _segment_files(path):
    return {p.name: p.read_bytes() for p in segments.folder_of(path).iterdir()}


def test_ivf_removal_rewrites_only_the_touched_segment(tmp_path):
    idx, ids, x = _ivf()
    path = tmp_path / "t.faiss"
    first = save_index(idx, path, "emb", "1")
    assert first["format"] == 2 and first["count"] == len(ids) and len(first["segments"]) == 32
    before = _segment_files(path)
    victim = ids[100]
    assert idx.remove([victim]) == 1
    second = save_index(idx, path, "emb", "1")
    after = _segment_files(path)
    changed = [k for k in first["segments"] if first["segments"][k] != second["segments"][k]]
    assert len(changed) == 1  # one vector removed: one segment written
    assert len(set(after) - set(before)) == 1 and len(set(before) - set(after)) == 1  # old file gone
    # the removed vector's bytes are in no file of the index any more
    needle = x[100].tobytes()
    assert any(needle in data for data in before.values())
    assert not any(needle in data for data in after.values()) and needle not in path.read_bytes()
    assert all(victim not in found for found in stored_ids(path).values())
    back = load_index(path, "emb", "1")
    assert len(back) == len(ids) - 1 and victim not in back.ids()
    assert (back.search(x[:20], 3)[1] == idx.search(x[:20], 3)[1]).all()
    # the loaded index saves incrementally too
    back.remove([ids[7]])
    third = save_index(back, path, "emb", "1")
    assert sum(third["segments"][k] != second["segments"][k] for k in third["segments"]) == 1


def test_ivf_add_after_load_round_trips(tmp_path):
    idx, ids, x = _ivf(3000)
    path = tmp_path / "t.faiss"
    save_index(idx, path, "emb", "1")
    back = load_index(path, "emb", "1")
    extra = RNG.normal(0, 0.1, (5, 128)).astype(np.float32)
    back.add(np.arange(10**6, 10**6 + 5), extra)
    save_index(back, path, "emb", "1")
    again = load_index(path, "emb", "1")
    assert len(again) == 3005 and (again.search(extra, 1)[1][:, 0] == np.arange(10**6, 10**6 + 5)).all()


def test_a_save_by_another_process_forces_a_full_write(tmp_path):
    idx, ids, _ = _ivf(2000)
    path = tmp_path / "t.faiss"
    save_index(idx, path, "emb", "1")
    other = load_index(path, "emb", "1")
    other.remove(ids[:50])
    save_index(other, path, "emb", "1")  # the files on disk are no longer idx's last save
    idx.remove(ids[50:60])
    manifest = save_index(idx, path, "emb", "1")  # so idx writes everything (its own state)
    assert manifest["count"] == 1990
    assert len(load_index(path, "emb", "1")) == 1990


def test_damaged_or_missing_segment_is_refused(tmp_path):
    idx, _, _ = _ivf(2000)
    path = tmp_path / "t.faiss"
    manifest = save_index(idx, path, "emb", "1")
    seg = segments.folder_of(path) / next(iter(manifest["segments"].values()))["file"]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="checksum"):
        load_index(path, "emb", "1")
    seg.unlink()
    with pytest.raises(IndexMismatch, match="cannot be read"):
        load_index(path, "emb", "1")


def test_a_leftover_segment_file_is_reported(tmp_path):
    idx, ids, _ = _ivf(2000)
    path = tmp_path / "t.faiss"
    manifest = save_index(idx, path, "emb", "1")
    name = next(iter(manifest["segments"].values()))["file"]
    leftover = segments.folder_of(path) / "0000.0.seg.tmp"
    leftover.write_bytes((segments.folder_of(path) / name).read_bytes())  # a save cut off half-way
    (segments.folder_of(path) / "junk.seg").write_bytes(b"\x93NUMPY not really")
    found = stored_ids(path)
    assert found["t.faiss.d/junk.seg"] is None
    assert np.isin(found["t.faiss.d/0000.0.seg.tmp"], ids).any()
    idx.remove(ids[:1])
    save_index(idx, path, "emb", "1")  # the next save removes files its manifest does not name
    assert not leftover.exists() and not (segments.folder_of(path) / "junk.seg").exists()


def test_one_file_ivf_index_is_read_and_converted(tmp_path):
    idx, ids, x = _ivf(2000)
    path = tmp_path / "t.faiss"
    faiss.write_index(idx.faiss_index, str(path))  # an index saved by an older facetrace (format 1)
    from indexes.search.vectors import _sha256

    (tmp_path / "t.faiss.json").write_text(
        json.dumps(
            {
                "format": 1,
                "kind": "faiss-ivf-flat",
                "embedder": "emb",
                "embedder_version": "1",
                "dim": 128,
                "metric": "l2",
                "count": 2000,
                "sha256": _sha256(path),
            }
        )
    )
    old = load_index(path, "emb", "1")
    assert len(old) == 2000
    old.remove(ids[:1])
    manifest = save_index(old, path, "emb", "1")
    assert manifest["format"] == 2 and x[0].tobytes() not in path.read_bytes()
    assert len(load_index(path, "emb", "1")) == 1999


def _hashes(n):
    hi, lo = RNG.integers(0, 2**32, n), RNG.integers(0, 2**32, n)
    return [f"{(int(a) << 32) | int(b):016x}" for a, b in zip(hi, lo, strict=False)]


def test_sharded_hash_index_agrees_with_popcount_and_saves_incrementally(tmp_path):
    hexes = _hashes(2000)
    ids = np.arange(2000) + 5
    ref, idx = BruteForceHashIndex(), ShardedHashIndex()
    ref.add(ids, hexes)
    idx.add(ids, hexes)
    queries = [f"{int(h, 16) ^ (1 << int(RNG.integers(64))):016x}" for h in hexes[:30]] + _hashes(5)
    for radius in (0, 3, 12):
        assert idx.range_search(queries, radius) == ref.range_search(queries, radius)
    path = tmp_path / "h.faissb"
    first = save_hash_index(idx, path, "phash")
    assert idx.remove([ids[0], ids[1]]) == 2
    second = save_hash_index(idx, path, "phash")
    # consecutive ids (one enrollment's hashes) share a shard: one segment written
    assert sum(first["segments"][k] != second["segments"].get(k) for k in first["segments"]) == 1
    back = load_hash_index(path, "phash")
    assert len(back) == 1998 and back.range_search([hexes[0]], 0) == [[]]
    assert all(ids[0] not in found for found in stored_hash_ids(path).values())
    ref.remove([ids[0], ids[1]])
    assert back.range_search(queries, 12) == ref.range_search(queries, 12)


def test_one_file_hash_index_is_read_and_converted(tmp_path):
    from indexes.search.hashes import BITS, hex_to_codes
    from indexes.search.vectors import _sha256

    hexes = _hashes(500)
    old = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(BITS))  # what older versions wrote
    old.add_with_ids(hex_to_codes(hexes), np.arange(500, dtype=np.int64))
    path = tmp_path / "h.faissb"
    faiss.write_index_binary(old, str(path))
    (tmp_path / "h.faissb.json").write_text(
        json.dumps(
            {
                "format": 1,
                "kind": "faiss-binary-flat",
                "hasher": "phash",
                "bits": 64,
                "metric": "hamming",
                "count": 500,
                "sha256": _sha256(path),
            }
        )
    )
    index = load_hash_index(path, "phash")
    assert len(index) == 500 and index.range_search([hexes[9]], 0) == [[(9, 0)]]
    index.remove([9])
    assert save_hash_index(index, path, "phash")["format"] == 2
    assert hex_to_codes([hexes[9]]).tobytes() not in path.read_bytes()
    assert all(9 not in ids for ids in stored_hash_ids(path).values())
