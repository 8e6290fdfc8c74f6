"""Shared fixtures: the real photos in ../shared/facedata, and scans computed once per session."""

from __future__ import annotations

import contextlib
import functools
import io
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FACEDATA = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata"))


def facedata_path(*parts: str) -> Path:
    """Return a path under the shared face photos, skipping the test when they are absent."""
    path = FACEDATA.joinpath(*parts)
    if not FACEDATA.is_dir():
        pytest.skip(f"real face photos not found at {FACEDATA} (set FACETRACE_FACEDATA to their folder)")
    if not path.exists():
        pytest.skip(f"{path} is missing from the shared face photos")
    return path


@pytest.fixture(scope="session")
def facedata() -> Path:
    return facedata_path()


def run_scan(paths, workspace, db_url=None, **options):
    """Scan `paths` into `workspace` (its database, or `db_url`); return (summary, results in emission order)."""
    from scanner.models import ScanOptions
    from scanner.pipeline import open_store, scan

    store, root = open_store(str(workspace), db_url)
    results = []
    try:
        summary = scan([str(p) for p in paths], store, ScanOptions(**options), on_result=results.append, workspace=root)
    finally:
        store.close()
    return summary, results


def reference_cohort(
    root, people: list[str], photos: int = 2, collection: tuple[str, ...] = ("lfw_deepfunneled",)
) -> None:
    """Give a workspace a reference cohort (scanner/matching/cohort.py) of real people (folders of
    `collection` under facedata): the crowd the matcher compares a face with when the registry
    holds too few other people."""
    import numpy as np

    from scanner.fingerprints.faces import EMBEDDER, engine_versions
    from scanner.matching import cohort

    encodings, person = _cohort_encodings(tuple(people), photos, tuple(collection))
    cohort.save(
        root,
        np.asarray(encodings),
        np.asarray(person),
        {"embedder": EMBEDDER, "embedder_version": engine_versions()["face_recognition"], "people": len(people)},
    )


@functools.lru_cache(maxsize=8)
def _cohort_encodings(people: tuple[str, ...], photos: int, collection: tuple[str, ...]) -> tuple[list, list]:
    """The encodings of a reference cohort, computed once per test session."""
    from scanner import workers

    encodings, person = [], []
    for i, name in enumerate(people):
        usable = 0
        for p in sorted(facedata_path(*collection, *name.split("/")).iterdir()):
            analysis = workers.analyse_here(p.read_bytes(), path=str(p))
            if len(analysis.faces) == 1:  # the first `photos` photos of the person that show one face
                encodings.append(analysis.faces[0].encoding)
                person.append(i)
                usable += 1
                if usable == photos:
                    break
    return encodings, person


def lfw_people(min_photos: int = 7, exclude: tuple[str, ...] = ()) -> list[str]:
    """LFW people with at least `min_photos` photos, by name, less `exclude`."""
    lfw = facedata_path("lfw_deepfunneled")
    return [
        p.name
        for p in sorted(lfw.iterdir())
        if p.is_dir() and p.name not in exclude and len(list(p.iterdir())) >= min_photos
    ]


def by_relpath(results):
    return {r.member.relpath: r for r in results}


def jpeg_bytes(img, quality=90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# -- PostgreSQL: the storage layer's second backend ------------------------------------------------


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster on a loopback port; yields its base URL (no database name).

    Debian's postgresql package provides the binaries (`make test` installs it as root). The
    cluster lives in a temporary folder and is stopped at the end of the session. initdb refuses to
    run as root, so as root the server runs as the `postgres` user the package creates.
    """
    import shutil
    import socket
    import subprocess
    import tempfile

    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql as root)")
    # not under pytest's own temporary folder: that is private to root, and the server may run as postgres
    root = Path(tempfile.mkdtemp(prefix="facetrace-pg-"))
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "facetrace",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://facetrace@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _fresh_database(server: str):
    """Create an empty database on the test server; drop it afterwards."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = server.replace("postgresql+psycopg", "postgresql") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# the PostgreSQL variant is marked `postgres`: `make test-fast` (-m "not postgres ...") leaves it out
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def _backend(request):
    """None for SQLite (the workspace's own database), or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield None
    else:
        with _fresh_database(request.getfixturevalue("postgres_server")) as url:
            yield url


@pytest.fixture(params=BACKENDS)
def db_url(request):
    """Each storage test runs on both backends: SQLite in the workspace (None: the default) and PostgreSQL."""
    with _backend(request) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request):
    """`db_url` for a module's shared fixtures (a workspace enrolled and scanned once per backend)."""
    with _backend(request) as url:
        yield url


# -- Loopback networking: the acquisition and webhook tests (helpers in tests/webserver.py) --------


@pytest.fixture
def no_proxy_for_loopback(monkeypatch):
    """A proxy set in the environment must not see the tests' loopback requests (modules that
    need it for every test say `pytestmark = pytest.mark.usefixtures("no_proxy_for_loopback")`)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def loopback_only(monkeypatch):
    """Refuse, without connecting, every TCP connection to an address that is not loopback; return
    the addresses connected to (or tried). A test of address refusal must never reach another
    machine, even when the code under test is wrong."""
    import errno
    import ipaddress
    import socket

    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _check(address):
        if isinstance(address, tuple):
            host = str(address[0]).split("%")[0]
            attempts.append(host)
            if not ipaddress.ip_address(host).is_loopback:
                raise ConnectionRefusedError(errno.ECONNREFUSED, f"the test refused a connection to {host}")

    def connect(sock, address):
        _check(address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        _check(address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


@pytest.fixture
def fake_dns(monkeypatch):
    """Chosen DNS answers for chosen names (tests/webserver.py FakeDNS)."""
    from tests.webserver import FakeDNS

    return FakeDNS(monkeypatch)


@pytest.fixture
def server():
    """A plain-HTTP loopback server for the test (tests/webserver.py LoopbackServer)."""
    from tests.webserver import LoopbackServer

    with LoopbackServer() as s:
        yield s
