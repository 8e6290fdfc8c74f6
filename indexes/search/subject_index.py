"""The registry's search indexes, kept in step with the registry tables.

Two indexes in `<workspace>/indexes/`: `templates.faiss` (face encodings, ids = template ids) and
`hashes.faissb` (64-bit pHashes of enrolled photos and their variants, ids = template-hash ids),
each with a JSON manifest, and, for a large face index and for the hash index, a folder of segment
files (`templates.faiss.d/`, `hashes.faissb.d/`, indexes/search/segments.py): an enrollment or an erasure
rewrites only the segments it touched. The database is the source of truth: an index file that is missing,
damaged, made by another engine, or whose ids differ from the database's is rebuilt from it.

Checking a million ids against the database takes tens of seconds, so each manifest records the
registry's change count (`RegistryStore.registry_changes`, raised by every enrollment, withdrawal
and erasure in the same transaction) that its index reflects. When both manifests carry the
database's current count, the files are current and only their checksums are checked. Otherwise
(a process that crashed between its commit and its save, two processes changing the registry at
once, files from an older version) the ids are compared and stale files rebuilt. A process that
keeps a registry open (the HTTP service) calls `refresh()` before each search: one read of the
count, and a reload only when another process changed the registry.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from indexes.search import segments
from indexes.search.hashes import ShardedHashIndex, load_hash_index, save_hash_index, stored_hash_ids
from indexes.search.vectors import (
    APPROX_ABOVE,
    DIM,
    FlatIndex,
    IndexMismatch,
    IVFIndex,
    load_index,
    make_index,
    save_index,
    stored_ids,
)
from indexes.store.subjects import RegistryStore

log = logging.getLogger(__name__)

FACES_FILE = "templates.faiss"
HASHES_FILE = "hashes.faissb"
CHANGES = "registry_changes"  # manifest field: the registry change count an index reflects


class RegistryIndex:
    def __init__(
        self, root: str | Path, store: RegistryStore, embedder: str, embedder_version: str, hasher: str, dim: int = DIM
    ):
        self.dir = Path(root) / "indexes"
        self.store = store
        self.dim = dim  # the embedder's encoding size
        self.embedder, self.embedder_version, self.hasher = embedder, embedder_version, hasher
        self.rebuilt: list[str] = []  # which files were rebuilt by the last load (for tests and logs)
        self._problems: list[str] = []  # why index files could not be loaded (logged if rebuilt)
        self.changes: int | None = None  # the registry change count the indexes reflect (None: unknown)
        self._load()

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        # ids only: which subject a template or hash belongs to is looked up for the search hits
        # (subjects_of, hash_details), so opening a million-subject registry reads no subjects
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        changes = self.store.registry_changes()  # read first: whatever is read after is at least as new
        self._problems = []
        faces = self._read(FACES_FILE, lambda p: load_index(p, self.embedder, self.embedder_version, self.dim))
        hashes = self._read(HASHES_FILE, lambda p: load_hash_index(p, self.hasher))
        if not all(ix is not None and ix.saved_manifest.get(CHANGES) == changes for ix in (faces, hashes)):
            faces = self._check(
                FACES_FILE,
                faces,
                self.store.active_template_ids(self.embedder, self.embedder_version),
                self._rebuild_faces,
            )
            hashes = self._check(HASHES_FILE, hashes, self.store.active_hash_ids(), self._rebuild_hashes)
        self.faces, self.hashes, self.changes = faces, hashes, changes
        self._save(only_if_label_differs=True)

    def _read(self, name: str, load):
        try:
            return load(self.dir / name)
        except IndexMismatch as exc:
            self._problems.append(str(exc))
            return None

    def refresh(self) -> bool:
        """Reload the indexes if another process changed the registry since they were read."""
        if self.store.registry_changes() == self.changes:
            return False
        self.rebuilt = []
        self._load()
        return True

    def _check(self, name: str, index, ids: np.ndarray, rebuild):
        """`index` if it holds exactly the database's `ids`, else `rebuild()`'s index from the database."""
        path = self.dir / name
        if index is not None:
            if np.array_equal(np.sort(index.ids()), ids):
                return index
            log.warning("%s is stale (%d ids, database has %d): rebuilding", path, len(index), len(ids))
        elif path.exists() or len(ids):
            log.warning("rebuilding %s: %s", path, "; ".join(self._problems) or "missing")
        self.rebuilt.append(name)
        return rebuild(len(ids))

    def _rebuild_faces(self, n: int):
        index = make_index(n, self.dim)
        if n:  # the vectors are read only to rebuild
            ids, encodings, _ = self.store.template_vectors(self.embedder, self.embedder_version, dim=self.dim)
            index.add(np.asarray(ids, dtype=np.int64), encodings)
        return index

    def _rebuild_hashes(self, _n: int):
        index = ShardedHashIndex()
        for ids, codes in self.store.iter_hash_codes():
            index.add_codes(ids, codes)
        return index

    def _save(self, only_if_label_differs: bool = False) -> None:
        """Write the changed parts of both indexes, labelled with the change count they reflect
        (with `only_if_label_differs`: only indexes just rebuilt or carrying another count)."""

        def wanted(name, index):
            return not (
                only_if_label_differs
                and name not in self.rebuilt
                and (index.saved_manifest or {}).get(CHANGES) == self.changes
            )

        label = {CHANGES: self.changes}
        faces_path = self.dir / FACES_FILE
        if getattr(self.faces, "faiss_index", None) is None:  # an untrained, empty IVF index
            segments.remove_all(faces_path)
        elif wanted(FACES_FILE, self.faces):
            save_index(self.faces, faces_path, self.embedder, self.embedder_version, extra=label)
        if wanted(HASHES_FILE, self.hashes):
            save_hash_index(self.hashes, self.dir / HASHES_FILE, self.hasher, extra=label)

    def _changed(self) -> None:
        """After this process's own change: the indexes reflect the database's new count only if
        nobody else changed the registry since they were read (else: unknown, checked at next open)."""
        n = self.store.last_change
        self.changes = n if n is not None and self.changes is not None and n == self.changes + 1 else None
        if isinstance(self.faces, FlatIndex) and len(self.faces) > APPROX_ABOVE:
            # grown past the exact index's size by enrollments: the same vectors, now in IVF
            log.info("%d templates: the face index becomes %s", len(self.faces), IVFIndex.kind)
            grown = IVFIndex(dim=self.dim)
            grown.add(self.faces.ids(), self.faces.vectors())
            self.faces = grown
        self._save()

    # -- changes ------------------------------------------------------------------------------

    def add_subject(self, subject_id: str, template_ids: list[int]) -> None:
        """Add a newly enrolled subject's templates and hashes (read back from the database)."""
        ids, encodings, subjects = self.store.template_vectors(
            self.embedder, self.embedder_version, subject_id, dim=self.dim
        )
        want = set(template_ids)
        sel = [i for i, t in enumerate(ids) if t in want]
        self.faces.add(np.asarray([ids[i] for i in sel], dtype=np.int64), encodings[sel])
        hid, hexes, tids, _subjects, _variants = self.store.hash_rows(subject_id)
        hsel = [i for i, t in enumerate(tids) if t in want]
        self.hashes.add(np.asarray([hid[i] for i in hsel], dtype=np.int64), [hexes[i] for i in hsel])
        self._changed()

    def remove_templates(self, template_ids: list[int], hash_ids: list[int]) -> int:
        """Delete templates and their hashes (the ids the database deleted) from both indexes and
        rewrite the changed segments; return the number of templates removed."""
        removed = self.faces.remove(np.asarray(sorted(set(template_ids)), dtype=np.int64))
        self.hashes.remove(np.asarray(sorted(set(hash_ids)), dtype=np.int64))
        self._changed()
        return removed

    # -- search -------------------------------------------------------------------------------

    def search_faces(self, encodings, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances, template ids) of the k nearest templates of each encoding."""
        q = np.asarray(encodings, dtype=np.float32).reshape(-1, self.dim)
        return self.faces.search(q, k)

    def search_hashes(self, phashes: list[str], radius: int) -> list[list[tuple[int, int]]]:
        return self.hashes.range_search(phashes, radius)

    def subjects_of(self, template_ids) -> dict[int, str]:
        """Subject of each active template among these (search hits), from the database."""
        return self.store.subjects_of_templates(template_ids)

    def hash_details(self, hash_ids) -> dict[int, tuple[int, str, str]]:
        """(template id, subject id, variant) of each active hash among these, from the database."""
        return self.store.hash_details(hash_ids)

    def files_holding(self, template_ids: list[int], hash_ids: list[int]) -> list[str]:
        """Read every index file on disk (those the manifests name and any left over) and name
        those that hold any of these ids, or that cannot be parsed (they may hold anything)."""
        found = []
        for stored, wanted in (
            (stored_ids(self.dir / FACES_FILE), template_ids),
            (stored_hash_ids(self.dir / HASHES_FILE), hash_ids),
        ):
            wanted = np.asarray(wanted, dtype=np.int64)
            for name, ids in stored.items():
                if ids is None:
                    found.append(f"{name} (unreadable)")
                elif np.isin(wanted, ids).any():
                    found.append(name)
        return found

    def __len__(self) -> int:
        return len(self.faces)
