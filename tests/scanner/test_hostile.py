"""Hostile inputs: a dump built to hurt the scanner is listed member by member, safely and quickly.

A module fixture generates one folder `dump/` (in a temporary folder, never in the repository)
holding decompression bombs (a 300 MB member of zeros, a "42.zip"-like zip of zips, a
20000x20000 PNG), archive members whose names climb out of the archive ("../", absolute names),
tar links, truncated and corrupt media, a text file named .jpg, empty files, zips nested eight
deep, and GBK member names from Chinese Windows, next to a real face photo. The dump is scanned
once with the `facetrace scan --json` command in a subprocess, so that its memory can be measured.

The tests check that the scan exits 0 within its time budget, that its peak memory stays under
1 GiB, that nothing is written outside the workspace, that every hostile member has its own
record with the expected status and a clear reason, and that the real photo among them is still
analysed.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FACEDATA, REPO, facedata_path

MiB = 1 << 20
RATIO_BOMB_BYTES = 300 * MiB  # case 1: one member of zeros
NESTED_BOMB_BYTES = 200 * MiB  # case 2: the member of zeros in each inner zip
NESTED_BOMB_COPIES = 10
DEEP_LEVELS = 8  # case 9: zips inside zips
GBK_NAME = "照片/张三.jpg"

SCAN_TIMEOUT_S = 300  # the subprocess is killed after this
SCAN_MAX_WALL_S = 240
CASE_MAX_S = 60  # any one top-level file of the dump, from the previous one's last record to its own
MAX_RSS_KIB = 1 << 20  # 1 GiB; ru_maxrss is in KiB on Linux

# The top-level files of dump/, and the case each belongs to.
CASES = {
    "bomb_nested.zip": "2 nested zip bomb",
    "bomb_pixels.png": "5 decompression-bomb image",
    "bomb_ratio.zip": "1 zip bomb by ratio",
    "corrupt.png": "6 corrupt PNG",
    "deep.zip": "9 deep nesting",
    "empty.jpg": "8 zero-byte image name",
    "empty.txt": "8 zero-byte text",
    "gbk.zip": "10 GBK names",
    "links.tar": "4 tar links and traversal",
    "not_an_image.jpg": "7 text named .jpg",
    "traversal.zip": "3 zip traversal names, 11 face photo",
    "truncated.jpg": "6 truncated JPEG",
    "truncated.mp4": "6 truncated MP4",
}


# -- the corpus ------------------------------------------------------------------------------------


def _write_zeros(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """Add `size` bytes of zeros as member `name`, streamed so the test never holds them."""
    chunk = bytes(MiB)
    with zf.open(name, "w") as out:  # compressed with the ZipFile's method (deflate)
        for _ in range(size // MiB):
            out.write(chunk)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def _synthetic_jpeg(seed: int) -> bytes:
    """A faceless JPEG of noise, unique per seed: stands in for a photo when the shared ones are absent."""
    from PIL import Image

    rng = random.Random(seed)
    img = Image.frombytes("RGB", (96, 96), rng.randbytes(96 * 96 * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _photo(name: str, seed: int) -> bytes:
    """A real LFW photo when the shared photos are there, else a synthetic JPEG."""
    if FACEDATA.is_dir():
        return facedata_path("lfw_deepfunneled", "Ana_Palacio", name).read_bytes()
    return _synthetic_jpeg(seed)


def _ratio_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _write_zeros(zf, "zeros.bin", RATIO_BOMB_BYTES)


def _nested_bomb(path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        _write_zeros(zf, "zeros.bin", NESTED_BOMB_BYTES)
    blob = inner.getvalue()  # ~200 KB, built once
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(NESTED_BOMB_COPIES):
            zf.writestr(f"inner{i:02d}.zip", blob)


def _traversal_zip(path: Path, face: bytes) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("../../evil.txt"), b"written outside the extraction folder?\n")
        zf.writestr(zipfile.ZipInfo("/abs/evil2.txt"), b"written at an absolute path?\n")
        zf.writestr("face.jpg", face)
    with zipfile.ZipFile(path) as zf:  # the names are stored verbatim
        assert zf.namelist() == ["../../evil.txt", "/abs/evil2.txt", "face.jpg"]


def _links_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        sym = tarfile.TarInfo("link_passwd")
        sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(sym)
        hard = tarfile.TarInfo("hardlink")
        hard.type, hard.linkname = tarfile.LNKTYPE, "../../etc/passwd"
        tf.addfile(hard)
        blob = b"a member whose name climbs out of the archive\n"
        up = tarfile.TarInfo("../escape.txt")
        up.size = len(blob)
        tf.addfile(up, io.BytesIO(blob))


def _bomb_png(path: Path) -> None:
    from PIL import Image

    Image.new("1", (20000, 20000)).save(path)  # 400 Mpx, ~50 KB on disk


def _corrupt_png(path: Path) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 64), random.Random(6).randbytes(64 * 64 * 3)).save(buf, "PNG")
    path.write_bytes(buf.getvalue()[:100] + random.Random(7).randbytes(5000))


def _truncated_mp4(path: Path) -> None:
    import av
    from PIL import Image

    rng = random.Random(8)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(10):  # noise: every frame is large, so 3000 bytes cut the file short
            frame = av.VideoFrame.from_image(Image.frombytes("RGB", (64, 64), rng.randbytes(64 * 64 * 3)))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    full = buf.getvalue()
    assert len(full) > 3000 and full[4:8] == b"ftyp"
    path.write_bytes(full[:3000])


def _deep_zip(path: Path) -> None:
    blob = b"the bottom of a zip nested eight deep\n"
    name = "bottom.txt"
    for level in range(DEEP_LEVELS, 0, -1):
        blob = _zip_bytes({name: blob})
        name = f"level{level}.zip"
    path.write_bytes(blob)  # deep.zip holds level2.zip ... which holds level8.zip, which holds bottom.txt


def _gbk_zip(path: Path, photo: bytes) -> None:
    """A legacy zip from Chinese Windows: the name's GBK bytes stored as is, UTF-8 flag not set."""
    raw = GBK_NAME.encode("gbk")
    placeholder = b"Q" * len(raw)
    info = zipfile.ZipInfo(placeholder.decode("ascii"))
    info.compress_type = zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(info, photo)
    blob = buf.getvalue()
    assert blob.count(placeholder) == 2  # local header and central directory, nowhere else
    path.write_bytes(blob.replace(placeholder, raw))
    with zipfile.ZipFile(path) as zf:
        (stored,) = zf.infolist()
        assert not stored.flag_bits & 0x800 and stored.filename == raw.decode("cp437")


