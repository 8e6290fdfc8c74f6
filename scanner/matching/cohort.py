"""The reference cohort: encodings of reference people that tell how crowded a face's neighbourhood is.

A same-person decision compares a face's distance to an enrolled subject with its distances to
*other* people (docs/matching.md, "Cohort normalisation"). Those other people are the registry's
other subjects and, where the operator built one with `facetrace calibrate`, a reference cohort:
photos of people of the population the tool serves, one folder per person, supplied by the
operator. The repository ships no photos or encodings of real people.

Storage: `<workspace>/cohort/cohort.npz` (float32 encodings, one row per face, and the person
index of each row) beside `cohort.json` (engine and version, counts, when and from what it was
built, and the figures `calibrate` measured on it). No photo is kept. Removing the folder
(`facetrace calibrate --remove`) removes the cohort; its files are overwritten before unlinking,
as erasure does for the registry's index files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FOLDER = "cohort"
DATA = "cohort.npz"
MANIFEST = "cohort.json"
SEARCH_K = 64  # faces fetched per query before reducing to people


@dataclass
class Cohort:
    """Reference people's encodings (several faces a person) and what was recorded with them."""

    encodings: np.ndarray  # (faces, 128) float32
    person: np.ndarray  # (faces,) int: the person of each face
    manifest: dict = field(default_factory=dict)
    _index: object = None

    @property
    def people(self) -> int:
        return int(len(np.unique(self.person))) if len(self.person) else 0

    def nearest_people(self, queries, k: int) -> np.ndarray:
        """Return (queries, k) distances to the k nearest reference *people* (a person's nearest
        face), ascending; inf where the cohort has fewer than k people."""
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.encodings.shape[1]))
        out = np.full((len(q), k), np.inf)
        if not len(self.encodings) or not len(q):
            return out
        if self._index is None:
            import faiss

            self._index = faiss.IndexFlatL2(self.encodings.shape[1])
            self._index.add(np.ascontiguousarray(self.encodings, dtype=np.float32))
        fetch = min(len(self.encodings), max(SEARCH_K, 4 * k))
        d2, ids = self._index.search(q, fetch)
        for row, (dr, ir) in enumerate(zip(d2, ids, strict=False)):
            seen: dict[int, float] = {}
            for d, i in zip(dr, ir, strict=False):
                if i < 0:
                    continue
                p = int(self.person[i])
                if p not in seen:
                    seen[p] = float(np.sqrt(max(d, 0.0)))
                    if len(seen) == k:
                        break
            vals = sorted(seen.values())
            out[row, : len(vals)] = vals
        return out


def path(root: str | Path) -> Path:
    return Path(root) / FOLDER


def load(root: str | Path, embedder: str, embedder_version: str) -> Cohort | None:
    """The workspace's reference cohort for this engine, or None when there is none (or it was
    made by another engine: encodings of different engines are not comparable)."""
    folder = path(root)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("embedder") != embedder or manifest.get("embedder_version") != embedder_version:
            return None
        with np.load(folder / DATA) as z:
            return Cohort(np.asarray(z["encodings"], dtype=np.float32), np.asarray(z["person"]), manifest)
    except (FileNotFoundError, KeyError, ValueError, json.JSONDecodeError):
        return None


def save(root: str | Path, encodings: np.ndarray, person: np.ndarray, manifest: dict) -> Path:
    """Write the cohort (replacing any earlier one) and return its folder."""
    import os

    folder = path(root)
    remove(root)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / (DATA + ".tmp.npz")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        np.savez(fh, encodings=np.asarray(encodings, dtype=np.float32), person=np.asarray(person, dtype=np.int32))
    tmp.replace(folder / DATA)
    with open(os.open(folder / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return folder


def remove(root: str | Path) -> bool:
    """Overwrite and delete the cohort's files; return whether there was one."""
    folder = path(root)
    found = False
    for f in (folder / DATA, folder / MANIFEST):
        if f.exists():
            found = True
            size = f.stat().st_size
            with open(f, "r+b") as fh:
                fh.write(b"\0" * size)
                fh.flush()
            f.unlink()
    return found
