"""Segmented index files: a large index saved as a header and many segment files, so that adding
or removing one subject rewrites only the few segments it touched, not the whole index.

Layout, for an index at `PATH` (for example `indexes/templates.faiss`):

    PATH          the header: the index without its entries (a FAISS file of the trained, empty
                  index), or empty bytes for an index that has no header
    PATH.d/       one file per non-empty segment, `NNNN.GEN.seg` (segment number, generation)
    PATH.json     the manifest, written last: kind, model, count, format 2, the header's SHA-256
                  and, per segment, its file, entry count and SHA-256

What a segment holds is the index's business (lists of an IVF index, one shard of a hash index);
this module only writes, checks and removes bytes. Every save writes each changed segment under a
new generation name, then the manifest (atomically), then overwrites every file the new manifest
no longer names with zeros, flushes it to disk, and unlinks it: an erased subject's vector does
not stay readable in a superseded segment file, and a save cut off half-way leaves either the old
or the new manifest, each naming files that exist (a load that finds a mismatch says so, and the
registry rebuilds the index from its database, the source of truth). What overwriting cannot
reach: copies a copy-on-write file system, a snapshot or an SSD's remapped blocks keep
(docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

FORMAT = 2


class SegmentError(Exception):
    """A segmented index on disk is incomplete or damaged (the caller turns it into IndexMismatch)."""


def folder_of(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".d")


def manifest_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".json")


def read_manifest(path) -> dict | None:
    try:
        return json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return None


def save(
    path,
    fields: dict,
    header: bytes,
    nseg: int,
    payload: Callable[[int], tuple[bytes, int]],
    dirty: Iterable[int] | None,
    previous: dict | None,
) -> dict:
    """Write a segmented index and return its manifest.

    `payload(seg)` returns (bytes, entry count) of one segment ((b"", 0) for an empty one).
    `dirty` names the segments changed since `previous` (the manifest this index was last saved
    or loaded with); when `previous` still describes the files on disk, only those segments are
    written. Otherwise (`dirty` None, no previous save, or another save since) everything is.
    """
    path = Path(path)
    folder = folder_of(path)
    folder.mkdir(exist_ok=True, mode=0o700)
    on_disk = read_manifest(path)
    header_sha = hashlib.sha256(header).hexdigest()
    incremental = (
        dirty is not None
        and previous is not None
        and on_disk == previous
        and previous.get("format") == FORMAT
        and previous.get("segment_count") == nseg
        and previous.get("sha256") == header_sha
        and path.is_file()
    )
    generation = int((on_disk or {}).get("generation", 0)) + 1
    segments = dict(previous["segments"]) if incremental else {}
    if not incremental:
        if path.exists() and (on_disk or {}).get("format") != FORMAT:
            shred(path)  # a one-file index (older layout) of the same entries: gone before the new one
        _write_atomic(path, header)
    for seg in sorted(set(dirty)) if incremental else range(nseg):
        data, count = payload(seg)
        if count == 0:
            segments.pop(str(seg), None)
            continue
        name = f"{seg:04d}.{generation}.seg"
        _write_atomic(folder / name, data)
        segments[str(seg)] = {"file": name, "count": int(count), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = dict(
        fields,
        format=FORMAT,
        generation=generation,
        segment_count=nseg,
        sha256=header_sha,
        count=sum(s["count"] for s in segments.values()),
        segments=segments,
    )
    _write_atomic(manifest_path(path), json.dumps(manifest, indent=1, sort_keys=True).encode())
    keep = {s["file"] for s in segments.values()}
    for stray in folder.iterdir():
        if stray.name not in keep:
            shred(stray)
    return manifest


def load(path, manifest: dict) -> tuple[bytes, Iterator[tuple[int, bytes]]]:
    """Return the header and an iterator of (segment, bytes), each checked against the manifest."""
    path = Path(path)
    if manifest.get("format") != FORMAT:
        raise SegmentError(f"{path}: manifest format {manifest.get('format')}, not {FORMAT}")
    try:
        header = path.read_bytes()
    except OSError as exc:
        raise SegmentError(f"index header {path} cannot be read: {exc}") from None
    if hashlib.sha256(header).hexdigest() != manifest.get("sha256"):
        raise SegmentError(f"{path} does not match the checksum in its manifest")
    folder = folder_of(path)

    def segments():
        for seg, entry in sorted(manifest.get("segments", {}).items(), key=lambda kv: int(kv[0])):
            file = folder / entry["file"]
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise SegmentError(f"index segment {file} cannot be read: {exc}") from None
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise SegmentError(f"index segment {file} does not match the checksum in its manifest")
            yield int(seg), data

    return header, segments()


def files(path) -> list[Path]:
    """Every file of a segmented index on disk: header, manifest, and all segment files, named or not."""
    path = Path(path)
    out = [p for p in (path, manifest_path(path)) if p.exists()]
    folder = folder_of(path)
    if folder.is_dir():
        out += sorted(p for p in folder.iterdir() if p.is_file())
    return out


def stored_ids(
    path, read_one_file: Callable[[Path], np.ndarray], read_segment: Callable[[bytes], np.ndarray]
) -> dict[str, np.ndarray | None]:
    """The ids held by every file of an index on disk, named by its manifest or not: a one-file
    index (older format) at `path`, and every file in its segment folder, leftovers included.
    A file that cannot be parsed maps to None (it may hold anything). For proving an erasure."""
    path = Path(path)
    out: dict[str, np.ndarray | None] = {}
    if path.is_file() and (read_manifest(path) or {}).get("format") != FORMAT:
        try:
            out[path.name] = read_one_file(path)
        except (RuntimeError, SegmentError, OSError):
            out[path.name] = None
    folder = folder_of(path)
    if folder.is_dir():
        for file in sorted(folder.iterdir()):
            try:
                out[f"{folder.name}/{file.name}"] = read_segment(file.read_bytes())
            except (RuntimeError, SegmentError, OSError):
                out[f"{folder.name}/{file.name}"] = None
    return out


def remove_all(path) -> None:
    """Shred every file of a segmented index (header, manifest, segments) and its folder."""
    for p in files(path):
        shred(p)
    folder = folder_of(path)
    if folder.is_dir():
        folder.rmdir()


def shred(path: Path) -> None:
    """Overwrite a file with zeros, flush it to disk, and unlink it."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            zeros = bytes(min(size, 1 << 20))
            left = size
            while left > 0:
                n = min(left, len(zeros))
                f.write(zeros[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# -- numpy arrays in a segment (np.save one after another; read back with allow_pickle=False) -----


def pack_arrays(*arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    for a in arrays:
        np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def unpack_arrays(data: bytes, n: int) -> list[np.ndarray]:
    buf = io.BytesIO(data)
    try:
        return [np.load(buf, allow_pickle=False) for _ in range(n)]
    except (ValueError, EOFError, OSError) as exc:
        raise SegmentError(f"index segment cannot be parsed: {exc}") from None
