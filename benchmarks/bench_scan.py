"""Benchmark: `scan` throughput against face_recognition's own loop and command-line tool.

Prints photos and faces per second for:
  loop         face_recognition.load_image_file + face_locations + face_encodings, one image at a
               time in this process (what a user of the library would write)
  cli --cpus N face_recognition's own command-line tool (`face_recognition --cpus N known unknown`)
               over a flat folder of links to the same photos, one known face
  scan         `facetrace scan` with each engine (onnx, the default; dlib, the reference) and 1
               and 2 workers, each a fresh command as a user runs it (Python's start, imports,
               workers, storing, clustering and the summary included, as they are in the tool's
               runs); faces are read back from its workspace database
All run from this process on the same photos, one after another, so the ratios hold on any
machine. Faces found are compared per photo with the command-line tool's (one output line per
face it finds), and any photo where the scan finds fewer is listed.

With --large N, the photos are N phone-sized (4032x3024) JPEGs made by enlarging the real photos
of fr_examples and multiface (people at every size, group photos), so decode and resize costs
are those of a phone camera's files.

With --pairs N, only the goal's comparison runs: the tool with --cpus 2 and `facetrace scan` with
2 workers, alternately, N times, each pair's ratio and their median printed.

Usage: python benchmarks/bench_scan.py [--folder DIR | --large N] [--limit N] [--skip-loop] [--upsample N] [--pairs N]
Default folder: ../shared/facedata/lfw_deepfunneled (or $FACETRACE_FACEDATA/lfw_deepfunneled).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def photos(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return files[:limit] if limit else files


def baseline(files: list[Path]) -> tuple[float, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition
    faces = 0
    t = time.perf_counter()
    for f in files:
        img = face_recognition.load_image_file(str(f))
        locs = face_recognition.face_locations(img)
        faces += len(face_recognition.face_encodings(img, known_face_locations=locs))
    return time.perf_counter() - t, faces


def make_large(facedata: Path, out: Path, n: int) -> None:
    """N phone-sized JPEGs: each real photo of fr_examples and multiface enlarged to 4032x3024."""
    from PIL import Image, ImageOps

    sources = sorted(p for d in ("fr_examples", "multiface") for p in (facedata / d).rglob("*") if p.is_file())
    out.mkdir(parents=True)
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            size = (4032, 3024) if im.width >= im.height else (3024, 4032)
            im = ImageOps.pad(im, size, method=Image.Resampling.LANCZOS, color=(128, 128, 128))
            # each round through the sources at another quality, so no two files share their bytes
            im.save(out / f"large_{i:04d}.jpg", "JPEG", quality=90 - i // len(sources))


def cli(files: list[Path], cpus: int) -> tuple[float, int, dict[str, int]]:
    """Run face_recognition's command-line tool; return (seconds, faces, faces per photo name)."""
    import subprocess

    tool = Path(sys.executable).with_name("face_recognition")
    with tempfile.TemporaryDirectory() as tmp:
        known, unknown = Path(tmp, "known"), Path(tmp, "unknown")
        known.mkdir()
        unknown.mkdir()
        for i, f in enumerate(files):  # the tool reads one flat folder; names made unique
            (unknown / f"{i:06d}_{f.name}").symlink_to(f.resolve())
        (known / "someone.jpg").symlink_to(files[0].resolve())
        t = time.perf_counter()
        out = subprocess.run(
            [str(tool), "--cpus", str(cpus), str(known), str(unknown)], capture_output=True, text=True, check=True
        ).stdout
        elapsed = time.perf_counter() - t
    per_photo: dict[str, int] = {}
    for line in out.splitlines():
        name, _, who = line.rpartition(",")
        if Path(name).parent != unknown:  # warnings about the known face
            continue
        key = Path(name).name.split("_", 1)[1]
        per_photo[key] = per_photo.get(key, 0) + (who != "no_persons_found")
    return elapsed, sum(per_photo.values()), per_photo