@dataclass
class Corpus:
    root: Path  # the module's temporary folder
    dump: Path
    workspace: Path
    cwd: Path  # the scan's working folder, deep enough that "../../x" stays inside root
    seconds: float  # time spent generating the corpus
    real_photos: bool


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("hostile")
    dump = root / "dump"
    cwd = root / "cwd" / "a" / "b"
    for folder in (dump, cwd, root / "tmp"):
        folder.mkdir(parents=True)
    real = FACEDATA.is_dir()
    _ratio_bomb(dump / "bomb_ratio.zip")
    _nested_bomb(dump / "bomb_nested.zip")
    _traversal_zip(dump / "traversal.zip", _photo("Ana_Palacio_0002.jpg", seed=2))
    _links_tar(dump / "links.tar")
    _bomb_png(dump / "bomb_pixels.png")
    (dump / "truncated.jpg").write_bytes(_photo("Ana_Palacio_0003.jpg", seed=3)[:3000])
    _corrupt_png(dump / "corrupt.png")
    _truncated_mp4(dump / "truncated.mp4")
    (dump / "not_an_image.jpg").write_text("this is a note, not a picture\n")
    (dump / "empty.jpg").write_bytes(b"")
    (dump / "empty.txt").write_bytes(b"")
    _deep_zip(dump / "deep.zip")
    _gbk_zip(dump / "gbk.zip", _photo("Ana_Palacio_0001.jpg", seed=1))
    assert sorted(p.name for p in dump.iterdir()) == sorted(CASES)
    return Corpus(root, dump, root / "ws", cwd, time.monotonic() - started, real)


# -- the scan --------------------------------------------------------------------------------------


