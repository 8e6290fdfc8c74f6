"""`facetrace scan`: fingerprint every file and face of a dump."""

from __future__ import annotations

import json
import sys
import time

import click

from cli.acquire import acquire_options
from cli.common import EXIT_CODES, terminal_lines, terminal_text, translate_errors, workspace_options

PROBLEMS_SHOWN = 20


@click.command("scan", epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@workspace_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per member on stdout (JSON Lines, see docs/scan-output.md); "
    "the summary goes to stderr.",
)
@click.option(
    "--engine",
    type=click.Choice(["onnx", "dlib"]),
    default=None,
    help="Face encoder: dlib's ResNet in ONNX Runtime (10x faster; the default), or face_recognition's "
    "own dlib call (the reference). Both give the same encodings within 1e-4. A workspace that "
    "pinned its own model (facetrace engine set) always scans with it.",
)
@click.option(
    "--detector",
    type=click.Choice(["hog", "cnn"]),
    default="hog",
    show_default=True,
    help="Face detector: HOG (fast, CPU) or dlib's CNN (more recall on odd poses, slow on CPU).",
)
@click.option(
    "--upsample",
    type=click.IntRange(0, 3),
    default=1,
    show_default=True,
    help="Times the detection image is upsampled (finds smaller faces, costs ~4x per step).",
)
@click.option(
    "--detect-max-side",
    type=click.IntRange(64, 20000),
    default=1024,
    show_default=True,
    help="Detect faces on a copy whose longer side is at most this many pixels; "
    "boxes are mapped back and encodings use the full image.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="Worker processes (0: one per CPU core; 1: no pool).",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Run each file's analysis on the Dask cluster whose scheduler is at ADDRESS "
    "(tcp://host:8786) instead of local worker processes; see docs/deployment.md.",
)
@click.option(
    "--max-image-pixels",
    type=click.IntRange(1),
    default=100_000_000,
    show_default=True,
    help="Refuse to decode larger images (decompression bombs).",
)
@click.option(
    "--max-archive-depth",
    type=click.IntRange(0, 32),
    default=4,
    show_default=True,
    help="Open archives nested at most this deep.",
)
@click.option(
    "--video-every",
    type=click.FloatRange(0.04, 3600),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Videos: sample one frame per this many seconds, plus every scene change.",
)
@click.option(
    "--video-scene-change",
    type=click.FloatRange(0, 255),
    default=30.0,
    show_default=True,
    help="Videos: mean grey-level change of a 32x18 thumbnail that counts as a scene change (0-255).",
)
@click.option(
    "--video-max-frames",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Videos: sample at most this many frames per video.",
)
@click.option(
    "--password",
    "passwords",
    multiple=True,
    metavar="PASSWORD",
    help="Try this password on encrypted zip (ZipCrypto) and 7z members (repeatable; never stored).",
)
@click.option(
    "--resume",
    "resume_id",
    metavar="SCAN_ID",
    help="Resume this interrupted scan (by default the latest unfinished scan of the same inputs "
    "with the same parameters is resumed).",
)
@click.option("--no-resume", is_flag=True, help="Always start a new scan, even if an unfinished one could resume.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@acquire_options
@translate_errors
def scan_command(
    paths,
    workspace,
    db_url,
    as_json,
    engine,
    detector,
    upsample,
    detect_max_side,
    workers,
    cluster,
    max_image_pixels,
    max_archive_depth,
    video_every,
    video_scene_change,
    video_max_frames,
    passwords,
    resume_id,
    no_resume,
    quiet,
    acquire_settings,
):
    """Scan files, folders, archives (zip, tar, 7z, nested) and videos: hash every file, find every face.

    Every member is accounted for: its path, size, SHA-256 and type; images get perceptual hashes
    and a box and 128-d encoding per face; videos (and animated GIFs) get sampled frames, each
    with a perceptual hash and its faces, grouped into people with the time ranges where they
    appear; unreadable files are listed with the reason. Results are stored in the workspace
    database.

    An http(s) URL among the inputs is acquired first, as by `facetrace acquire` (the download
    options below apply), and the stored file is scanned; its acquisition record is shown in
    every report of the scan. A failed download is not scanned: the other inputs are, and the
    command exits 5.

    \b
    Examples:
      facetrace scan ./dump/ ./bundle.zip
      facetrace scan https://files.example.org/kit.zip
      facetrace scan --json dump.tar.gz > members.jsonl
      facetrace --verbose scan --workspace case-42 --workers 2 /mnt/seized
      facetrace scan --db postgresql+psycopg://ft@db/cases --cluster tcp://scheduler:8786 /mnt/seized
    """
    from scanner.fingerprints.modelfile import workspace_options
    from scanner.models import ScanOptions
    from scanner.pipeline import start_workers, validate_options, workspace_root

    options = ScanOptions(
        engine=engine or "onnx",
        detector=detector,
        upsample=upsample,
        detect_max_side=detect_max_side,
        workers=workers,
        max_image_pixels=max_image_pixels,
        max_archive_depth=max_archive_depth,
        video_every_ms=round(video_every * 1000),
        video_scene_change=video_scene_change,
        video_max_frames=video_max_frames,
        passwords=tuple(passwords),
    )
    options = workspace_options(workspace_root(workspace), options, explicit_engine=engine is not None)
    # local workers start now and load their models while the workspace is opened (about 0.7 s
    # for a new one); scan() takes them over. A cluster is reached by scan() itself.
    validate_options(options)
    executor = None if cluster else start_workers(options, workspace=workspace_root(workspace))
    try:
        _scan(
            paths, workspace, db_url, as_json, cluster, options, quiet, acquire_settings, resume_id, no_resume, executor
        )
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)  # a no-op once scan() has shut it down


