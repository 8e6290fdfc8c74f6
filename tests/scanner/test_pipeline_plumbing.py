"""Pipeline plumbing with fake executors (no faces involved): bounded memory, crash recovery,
order, and batches of images whose worker dies."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
from PIL import Image

import scanner.workers as workers
from scanner.models import Analysis, ImageFingerprint, ScanOptions, Status
from scanner.pipeline import IN_FLIGHT_PER_WORKER, open_store, scan


class LazyExecutor:
    """Runs a task only when its result is asked for, and counts tasks submitted but not collected."""

    def __init__(self, crash_on: set[bytes] | None = None):
        self.outstanding = 0
        self.peak = 0
        self.crash_on = crash_on or set()
        self.crashed: list[bytes] = []

    def submit(self, fn, data, path=None, video=False, alone=False):
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
    assert ex.peak <= IN_FLIGHT_PER_WORKER * 2 + 1  # the window, plus the member just read
    assert [r.member.relpath for r in results] == [f"{i:03d}.png" for i in range(60)]  # read order kept


def test_worker_crash_is_retried_then_recorded(pngs, tmp_path, monkeypatch):
    bad = (pngs / "007.png").read_bytes()
    ex = LazyExecutor(crash_on={bad})
    summary, results = _scan(pngs, tmp_path, ex, monkeypatch)
    r = {x.member.relpath: x for x in results}
    assert r["007.png"].status is Status.UNREADABLE and "crashed" in r["007.png"].reason
    assert len(ex.crashed) == 2  # tried once more in a fresh pool
    assert summary.counts["images"] == 59 and summary.counts["unreadable"] == 1


def test_bytes_in_flight_are_capped(tmp_path, monkeypatch):
    import scanner.pipeline as pipeline

    folder = tmp_path / "noise"
    folder.mkdir()
    rng = __import__("random").Random(0)
    for i in range(30):  # incompressible: each PNG is about 30 kB
        Image.frombytes("RGB", (100, 100), rng.randbytes(30000)).save(folder / f"{i:03d}.png")
    size = max(p.stat().st_size for p in folder.iterdir())
    monkeypatch.setattr(pipeline, "MAX_HELD_BYTES", 3 * size)
    held = []

    class Counting(LazyExecutor):
        def submit(self, fn, data, path=None, video=False, alone=False):
            fut = super().submit(fn, data, path, video, alone)
            held.append(self.outstanding * size)
            return fut

    summary, results = _scan(folder, tmp_path, Counting(), monkeypatch)
    assert summary.counts["images"] == 30
    assert max(held) <= 5 * size  # the cap, the member that passed it and the one just read


class FakePool:
    """A process pool stand-in for BatchingExecutor: each task's members are read back from
    `analyses` by their bytes; a task holding a member of `kills` dies as a worker would."""

    def __init__(self, kills=()):
        self.kills = set(kills)
        self.tasks: list[tuple[str, list[bytes]]] = []

    def submit(self, fn, *args):
        items = list(args[0]) if fn is workers.analyse_many else [args[0]]
        self.tasks.append((fn.__name__, items))
        fut = Future()
        if self.kills & set(items):
            fut.set_exception(BrokenProcessPool("a worker died"))
        elif fn is workers.analyse_many:
            fut.set_result([_fake_analysis(d) for d in items])
        else:
            fut.set_result(_fake_analysis(items[0]))
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def _fake_analysis(data: bytes) -> Analysis:
    return Analysis(image=ImageFingerprint(len(data), 1, "PNG", 1, "0" * 16, "0" * 16))


def test_batches_collect_images_and_each_member_gets_its_own_result():
    pool = FakePool()
    ex = workers.BatchingExecutor(pool, photos=4, max_bytes=10)
    futures = [ex.submit(workers.analyse, bytes([i]) * (i + 1)) for i in range(6)]
    # 4 images at most (1 + 2 + 3 + 4 bytes), then 10 bytes at most: 5 goes alone when 6 comes
    assert pool.tasks == [("analyse_many", [bytes([i]) * (i + 1) for i in range(4)]), ("analyse_many", [b"\x04" * 5])]
    assert not futures[5].done()  # still collecting ...
    ex.flush()  # ... until the pipeline waits for it
    assert [f.result().image.width for f in futures] == [1, 2, 3, 4, 5, 6]
    video = ex.submit(workers.analyse, b"v", None, True)
    alone = ex.submit(workers.analyse, b"a", alone=True)
    assert pool.tasks[-2:] == [("analyse", [b"v"]), ("analyse", [b"a"])] and video.done() and alone.done()


def test_a_dead_worker_under_a_batch_charges_nobody_and_finds_the_culprit(pngs, tmp_path, monkeypatch):
    bad = (pngs / "007.png").read_bytes()
    pools = []

    def make(options, n, cluster=None):
        pools.append(FakePool(kills={bad}))
        return workers.BatchingExecutor(pools[-1], photos=8)

    monkeypatch.setattr(workers, "make_executor", make)
    store, root = open_store(str(tmp_path / "ws"))
    results = []
    summary = scan([str(pngs)], store, ScanOptions(workers=2), on_result=results.append, workspace=root)
    store.close()
    r = {x.member.relpath: x for x in results}
    assert r["007.png"].status is Status.UNREADABLE and "crashed" in r["007.png"].reason
    assert all(x.status is Status.OK for name, x in r.items() if name != "007.png")
    assert summary.counts["images"] == 59 and summary.counts["unreadable"] == 1
    assert summary.analysed == 60  # each member counted once, however often it went again
    # the batch that died (members 0-7), then each of them alone: 007 twice, then recorded
    tasks = [t for p in pools for t in p.tasks]
    assert tasks[0] == ("analyse_many", [(pngs / f"{i:03d}.png").read_bytes() for i in range(8)])
    assert sum(1 for name, items in tasks if name == "analyse" and items == [bad]) == 2
    assert all(name == "analyse_many" for name, items in tasks if bad not in items and len(items) > 1)
