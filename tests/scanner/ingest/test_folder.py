from __future__ import annotations

import os

from scanner.ingest.entries import Entry
from scanner.ingest.folder import iter_folder
from scanner.models import Status


def test_sorted_recursive_walk_without_following_links(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("2")
    (tmp_path / "a.txt").write_text("1")
    os.symlink("/etc/passwd", tmp_path / "link")
    os.symlink("/", tmp_path / "rootlink")  # a directory link must not be walked into
    os.mkfifo(tmp_path / "fifo")  # opening a pipe would hang the scan
    entries = [e for e in iter_folder(str(tmp_path)) if isinstance(e, Entry)]
    rel = {e.relpath: e for e in entries}
    assert sorted(rel) == ["a.txt", "b/2.txt", "fifo", "link", "rootlink"]
    assert rel["link"].status is Status.SKIPPED and "not followed" in rel["link"].reason
    assert rel["rootlink"].status is Status.SKIPPED
    assert rel["fifo"].status is Status.SKIPPED and "not a regular file" in rel["fifo"].reason
    assert rel["a.txt"].open is not None and rel["a.txt"].size == 1
