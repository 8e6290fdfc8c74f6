"""Pipeline plumbing with a fake executor (no faces involved): bounded memory, crash recovery, order."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
from PIL import Image

import scanner.workers as workers
from scanner.models import Analysis, ImageFingerprint, ScanOptions, Status
from scanner.pipeline import open_store, scan


class LazyExecutor:
    """Runs a task only when its result is asked for, and counts tasks submitted but not collected."""

    def __init__(self, crash_on: set[bytes] | None = None):
        self.outstanding = 0
        self.peak = 0
        self.crash_on = crash_on or set()
        self.crashed: list[bytes] = []

    def submit(self, fn, data, path=None, video=False):
        self.outstanding += 1
        self.peak = max(self.peak, self.outstanding)
        fut = _LazyFuture(self, fn, data)
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


class _LazyFuture(Future):
    def __init__(self, ex, fn, data):
        super().__init__()
        self.ex, self.fn, self.data = ex, fn, data

    def done(self):
        return False  # never ready early: forces the pipeline to rely on its in-flight cap

    def result(self, timeout=None):
        self.ex.outstanding -= 1
        if self.data in self.ex.crash_on:
            self.ex.crashed.append(self.data)
            raise BrokenProcessPool("worker died")
        return Analysis(image=ImageFingerprint(1, 1, "PNG", 1, "0" * 16, "0" * 16))


@pytest.fixture
def pngs(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(60):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(folder / f"{i:03d}.png")
    return folder


def _scan(folder, tmp_path, executor, monkeypatch, workers_n=2):
    monkeypatch.setattr(workers, "make_executor", lambda options, n, cluster=None: executor)
    store, root = open_store(str(tmp_path / "ws"))
    results = []
    summary = scan([str(folder)], store, ScanOptions(workers=workers_n), on_result=results.append, workspace=root)
    store.close()
    return summary, results


def test_members_in_flight_are_capped(pngs, tmp_path, monkeypatch):
    ex = LazyExecutor()
    summary, results = _scan(pngs, tmp_path, ex, monkeypatch, workers_n=2)
    assert summary.counts["images"] == 60
    assert ex.peak <= 4 * 2 + 1  # the window, plus the member just read
    assert [r.member.relpath for r in results] == [f"{i:03d}.png" for i in range(60)]  # read order kept


def test_worker_crash_is_retried_then_recorded(pngs, tmp_path, monkeypatch):
    bad = (pngs / "007.png").read_bytes()
    ex = LazyExecutor(crash_on={bad})
    summary, results = _scan(pngs, tmp_path, ex, monkeypatch)
    r = {x.member.relpath: x for x in results}
    assert r["007.png"].status is Status.UNREADABLE and "crashed" in r["007.png"].reason
    assert len(ex.crashed) == 2  # tried once more in a fresh pool
    assert summary.counts["images"] == 59 and summary.counts["unreadable"] == 1
