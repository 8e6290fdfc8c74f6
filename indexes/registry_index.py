"""The registry's search indexes, kept in step with the registry tables.

Two files in `<workspace>/indexes/`: `templates.faiss` (face encodings, ids = template ids) and
`hashes.faissb` (64-bit pHashes of enrolled photos and their variants, ids = template-hash ids),
each with a JSON manifest. The database is the source of truth: an index file that is missing,
damaged, made by another engine, or whose ids differ from the database's is rebuilt from it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from indexes.hashes import BinaryHashIndex, load_hash_index, save_hash_index
from indexes.registry import RegistryStore
from indexes.vectors import IndexMismatch, load_index, make_index, save_index

log = logging.getLogger(__name__)

FACES_FILE = "templates.faiss"
HASHES_FILE = "hashes.faissb"


class RegistryIndex:
    def __init__(self, root: str | Path, store: RegistryStore, embedder: str, embedder_version: str, hasher: str):
        self.dir = Path(root) / "indexes"
        self.store = store
        self.embedder, self.embedder_version, self.hasher = embedder, embedder_version, hasher
        self.rebuilt: list[str] = []  # which files were rebuilt by the last load (for tests and logs)
        self._load()

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ids, _, subjects = self.store.template_vectors(self.embedder, self.embedder_version, encodings=False)
        self.template_subject = dict(zip(ids, subjects))
        self.faces = self._load_faces(np.asarray(ids, dtype=np.int64))
        hid, hexes, tids, hsubjects, variants = self.store.hash_rows()
        self.hash_info = {h: (t, s, v) for h, t, s, v in zip(hid, tids, hsubjects, variants)}
        self.hashes = self._load_hashes(np.asarray(hid, dtype=np.int64), hexes)

    def _load_faces(self, ids: np.ndarray):
        path = self.dir / FACES_FILE
        try:
            index = load_index(path, self.embedder, self.embedder_version)
            if np.array_equal(np.sort(index.ids()), np.sort(ids)):
                return index
            log.warning("%s is stale (%d ids, database has %d): rebuilding", path, len(index), len(ids))
        except IndexMismatch as exc:
            if path.exists() or len(ids):
                log.warning("rebuilding %s: %s", path, exc)
        index = make_index(len(ids))
        if len(ids):  # the vectors are read only to rebuild
            rebuilt_ids, encodings, _ = self.store.template_vectors(self.embedder, self.embedder_version)
            index.add(np.asarray(rebuilt_ids, dtype=np.int64), encodings)
        self._save_faces(index)
        self.rebuilt.append(FACES_FILE)
        return index

    def _load_hashes(self, ids: np.ndarray, hexes):
        path = self.dir / HASHES_FILE
        try:
            index = load_hash_index(path, self.hasher)
            if np.array_equal(np.sort(index.ids()), np.sort(ids)):
                return index
            log.warning("%s is stale: rebuilding", path)
        except IndexMismatch as exc:
            if path.exists() or len(ids):
                log.warning("rebuilding %s: %s", path, exc)
        index = BinaryHashIndex()
        index.add(ids, hexes)
        save_hash_index(index, path, self.hasher)
        self.rebuilt.append(HASHES_FILE)
        return index

    def _save_faces(self, index) -> None:
        path = self.dir / FACES_FILE
        if getattr(index, "faiss_index", None) is None:  # an untrained, empty IVF index
            for p in (path, Path(str(path) + ".json")):
                p.unlink(missing_ok=True)
            return
        save_index(index, path, self.embedder, self.embedder_version)

    # -- changes ------------------------------------------------------------------------------

    def add_subject(self, subject_id: str, template_ids: list[int]) -> None:
        """Add a newly enrolled subject's templates and hashes (read back from the database)."""
        ids, encodings, subjects = self.store.template_vectors(self.embedder, self.embedder_version, subject_id)
        want = set(template_ids)
        sel = [i for i, t in enumerate(ids) if t in want]
        self.faces.add(np.asarray([ids[i] for i in sel], dtype=np.int64), encodings[sel])
        self.template_subject.update({ids[i]: subjects[i] for i in sel})
        hid, hexes, tids, hsubjects, variants = self.store.hash_rows(subject_id)
        hsel = [i for i, t in enumerate(tids) if t in want]
        self.hashes.add(np.asarray([hid[i] for i in hsel], dtype=np.int64), [hexes[i] for i in hsel])
        self.hash_info.update({hid[i]: (tids[i], hsubjects[i], variants[i]) for i in hsel})
        self._save_faces(self.faces)
        save_hash_index(self.hashes, self.dir / HASHES_FILE, self.hasher)

    def remove_templates(self, template_ids: list[int]) -> int:
        """Delete templates (and their hashes) from both indexes and rewrite the files; return count."""
        tids = set(template_ids)
        removed = self.faces.remove(np.asarray(sorted(tids), dtype=np.int64))
        hash_ids = [h for h, (t, _s, _v) in self.hash_info.items() if t in tids]
        self.hashes.remove(np.asarray(hash_ids, dtype=np.int64))
        for t in tids:
            self.template_subject.pop(t, None)
        for h in hash_ids:
            self.hash_info.pop(h, None)
        self._save_faces(self.faces)
        save_hash_index(self.hashes, self.dir / HASHES_FILE, self.hasher)
        return removed

    # -- search -------------------------------------------------------------------------------

    def search_faces(self, encodings, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances, template ids) of the k nearest templates of each encoding."""
        q = np.asarray(encodings, dtype=np.float32).reshape(-1, 128)
        return self.faces.search(q, k)

    def search_hashes(self, phashes: list[str], radius: int) -> list[list[tuple[int, int]]]:
        return self.hashes.range_search(phashes, radius)

    def subject_of(self, template_id: int) -> str | None:
        return self.template_subject.get(int(template_id))

    def files_holding(self, template_ids: list[int], hash_ids: list[int]) -> list[str]:
        """Read the index files on disk and name those that still hold any of these ids."""
        found = []
        path = self.dir / FACES_FILE
        if path.exists():
            on_disk = load_index(path, self.embedder, self.embedder_version)
            if np.isin(np.asarray(template_ids, dtype=np.int64), on_disk.ids()).any():
                found.append(FACES_FILE)
        path = self.dir / HASHES_FILE
        if path.exists():
            on_disk = load_hash_index(path, self.hasher)
            if np.isin(np.asarray(hash_ids, dtype=np.int64), on_disk.ids()).any():
                found.append(HASHES_FILE)
        return found

    def __len__(self) -> int:
        return len(self.faces)