def facetrace_scan(
    folder_or_files: list[str], workers: int, engine: str, upsample: int
) -> tuple[float, int, dict[str, int]]:
    """Run `facetrace scan` in a fresh process; return (seconds, faces, faces per photo name)."""
    import sqlite3
    import subprocess

    exe = Path(sys.executable).with_name("facetrace")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]
    with tempfile.TemporaryDirectory() as ws:
        t = time.perf_counter()
        subprocess.run(
            [
                *command,
                "scan",
                "--quiet",
                "--workspace",
                ws,
                "--workers",
                str(workers),
                "--engine",
                engine,
                "--upsample",
                str(upsample),
                *folder_or_files,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - t
        con = sqlite3.connect(Path(ws) / "facetrace.db")
        rows = con.execute(
            "SELECT m.relpath, count(f.id) FROM members m LEFT JOIN faces f ON f.member_id = m.id "
            "WHERE m.kind = 'image' GROUP BY m.id"
        ).fetchall()
        con.close()
    per_photo = {Path(relpath).name: faces for relpath, faces in rows}
    return elapsed, sum(per_photo.values()), per_photo


def pairs(files: list[Path], inputs: list[str], n: int, upsample: int) -> None:
    """The tool with --cpus 2 and `facetrace scan` with 2 workers, alternately, n times."""
    import statistics

    print(f"{'pair':>4} {'tool --cpus 2 s':>16} {'scan s':>8} {'ratio':>7} {'scan faces':>11}")
    ratios = []
    for i in range(n):
        tool, _, _ = cli(files, 2)
        scan, faces, _ = facetrace_scan(inputs, 2, "onnx", upsample)
        ratios.append(tool / scan)
        print(f"{i + 1:>4} {tool:16.1f} {scan:8.1f} {tool / scan:6.2f}x {faces:11d}", flush=True)
    print(f"median ratio {statistics.median(ratios):.2f}x, lowest {min(ratios):.2f}x, highest {max(ratios):.2f}x")


def main() -> None:
    default = Path(os.environ.get("FACETRACE_FACEDATA", REPO.parent / "shared" / "facedata")) / "lfw_deepfunneled"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=default)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N photos (sorted)")
    ap.add_argument("--skip-loop", action="store_true", help="leave out the in-process loop (the slowest run)")
    ap.add_argument("--upsample", type=int, default=1, help="the scans' --upsample (the tool always uses 1)")
    ap.add_argument("--large", type=int, default=0, metavar="N", help="use N phone-sized photos (see above)")
    ap.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="only the goal's comparison, N times in alternation: the tool with --cpus 2, then "
        "`facetrace scan` with 2 workers; prints each pair's ratio and their median (on a shared "
        "machine whose speed drifts, each pair sees about the same machine)",
    )
    args = ap.parse_args()
    if args.large:
        tmp = tempfile.TemporaryDirectory()
        make_large(default.parent, Path(tmp.name) / "large", args.large)
        args.folder = Path(tmp.name) / "large"
    if not args.folder.is_dir():
        sys.exit(f"photo folder not found: {args.folder} (give --folder or set FACETRACE_FACEDATA)")
    files = photos(args.folder, args.limit)
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        sys.exit("photo file names must be unique across the folder (faces are compared per name)")
    inputs = [str(f) for f in files] if args.limit else [str(args.folder)]
    n = len(files)
    print(
        f"# {n} photos from {args.folder}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; scans with --upsample {args.upsample}"
    )
    if args.pairs:
        pairs(files, inputs, args.pairs, args.upsample)
        return
    rows = []
    if not args.skip_loop:
        t, faces = baseline(files)
        rows.append(("face_recognition loop (1 process)", t, faces))
    reference = None
    for cpus in (1, 2):
        t, faces, per_photo = cli(files, cpus)
        rows.append((f"face_recognition CLI --cpus {cpus}", t, faces))
        # --cpus 2's processes print to one stdout and sometimes run two lines into one, so the
        # faces it finds are counted from --cpus 1 (the same detection, one process)
        reference = reference or per_photo
    found = {}
    for engine, workers in (("dlib", 2), ("onnx", 1), ("onnx", 2)):
        t, faces, per_photo = facetrace_scan(inputs, workers, engine, args.upsample)
        rows.append((f"facetrace scan --engine {engine}, {workers} worker{'s' if workers > 1 else ''}", t, faces))
        found = per_photo
    cli2 = rows[-4][1]
    print(f"{'run':44} {'seconds':>8} {'photos/s':>9} {'faces/s':>8} {'faces':>6} {'vs CLI --cpus 2':>16}")
    for name, t, faces in rows:
        print(f"{name:44} {t:8.1f} {n / t:9.2f} {faces / t:8.2f} {faces:6d} {cli2 / t:15.2f}x")
    fewer = {k: (v, found.get(k, 0)) for k, v in reference.items() if found.get(k, 0) < v}
    more = sum(max(found.get(k, 0) - v, 0) for k, v in reference.items())
    got = sum(min(found.get(k, 0), v) for k, v in reference.items())
    print(
        f"faces the CLI (--cpus 1) finds that the last scan finds too (per photo): {got} of {sum(reference.values())} "
        f"({100 * got / max(sum(reference.values()), 1):.2f}%); the scan finds {more} more"
    )
    for k, (want, have) in sorted(fewer.items())[:40]:
        print(f"  fewer: {k}: CLI {want}, scan {have}")


if __name__ == "__main__":
    main()
