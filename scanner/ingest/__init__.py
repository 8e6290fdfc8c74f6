"""Ingest: folders, zip and tar archives (nested too) -> a stream of read members.

Sources (`folder`, `zip`, `tar`) list entries without reading them; `reader.MemberReader` streams
each entry once, hashing it and detecting its type, and recurses into archives.
"""

from scanner.ingest.reader import MemberReader, ReadMember

__all__ = ["MemberReader", "ReadMember", "estimate_count"]


def estimate_count(inputs: list[str]) -> int | None:
    """Return a quick estimate of how many members `inputs` hold, for a progress bar (None: unknown).

    Folders are walked and zips' central directories read; a tar must be read whole to be counted,
    so a tar input makes the estimate unknown.
    """
    import os
    import zipfile

    total = 0
    for path in inputs:
        if os.path.isdir(path):
            for _dirpath, _dirs, files in os.walk(path):
                total += len(files)
        elif zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as zf:
                    total += 1 + sum(1 for i in zf.infolist() if not i.is_dir())
            except (zipfile.BadZipFile, OSError):
                total += 1
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                head = f.read(512)
            if head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar":
                return None
            total += 1
        else:
            total += 1
    return total