def _scan(paths, workspace, db_url, as_json, cluster, options, quiet, acquire_settings, resume_id, no_resume, executor):
    from cli.acquire import acquire_inputs
    from scanner.errors import AcquisitionError, NothingReadableError, UsageError
    from scanner.ingest import estimate_count
    from scanner.pipeline import (
        match_against_registry,
        new_scan_id,
        open_store,
        resumable_scan_id,
        scan,
        stored_records,
    )

    store, root = open_store(workspace, db_url)
    report = sys.stderr if as_json else sys.stdout
    paths, not_acquired = acquire_inputs(list(paths), store, root, acquire_settings, quiet, report)
    if not paths:
        if not_acquired:
            raise AcquisitionError("nothing to scan: no input could be acquired.")
        raise UsageError(
            "nothing to scan: the URLs served HTML pages only (pass --follow 1 to fetch the files they link to)."
        )
    resumed = resumable_scan_id(store, list(paths), options, resume_id or not no_resume)
    scan_id = resumed or new_scan_id()
    problems = []

    def collect(result):
        if result.status.value in ("unreadable", "skipped"):
            if len(problems) < PROBLEMS_SHOWN:
                problems.append(result)

    started = time.monotonic()
    with _progress(quiet, estimate_count(list(paths))) as progress:
        summary = scan(
            list(paths),
            store,
            options,
            on_result=collect,
            progress=progress,
            workspace=root,
            scan_id=scan_id,
            resume=resumed or False,
            cluster=cluster,
            executor=executor,
        )
    elapsed = time.monotonic() - started
    if as_json:  # read back from the store: each face's person is known only once all were seen
        for record in stored_records(store, summary.scan_id):
            sys.stdout.write(terminal_text(json.dumps(record, ensure_ascii=False)) + "\n")
    # the scan's webhook deliveries may reach the lab networks named for its downloads too
    findings = match_against_registry(
        store, root, summary.scan_id, lab_networks=tuple(acquire_settings.get("lab_networks") or ()) or None
    )
    _print_summary(report, summary, elapsed, problems)
    for rel in summary.relations:
        ev = rel["evidence"]
        if as_json:
            sys.stdout.write(
                terminal_text(
                    json.dumps({"scan_id": summary.scan_id, "relation": rel["kind"], **ev}, ensure_ascii=False)
                )
                + "\n"
            )
        report.write(
            terminal_text(
                f"Video copy: {ev['copy']} is a {rel['kind'].replace('_', ' ')} of "
                f"{ev['original']} ({ev['shared_frames']:.0%} of sampled frames shared)"
            )
            + "\n"
        )
    for rel in summary.lineage:
        ev = rel["evidence"]
        report.write(
            f"Lineage: this dump is {ev['description']} ({ev['share_of_a']:.0%} of its items are here; "
            f"{ev['share_of_b']:.0%} of this dump's come from it, {ev['near_copies']} as near copies; "
            f"{ev['people_shared']} people shared)\n"
        )
    if findings is not None:
        _print_findings(report, findings)
    counts = summary.counts
    if counts["files"] - counts["unreadable"] - counts["skipped"] <= 0 and not counts["bombs"]:
        # (an archive stopped as a possible decompression bomb was read: that is the result)
        raise NothingReadableError("nothing could be read from the inputs.")
    if not_acquired:
        raise AcquisitionError(
            f"{len(not_acquired)} input(s) not scanned: "
            + "; ".join(x if isinstance(x, str) else f"{x.requested_url}: {x.reason}" for x in not_acquired)
        )


