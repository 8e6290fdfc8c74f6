"""Contract tests: every vector index agrees with the numpy brute-force oracle.

The vectors are real face encodings where it matters (tests/indexes/test_registry_*), but index
agreement is a property of the arithmetic, so random vectors in the encodings' range are used here.
"""

from __future__ import annotations

import numpy as np
import pytest

from indexes.search.vectors import BruteForceIndex, FlatIndex, IndexMismatch, IVFIndex, load_index, save_index

RNG = np.random.default_rng(3)


def _data(n=2000):
    return np.arange(10_000, 10_000 + n, dtype=np.int64), RNG.normal(0, 0.1, (n, 128)).astype(np.float32)


class VectorIndexContract:
    """Subclass with `make()` returning an empty index; `exact` False allows approximate recall."""

    exact = True

    def make(self):
        raise NotImplementedError

    def test_agrees_with_bruteforce(self):
        ids, x = _data()
        ref, idx = BruteForceIndex(), self.make()
        ref.add(ids, x)
        idx.add(ids, x)
        q = x[:50] + RNG.normal(0, 0.01, (50, 128)).astype(np.float32)
        rd, ri = ref.search(q, 5)
        d, i = idx.search(q, 5)
        if self.exact:
            assert (i == ri).all()
            np.testing.assert_allclose(d, rd, rtol=1e-4, atol=1e-4)
        else:
            assert (i[:, 0] == ri[:, 0]).mean() >= 0.95  # nearest neighbour of a perturbed copy
        found = i[:, 0] == ri[:, 0]
        np.testing.assert_allclose(d[found, 0], rd[found, 0], rtol=1e-4, atol=1e-4)

    def test_remove_is_incremental_and_real(self):
        ids, x = _data()
        idx = self.make()
        idx.add(ids[:1500], x[:1500])
        idx.add(ids[1500:], x[1500:])  # a second batch, no rebuild
        assert idx.remove(ids[:10]) == 10
        assert len(idx) == 1990
        assert not np.isin(ids[:10], idx.ids()).any()
        _, i = idx.search(x[:10], 3)
        assert not np.isin(i, ids[:10]).any()

    def test_fewer_vectors_than_k(self):
        ids, x = _data(40)
        idx = self.make()
        idx.add(ids, x)
        d, i = idx.search(x[:1], 50)
        assert i[0, 0] == ids[0] and (i[0, 40:] == -1).all() and np.isinf(d[0, 40:]).all()


class TestBruteForce(VectorIndexContract):
    def make(self):
        return BruteForceIndex()


class TestFlat(VectorIndexContract):
    def make(self):
        return FlatIndex()


class TestIVF(VectorIndexContract):
    exact = False

    def make(self):
        return IVFIndex(nlist=16, nprobe=16)  # all lists probed: exact on this size

    def test_exact_when_every_list_is_probed(self):
        ids, x = _data()
        ref, idx = BruteForceIndex(), IVFIndex(nlist=16, nprobe=16)
        ref.add(ids, x)
        idx.add(ids, x)
        assert (idx.search(x[:20], 5)[1] == ref.search(x[:20], 5)[1]).all()


@pytest.mark.parametrize("cls", [FlatIndex, lambda: IVFIndex(nlist=8)])
def test_save_load_round_trip(tmp_path, cls):
    ids, x = _data(500)
    idx = cls()
    idx.add(ids, x)
    manifest = save_index(idx, tmp_path / "t.faiss", "emb", "1")
    assert manifest["count"] == 500 and manifest["dim"] == 128 and len(manifest["sha256"]) == 64
    back = load_index(tmp_path / "t.faiss", "emb", "1")
    assert (back.search(x[:5], 3)[1] == idx.search(x[:5], 3)[1]).all()
    assert sorted(back.ids()) == sorted(ids)


def test_load_refuses_other_embedder_and_damaged_file(tmp_path):
    ids, x = _data(100)
    idx = FlatIndex()
    idx.add(ids, x)
    save_index(idx, tmp_path / "t.faiss", "emb", "1")
    with pytest.raises(IndexMismatch, match="built by emb 1"):
        load_index(tmp_path / "t.faiss", "emb", "2")
    data = bytearray((tmp_path / "t.faiss").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "t.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="checksum"):
        load_index(tmp_path / "t.faiss", "emb", "1")