@dataclass
class ScanRun:
    returncode: int
    records: list[dict]  # member records, in emission order
    arrivals: list[float]  # seconds from the start at which each record was printed
    stderr: str
    wall_s: float
    maxrss_before_kib: int
    maxrss_after_kib: int
    files_before: dict = field(default_factory=dict)
    files_after: dict = field(default_factory=dict)
    parent_before: set = field(default_factory=set)
    parent_after: set = field(default_factory=set)
    escapes_before: dict = field(default_factory=dict)
    escapes_after: dict = field(default_factory=dict)


def _files(root: Path, skip: Path, ours: Path) -> dict[str, tuple]:
    """Every path under `root` except `skip` and the test's own `ours`: type, size and modification time.

    A folder's own size and time are left out: they move when a temporary file comes and goes.
    """
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p == ours:
                continue
            st = p.lstat()
            out[str(p.relative_to(root))] = (
                (st.st_mode,) if p.is_dir() and not p.is_symlink() else (st.st_mode, st.st_size, st.st_mtime_ns)
            )
    return out


def _escape_targets(c: Corpus) -> list[Path]:
    """Where an extraction of the traversal names would land, relative to each likely base folder."""
    bases = [c.cwd, c.workspace, c.workspace / "x", c.dump, c.root, REPO, Path.cwd()]
    names = ["../../evil.txt", "../escape.txt", "evil.txt", "escape.txt", "abs/evil2.txt"]
    targets = {Path(os.path.normpath(b / n)) for b in bases for n in names}
    return sorted(targets | {Path("/abs/evil2.txt"), Path("/abs")})


def _facetrace() -> list[str]:
    exe = Path(sys.executable).parent / "facetrace"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