def _print_summary(stream, summary, elapsed, problems) -> None:
    c = summary.counts
    lines = [
        f"Scan {summary.scan_id} finished in {elapsed:.1f} s"
        + (
            f" (resumed: {summary.resumed_members} members taken as stored, {summary.analysed} analysed now)"
            if summary.resumed_members
            else ""
        ),
        f"  workspace   {summary.workspace}",
        f"  files       {c['files']}  ({c['bytes']:,} bytes)",
        f"  archives    {c['archives']}",
        f"  images      {c['images']}",
        f"  faces       {c['faces']}  (in {c['images_with_faces']} images)",
        f"  people      {c.get('people', 0)}  (faces clustered; {c.get('background_faces', 0)} background faces aside)",
        *(
            [f"  known       {c['known_items']}  (members from known public datasets: `facetrace profile`)"]
            if c.get("known_items")
            else []
        ),
        f"  videos      {c.get('videos', 0)}  ({c.get('video_faces', 0)} faces of {c.get('video_people', 0)} people "
        f"in sampled frames; {c.get('animations', 0)} made from a single still)",
        f"  duplicates  {c['duplicates']}",
        f"  unreadable  {c['unreadable']}",
        f"  skipped     {c['skipped']}",
        *(
            [
                f"  bombs       {c['bombs']}  (members and archives stopped as possible decompression bombs: listed, "
                "not read further)"
            ]
            if c.get("bombs")
            else []
        ),
    ]
    if problems:
        lines.append("Unreadable or skipped:")
        lines += [f"  {r.member.logical_path}: {r.reason}" for r in problems]
        more = c["unreadable"] + c["skipped"] - len(problems)
        if more > 0:
            lines.append(f"  ... and {more} more (`facetrace scan --json` lists every member)")
    stream.write(terminal_lines(lines) + "\n")
    stream.flush()


def decision_context_line(ctx: dict) -> str:
    """What the same-person bands were decided under, in words (docs/matching.md)."""
    others = (
        f"{ctx['cohort_people']} other people to compare faces with ({ctx['registry_size'] - 1} enrolled, "
        f"{ctx['reference_people']} in the reference cohort)"
    )
    if not ctx.get("faces_decided", True):
        return (
            f"registry of {ctx['registry_size']}, policy {ctx.get('policy')}: this workspace's model has no "
            "calibrated policy, so its faces earn no same-person finding and only copies are found "
            "(run facetrace calibrate FOLDER: docs/engines.md)"
        )
    if not ctx["normalised"]:
        return (
            f"registry of {ctx['registry_size']}, {others}: too few to tell how crowded a face's "
            f"neighbourhood is, so only faces within 0.25 count above possible (see facetrace calibrate)"
        )
    margins = ", ".join(
        f"{band} margin {m}" if m is not None else f"no {band} at this size"
        for band, m in (("probable", ctx["probable_margin"]), ("group", ctx["group_margin"]))
    )
    policy = f"; policy {ctx['policy']}" if "+scale-" in (ctx.get("policy") or "") else ""
    return f"registry of {ctx['registry_size']}, {others}: {margins} ({ctx['fmr_table']} false-match rates{policy})"


def _print_findings(stream, findings) -> None:
    from cli.match import format_finding

    subjects = sorted({f["subject_id"] for f in findings})
    stream.write(f"Registry: {len(findings)} finding(s) concerning {len(subjects)} enrolled subject(s)\n")
    context = next((f["evidence"]["decided_under"] for f in findings if "decided_under" in f["evidence"]), None)
    if context:
        stream.write("  " + decision_context_line(context) + "\n")
    order = {"confident": 0, "probable": 1, "possible": 2}
    for f in sorted(findings, key=lambda f: (order[f["band"]], f["subject_id"], f["member_seq"]))[:PROBLEMS_SHOWN]:
        stream.write(terminal_text(format_finding(f)) + "\n")
    if len(findings) > PROBLEMS_SHOWN:
        stream.write(f"  ... and {len(findings) - PROBLEMS_SHOWN} more (`facetrace registry show SUBJECT_ID`)\n")
    stream.flush()


class _progress:
    """A rich progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, quiet: bool, total: int | None):
        self.quiet = quiet
        self.total = total
        self.bar = None

    def __enter__(self):
        from rich.console import Console

        console = Console(stderr=True)
        if self.quiet or not console.is_terminal:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[faces]} faces"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("scan", total=self.total, faces=0)
        return self.update

    def update(self, counts, _result) -> None:
        total = self.total if self.total is None or counts.files <= self.total else counts.files
        self.bar.update(self.task, completed=counts.files, total=total, faces=counts.faces)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
