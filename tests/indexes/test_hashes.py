from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from indexes.search.hashes import BinaryHashIndex, BruteForceHashIndex, hamming, hex_to_codes


@given(st.integers(0, 2**64 - 1))
def test_hex_codes_round_trip(value):
    h = f"{value:016x}"
    assert hex_to_codes([h]).tobytes().hex() == h


def _random_hashes(n, rng):
    hi, lo = rng.integers(0, 2**32, n), rng.integers(0, 2**32, n)
    return [f"{(int(a) << 32) | int(b):016x}" for a, b in zip(hi, lo, strict=False)]


def test_faiss_binary_range_search_agrees_with_popcount():
    rng = np.random.default_rng(5)
    hexes = _random_hashes(3000, rng)
    # near copies: flip a few bits of some hashes
    queries = [f"{int(h, 16) ^ (1 << int(rng.integers(64))) ^ (1 << int(rng.integers(64))):016x}" for h in hexes[:40]]
    ids = np.arange(3000) + 7
    ref, idx = BruteForceHashIndex(), BinaryHashIndex()
    ref.add(ids, hexes)
    idx.add(ids, hexes)
    for radius in (0, 2, 6, 20):
        assert idx.range_search(queries, radius) == ref.range_search(queries, radius)
    assert idx.range_search(queries[:1], 2)[0][0][0] == 7
    assert hamming(queries[0], hexes[0]) <= 2


def test_remove():
    rng = np.random.default_rng(6)
    hexes = _random_hashes(100, rng)
    idx = BinaryHashIndex()
    idx.add(np.arange(100), hexes)
    assert idx.remove([3, 4]) == 2 and len(idx) == 98
    assert idx.range_search([hexes[3]], 0) == [[]]
    assert 3 not in idx.ids()