@pytest.fixture(scope="module")
def scanned(corpus: Corpus) -> ScanRun:
    c = corpus
    targets = _escape_targets(c)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(c.root / "tmp")}  # leftovers would show
    env.pop("FACETRACE_HOME", None)
    rss_file = c.root / "rss.txt"
    # a launcher process runs the scan and reports the peak RSS of its own descendants only (the CLI
    # and its workers), whatever other tests of this pytest run started before
    cmd = [
        sys.executable,
        "-c",
        _LAUNCHER,
        str(rss_file),
        *_facetrace(),
        "scan",
        "--workspace",
        str(c.workspace),
        "--json",
        "--quiet",
        "--workers",
        "2",
        str(c.dump),
    ]

    files_before = _files(c.root, c.workspace, rss_file)
    parent_before = set(os.listdir(c.root.parent))
    escapes_before = {str(t): t.exists() for t in targets}
    rss_before = 0
    lines: list[tuple[float, str]] = []
    err: list[str] = []
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=c.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        start_new_session=True,
    )

    def read_stdout():
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line))

    readers = [
        threading.Thread(target=read_stdout, daemon=True),
        threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        returncode = proc.wait(timeout=SCAN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the scan's own session: the CLI and its workers
        proc.wait()
        pytest.fail(
            f"the scan of the hostile dump did not finish in {SCAN_TIMEOUT_S} s ({len(lines)} lines printed so far)"
        )
    wall = time.monotonic() - started
    for t in readers:
        t.join(timeout=30)
    rss_after = int(rss_file.read_text()) if rss_file.exists() else MAX_RSS_KIB

    records, arrivals = [], []
    for at, line in lines:
        obj = json.loads(line)
        if "status" in obj:  # relation lines ("relation": ...) carry no status
            records.append(obj)
            arrivals.append(at)
    return ScanRun(
        returncode,
        records,
        arrivals,
        "".join(err),
        wall,
        rss_before,
        rss_after,
        files_before,
        _files(c.root, c.workspace, rss_file),
        parent_before,
        set(os.listdir(c.root.parent)),
        escapes_before,
        {str(t): t.exists() for t in targets},
    )


_LAUNCHER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""


def _rel(corpus: Corpus, record: dict) -> str:
    """The record's logical path below dump/ (archive members keep their raw names after '!/')."""
    prefix = str(corpus.dump) + os.sep
    assert record["path"].startswith(prefix), record["path"]
    return record["path"][len(prefix) :]


def _one(corpus: Corpus, scanned: ScanRun, top: str, suffix: str = "") -> dict:
    """The one record below dump/`top` whose logical path ends with `suffix` ('' : `top` itself)."""
    want = top if not suffix else None
    found = [
        r
        for r in scanned.records
        if (
            _rel(corpus, r) == want
            if want
            else _rel(corpus, r).startswith(top + "!/") and _rel(corpus, r).endswith(suffix)
        )
    ]
    assert len(found) == 1, (
        f"expected one record for {top} {suffix!r}, found {len(found)}: "
        f"{[_rel(corpus, r) for r in found] or _listing(corpus, scanned, top)}"
    )
    return found[0]


def _listing(corpus: Corpus, scanned: ScanRun, top: str) -> list[tuple]:
    return [
        (_rel(corpus, r), r["status"], r["reason"]) for r in scanned.records if _rel(corpus, r).split("!/")[0] == top
    ]


def _reason(record: dict) -> str:
    return record["reason"] or ""


# -- the scan as a whole ---------------------------------------------------------------------------


def test_corpus_generation_is_fast(corpus):
    assert corpus.seconds < 20, f"generating the hostile corpus took {corpus.seconds:.1f} s"


def test_scan_exits_0(scanned):
    assert scanned.returncode == 0, scanned.stderr[-3000:]


def test_scan_wall_time_is_bounded(scanned):
    assert scanned.wall_s < SCAN_MAX_WALL_S, f"the scan took {scanned.wall_s:.0f} s"


def test_each_case_is_bounded_in_time(corpus, scanned):
    """Records come in the dump's (sorted) order: charge each top-level file the time since the previous one."""
    last: dict[str, float] = {}
    for record, at in zip(scanned.records, scanned.arrivals, strict=False):
        last[_rel(corpus, record).split("!/")[0]] = at
    spans, previous = {}, 0.0
    for top, at in sorted(last.items(), key=lambda kv: kv[1]):
        spans[top] = at - previous
        previous = at
    slow = {top: round(s, 1) for top, s in spans.items() if s >= CASE_MAX_S}
    assert not slow, f"cases slower than {CASE_MAX_S} s: {slow} (all: { {k: round(v, 1) for k, v in spans.items()} })"


def test_peak_memory_under_1_gib(scanned):
    # the launcher's RUSAGE_CHILDREN ru_maxrss: the largest RSS of the scan's processes (the CLI and
    # its workers), measured apart from everything else this pytest run started
    assert scanned.maxrss_after_kib < MAX_RSS_KIB, (
        f"peak RSS {scanned.maxrss_after_kib / 1024:.0f} MiB (before the scan: "
        f"{scanned.maxrss_before_kib / 1024:.0f} MiB)"
    )


def test_nothing_written_outside_the_workspace(corpus, scanned):
    before, after = scanned.files_before, scanned.files_after
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert not (added or removed or changed), f"added {added}, removed {removed}, changed {changed}"
    assert scanned.parent_after == scanned.parent_before, scanned.parent_after ^ scanned.parent_before
    assert corpus.workspace.is_dir()


def test_traversal_names_not_extracted_anywhere(corpus, scanned):
    created = [t for t, exists in scanned.escapes_after.items() if exists and not scanned.escapes_before[t]]
    assert not created, created
    leaked = [p for p in corpus.root.parent.rglob("*") if p.name in ("evil.txt", "evil2.txt", "escape.txt")]
    assert not leaked, leaked
    assert not Path("/abs/evil2.txt").exists()


def test_every_case_is_listed(corpus, scanned):
    """Nothing is dropped silently: each file of the dump and each hostile member has its record."""
    for top in CASES:
        _one(corpus, scanned, top)
    _one(corpus, scanned, "bomb_ratio.zip", "/zeros.bin")
    for i in range(NESTED_BOMB_COPIES):
        _one(corpus, scanned, "bomb_nested.zip", f"!/inner{i:02d}.zip")
    for suffix in ("../../evil.txt", "/abs/evil2.txt", "/face.jpg"):
        _one(corpus, scanned, "traversal.zip", suffix)
    for suffix in ("/link_passwd", "/hardlink", "/../escape.txt"):
        _one(corpus, scanned, "links.tar", suffix)
    _one(corpus, scanned, "gbk.zip", GBK_NAME)
    assert any(_rel(corpus, r).startswith("deep.zip!/") for r in scanned.records)


def test_every_refused_member_has_a_reason(scanned):
    bare = [r["path"] for r in scanned.records if r["status"] in ("unreadable", "skipped") and not r["reason"]]
    assert not bare, bare


# -- one test per case -----------------------------------------------------------------------------


def test_ratio_bomb_member_is_skipped(corpus, scanned):  # case 1
    r = _one(corpus, scanned, "bomb_ratio.zip", "/zeros.bin")
    assert r["status"] == "skipped" and "possible decompression bomb" in _reason(r), (r["status"], r["reason"])


def test_nested_zip_bomb_is_not_expanded(corpus, scanned):  # case 2
    members = [r for r in scanned.records if _rel(corpus, r).startswith("bomb_nested.zip!/")]
    leaves = [r for r in members if _rel(corpus, r).endswith("/zeros.bin")]
    wrong = [
        (_rel(corpus, r), r["status"], r["reason"])
        for r in leaves
        if r["status"] != "skipped" or "possible decompression bomb" not in _reason(r)
    ]
    assert not wrong, f"200 MB members not refused as bombs: {wrong}"
    big_ok = [(_rel(corpus, r), r["size"]) for r in members if r["status"] == "ok" and r["size"] > 100 * 1_000_000]
    assert not big_ok, big_ok


def test_zip_traversal_names_listed_not_extracted(corpus, scanned):  # case 3
    for suffix in ("../../evil.txt", "/abs/evil2.txt"):
        r = _one(corpus, scanned, "traversal.zip", suffix)
        assert r["status"] == "ok" and "nothing extracted" in _reason(r), (suffix, r["status"], r["reason"])


def test_tar_links_refused(corpus, scanned):  # case 4
    for suffix in ("/link_passwd", "/hardlink"):
        r = _one(corpus, scanned, "links.tar", suffix)
        assert r["status"] == "skipped" and "link" in _reason(r), (suffix, r["status"], r["reason"])


def test_tar_traversal_name_listed_not_extracted(corpus, scanned):  # case 4
    r = _one(corpus, scanned, "links.tar", "/../escape.txt")
    assert r["status"] == "ok" and "nothing extracted" in _reason(r), (r["status"], r["reason"])


def test_pixel_bomb_image_not_decoded(corpus, scanned):  # case 5
    r = _one(corpus, scanned, "bomb_pixels.png")
    assert r["status"] == "unreadable" and "possible decompression bomb" in _reason(r), (r["status"], r["reason"])


@pytest.mark.parametrize("name", ["truncated.jpg", "corrupt.png", "truncated.mp4"])
def test_truncated_and_corrupt_media_unreadable(corpus, scanned, name):  # case 6
    r = _one(corpus, scanned, name)
    assert r["status"] == "unreadable" and _reason(r).strip(), (r["status"], r["reason"])


def test_text_named_as_image_unreadable(corpus, scanned):  # case 7
    r = _one(corpus, scanned, "not_an_image.jpg")
    assert r["status"] == "unreadable" and "named as an image" in _reason(r), (r["status"], r["reason"])


def test_zero_byte_files(corpus, scanned):  # case 8
    image = _one(corpus, scanned, "empty.jpg")
    assert image["status"] == "unreadable" and "empty" in _reason(image), (image["status"], image["reason"])
    text = _one(corpus, scanned, "empty.txt")
    assert text["status"] == "ok", (text["status"], text["reason"])


def test_deep_nesting_stops_with_a_reason(corpus, scanned):  # case 9
    deep = [r for r in scanned.records if _rel(corpus, r).split("!/")[0] == "deep.zip"]
    assert any(r["status"] == "skipped" and "nested more than" in _reason(r) for r in deep), _listing(
        corpus, scanned, "deep.zip"
    )


def test_gbk_member_names_decoded(corpus, scanned):  # case 10
    r = _one(corpus, scanned, "gbk.zip", GBK_NAME)
    assert r["path"].endswith("!/" + GBK_NAME) and r["status"] == "ok", (r["path"], r["status"], r["reason"])


@pytest.mark.facedata
def test_real_face_among_hostile_members_is_analysed(corpus, scanned):  # case 11
    if not corpus.real_photos:
        facedata_path()  # skips, saying where the photos were looked for
    r = _one(corpus, scanned, "traversal.zip", "/face.jpg")
    assert r["status"] == "ok" and len(r["faces"]) >= 1, (r["status"], r["reason"], len(r["faces"]))
