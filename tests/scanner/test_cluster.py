"""Scans on a Dask cluster (`scan --cluster`): a LocalCluster of worker processes gives results
identical to a local scan, also when one of its workers is killed mid-scan."""

from __future__ import annotations

import os
import shutil
import signal
import threading

import pytest

from tests.conftest import facedata_path, run_scan

pytestmark = pytest.mark.facedata

PEOPLE = 12  # about 80 photos


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster") / "dump"
    for person in sorted(p for p in facedata_path("lfw_deepfunneled").iterdir() if p.is_dir())[:PEOPLE]:
        shutil.copytree(person, root / person.name)
    shutil.copy(facedata_path("video", "short_hamilton_clip.mp4"), root / "clip.mp4")  # analysed from its path
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def local(dump, tmp_path_factory):
    _, results = run_scan([dump], tmp_path_factory.mktemp("local-ws"), workers=2)
    return _essence(results)


@pytest.fixture
def cluster():
    import warnings

    from distributed import LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            yield c


def _essence(results):
    """What must not depend on where the analysis ran: every member and its fingerprints, bit for bit."""
    return [
        (
            r.member.seq,
            r.member.logical_path.split("/dump/", 1)[-1],
            r.member.sha256,
            r.status.value,
            r.reason,
            None if r.image is None else (r.image.phash, r.image.dhash, r.image.width, r.image.height),
            tuple((f.box, f.encoding, f.frame_ms, f.track) for f in r.faces),
            None if r.video is None else r.video.as_record(),
        )
        for r in results
    ]


@pytest.mark.slow
def test_a_cluster_scan_equals_a_local_scan(dump, local, cluster, tmp_path):
    from scanner.pipeline import open_store, scan

    store, root = open_store(str(tmp_path / "ws"))
    results = []
    summary = scan([str(dump)], store, on_result=results.append, workspace=root, cluster=cluster.scheduler_address)
    record = store.get_scan(summary.scan_id)
    store.close()
    assert _essence(results) == local
    assert record["host"]["cluster"] == cluster.scheduler_address and record["status"] == "finished"
    assert summary.counts["faces"] > PEOPLE * 5  # real faces were analysed, and a video


@pytest.mark.slow
def test_a_worker_killed_mid_scan_changes_nothing(dump, local, cluster, tmp_path):
    from distributed import Client

    from scanner.pipeline import open_store, scan

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        pids = sorted(client.run(os.getpid).values())
    assert len(pids) == 2
    killed = threading.Event()
    results = []

    def on_result(result):
        results.append(result)
        if len(results) == 20 and not killed.is_set():  # a quarter of the way: tasks are in flight on both
            os.kill(pids[0], signal.SIGKILL)
            killed.set()

    store, root = open_store(str(tmp_path / "ws"))
    scan([str(dump)], store, on_result=on_result, workspace=root, cluster=cluster.scheduler_address)
    store.close()
    assert killed.is_set()
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        assert pids[0] not in client.run(os.getpid).values()  # that worker really died (its nanny made a new one)
    assert _essence(results) == local


def test_workers_with_other_versions_are_refused(cluster, dump, tmp_path):
    # encodings made by another facetrace or library version would be stored as this scan's
    from distributed import Client

    from scanner.errors import UsageError
    from scanner.pipeline import open_store, scan

    def pretend_older():
        import scanner.fingerprints.faces as faces

        faces.engine_versions.cache_clear()
        real = faces.engine_versions()
        faces.engine_versions = lambda: {**real, "onnxruntime": "1.0.0"}

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        client.run(pretend_older)
    store, root = open_store(str(tmp_path / "ws"))
    with pytest.raises(UsageError, match="onnxruntime 1.0.0"):
        scan([str(dump)], store, workspace=root, cluster=cluster.scheduler_address)
    assert store.list_scans() == []
    store.close()


def test_an_unreachable_scheduler_is_a_clear_error(dump, tmp_path, monkeypatch):
    import socket

    import scanner.workers
    from scanner.errors import UsageError
    from scanner.pipeline import open_store, scan

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    monkeypatch.setattr(scanner.workers, "CLUSTER_CONNECT_TIMEOUT_S", 2)
    store, root = open_store(str(tmp_path / "ws"))
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        scan([str(dump)], store, workspace=root, cluster=f"tcp://127.0.0.1:{port}")
    assert store.list_scans() == []  # refused before anything was recorded
    store.close()
