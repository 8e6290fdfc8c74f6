"""Use cases that compose the stages: `scan`, matching a stored scan against the registry
(`match_against_registry`), and pinning the workspace's face model (`pin_model`, `unpin_model`).

scan: inputs -> ingest (stream, SHA-256, type) -> dedupe by SHA-256 -> worker pool (decode, hashes,
faces; images in batches whose faces share one network call) -> results in read order -> case
store (batched transactions) and the caller's callback.

Memory stays bounded whatever the dump's size: at most `in_flight` members, and at most
MAX_HELD_BYTES of their bytes, are held at a time, and only a bounded cache of analyses is kept
for duplicates (older ones are read back from the store).
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import socket
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scanner import __version__
from scanner.errors import FacetraceError, InputNotFoundError, UsageError, WorkspaceError
from scanner.ingest import MemberReader, ReadMember
from scanner.models import (
    Analysis,
    EngineInfo,
    Face,
    FaceBox,
    ImageFingerprint,
    Kind,
    Member,
    MemberResult,
    ScanCounts,
    ScanOptions,
    ScanSummary,
    Status,
    VideoFingerprint,
)

log = logging.getLogger(__name__)

FLUSH_EVERY_MEMBERS = 200
FLUSH_EVERY_SECONDS = 2.0
ANALYSIS_CACHE = 2048
MAX_CRASHES_PER_MEMBER = 2  # a member that kills its worker twice is recorded as unreadable
MAX_POOL_FAILURES = 5  # pools dying in a row with no file analysed: the workers cannot start at all
# Members read ahead of the one being emitted: enough for every local worker to have a batch of
# images (workers.BATCH_PHOTOS) running and the next queued while another is collected; a
# cluster's workers take one member per task. MAX_HELD_BYTES bounds their bytes, whatever their size.
IN_FLIGHT_PER_WORKER = 16
IN_FLIGHT_PER_CLUSTER_WORKER = 4
MAX_HELD_BYTES = 256 << 20

ResultCallback = Callable[[MemberResult], None]
ProgressCallback = Callable[[ScanCounts, MemberResult], None]


def engine_info(options: ScanOptions) -> EngineInfo:
    """Describe the engine a scan with these options uses (versions and model checksums)."""
    from scanner.fingerprints.faces import embedder_of, engine_runtime, engine_versions, model_file_checksums
    from scanner.fingerprints.perceptual import NAME as HASHER
    from scanner.fingerprints.perceptual import hasher_version

    versions = engine_versions()
    embedder, embedder_version = embedder_of(options)
    files = model_file_checksums()
    if options.engine == "model" and options.model is not None:
        # the operator's network replaces dlib's ResNet; dlib's landmark models still align the crop
        files = {k: v for k, v in files.items() if k != "dlib_face_recognition_resnet_model_v1.dat"}
        files[os.path.basename(options.model.path)] = options.model.sha256
    return EngineInfo(
        embedder=embedder,
        embedder_version=embedder_version,
        hasher=HASHER,
        hasher_version=hasher_version(),
        runtime=engine_runtime(options.engine, options.model),
        versions={"facetrace": __version__, **versions},
        model_files=files,
    )


def new_scan_id() -> str:
    """Return a fresh random scan id (32 hex digits)."""
    return uuid.uuid4().hex


def open_store(workspace: str | None = None, db_url: str | None = None):
    """Open (creating if needed) a workspace's case store; return (store, workspace root)."""
    from indexes.store.cases import CaseStore
    from indexes.store.workspace import Workspace, WorkspaceUnavailable

    ws = Workspace(workspace, db_url)
    try:
        return CaseStore(ws.ensure().db_url), str(ws.root)
    except WorkspaceUnavailable as exc:
        free = _free_bytes(ws.root)
        if free is not None and free < LOW_DISK_BYTES:
            raise WorkspaceError(
                f"{exc}. The disk holding {ws.root} is full ({free:,} bytes free): free some space "
                "or use a workspace on another disk (--workspace)."
            ) from None
        raise WorkspaceError(
            f"{exc}. Check --workspace / --db (or FACETRACE_HOME) and the folder's permissions."
        ) from None


LOW_DISK_BYTES = 1 << 20  # below this much free space, a database that cannot open is on a full disk


def _free_bytes(path) -> int | None:
    """Free bytes on the file system of `path` (or of its nearest existing parent); None if unknown."""
    import shutil
    from pathlib import Path

    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def validate_options(options: ScanOptions) -> None:
    from scanner.fingerprints.faces import ENGINES

    if options.engine not in ENGINES:
        raise UsageError(f"unknown engine {options.engine!r}: use {' or '.join(repr(e) for e in ENGINES)}")
    if options.engine == "model" and options.model is None:
        raise UsageError("engine 'model' needs the workspace's pinned model (facetrace engine set MODEL.onnx)")
    if options.engine == "model":  # its file must still be the pinned one before any worker loads it
        from scanner.fingerprints.modelfile import verified

        verified(options.model)
    if options.detector not in ("hog", "cnn"):
        raise UsageError(f"unknown detector {options.detector!r}: use 'hog' or 'cnn'")
    if options.upsample < 0 or options.upsample > 3:
        raise UsageError("upsample must be between 0 and 3")
    if options.detect_max_side < 64:
        raise UsageError("detect_max_side must be at least 64 pixels")


@dataclass
class _Slot:
    """One member waiting for its turn to be emitted, in read order."""

    read: ReadMember
    future: Any = None  # Future[Analysis] for the first copy of an image
    duplicate_of: str | None = None  # logical path of the first member with the same bytes
    data: bytes | None = None  # kept until the analysis is back, to resubmit after a worker crash
    path: str | None = None  # a video on disk: analysed from its file
    video: bool = False
    crashes: int = 0
    alone: bool = False  # was in a batch whose worker died: analysed again in a task of its own
    submitted: bool = False
    analysis: Analysis | None = None
    result: MemberResult | None = None


@dataclass
class _Dedup:
    first_path: dict[str, str] = field(default_factory=dict)  # sha256 -> logical path of first copy
    cache: OrderedDict = field(default_factory=OrderedDict)  # sha256 -> Analysis (LRU)

    def remember(self, sha: str, analysis: Analysis) -> None:
        self.cache[sha] = analysis
        self.cache.move_to_end(sha)
        while len(self.cache) > ANALYSIS_CACHE:
            self.cache.popitem(last=False)


def scan(
    inputs: list[str],
    store,
    options: ScanOptions = ScanOptions(),
    *,
    on_result: ResultCallback | None = None,
    progress: ProgressCallback | None = None,
    workspace: str = "",
    scan_id: str | None = None,
    resume: str | bool = False,
    lineage: bool = True,
    cluster: str | None = None,
    executor=None,
) -> ScanSummary:
    """Scan files, folders and archives; store and return what was found in every member.

    `resume`: True resumes the latest unfinished scan of the same inputs with the same parameters
    if there is one whose process is gone (else starts a new scan); a scan id resumes that scan.
    A resumed scan re-reads the inputs but takes every member stored before the interruption as
    it is, analysing only the rest. `lineage=False` skips the comparison with every earlier scan
    (the HTTP service's screens: one upload is not a dump whose lineage matters). `cluster`: the
    address of a Dask scheduler; each member's analysis then runs on that cluster's workers
    instead of local processes, and everything else stays in this process (docs/deployment.md).
    `executor`: local workers already started by `start_workers` (the CLI starts them before it
    opens the workspace, so that their start-up overlaps it); the scan takes it over and shuts it
    down, as it does its own.
    """
    if workspace:  # the workspace's pinned model, if it has one (a no-op for options already resolved)
        from scanner.fingerprints.modelfile import workspace_options

        options = workspace_options(workspace, options)
    validate_options(options)
    if not inputs:
        raise UsageError("nothing to scan: give at least one file, folder or archive")
    missing = [p for p in inputs if not os.path.lexists(p)]
    if missing and len(missing) == len(inputs):
        raise InputNotFoundError(f"no such file or folder: {', '.join(missing)}")
    # The workers start now: local ones load their models while this process records the scan;
    # a cluster is reached (and its workers' versions checked) before anything is recorded.
    if executor is None:
        executor = start_workers(options, cluster, workspace)
    try:
        info = engine_info(options)
        input_records = [_input_record(p) for p in inputs]
        previous = _resumable(store, input_records, options, info, resume) if resume else None
        if previous is not None:
            scan_id = previous["id"]
            started = datetime.fromisoformat(previous["started_at"])
            store.reopen_scan(scan_id, _host(options, cluster))
        else:
            scan_id = scan_id or new_scan_id()
            started = datetime.now(UTC)
            try:
                store.create_scan(
                    scan_id,
                    started,
                    __version__,
                    info.as_record(),
                    options.as_record(),
                    _host(options, cluster),
                    input_records,
                )
            except Exception as exc:
                raise WorkspaceError(f"cannot record the scan in the workspace database: {exc}") from exc
        run = _ScanRun(
            scan_id,
            store,
            options,
            info,
            on_result,
            progress,
            input_records,
            stored=_prefix(store, scan_id) if previous is not None else None,
            cluster=cluster,
            executor=executor,
        )
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    status = "interrupted"
    relations: list[dict] = []
    compare_lineage, lineage = lineage, []
    try:
        run.execute(inputs)
        relations = run.relate()
        run.find_people()
        run.mark_known()
        lineage = run.relate_to_earlier() if compare_lineage else []
        status = "finished"
    finally:
        run.flush()
        store.finish_scan(scan_id, datetime.now(UTC), status, run.counts.as_record(), input_hashes=run.input_hashes)
    finished = datetime.now(UTC)
    return ScanSummary(
        scan_id,
        started.isoformat(),
        finished.isoformat(),
        run.counts.as_record(),
        workspace,
        tuple(relations),
        run.resumed,
        run.analysed,
        tuple(lineage),
    )


def workspace_root(explicit: str | None = None) -> str:
    """The workspace folder `open_store(explicit)` opens: the explicit one, else $FACETRACE_HOME,
    else ./facetrace-workspace (it need not exist yet)."""
    from indexes.store.workspace import resolve_root

    return str(resolve_root(explicit))


def start_workers(options: ScanOptions, cluster: str | None = None, workspace: str = ""):
    """The executor a scan with these options analyses its members on: `options.workers` local
    processes (0: one per CPU core), each loading its models at once, or the Dask cluster at
    `cluster`. `workspace`: where a read-only installation's compiled detector goes (set before
    the workers start: they inherit it)."""
    from scanner.workers import make_executor

    if workspace:
        from scanner.fingerprints.faces import compiled_code_cache

        compiled_code_cache(workspace)
    return make_executor(options, options.workers or os.cpu_count() or 1, cluster)


def resumable_scan_id(store, inputs: list[str], options: ScanOptions, resume: str | bool) -> str | None:
    """The id of the scan that `scan(..., resume=resume)` would resume, or None for a new scan."""
    if not resume:
        return None
    found = _resumable(store, [_input_record(p) for p in inputs], options, engine_info(options), resume)
    return None if found is None else found["id"]


def _prefix(store, scan_id: str):
    """The members an interrupted run stored (always a prefix in seq order: rows are flushed in order)."""
    return itertools.islice(store.iter_members(scan_id), store.count_members(scan_id))


def _resumable(
    store, input_records: list[dict], options: ScanOptions, info: EngineInfo, resume: str | bool
) -> dict | None:
    """Return the unfinished scan to resume, or None to start a new one."""
    same_inputs = [r["abspath"] for r in input_records]
    for scan in store.unfinished_scans():
        if resume is not True and scan["id"] != resume:
            continue
        why = None
        if [i["abspath"] for i in scan["inputs"]] != same_inputs:
            why = "its inputs were other paths"
        elif scan["parameters"] != options.as_record() or scan["engine"] != info.as_record():
            why = "it ran with other parameters or another engine version"
        elif _still_running(scan):
            why = f"it is still running (process {scan['host'].get('pid')})"
        if why is None:
            return scan
        if resume is not True:
            raise UsageError(f"cannot resume scan {resume}: {why}")
    if resume is not True:
        raise UsageError(f"no unfinished scan {resume!r} in this workspace")
    return None


def _still_running(scan: dict) -> bool:
    host = scan.get("host") or {}
    if scan["status"] != "running" or host.get("hostname") != socket.gethostname() or not host.get("pid"):
        # another machine's scan: only its own status says it stopped
        return scan["status"] == "running" and host.get("hostname") != socket.gethostname()
    try:
        os.kill(int(host["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ScanRun:
    def __init__(
        self,
        scan_id,
        store,
        options,
        info,
        on_result,
        progress,
        input_records,
        stored=None,
        cluster=None,
        executor=None,
    ):
        self.scan_id = scan_id
        self.store = store
        self.options = options
        self.info = info
        self.on_result = on_result
        self.progress = progress
        self.counts = ScanCounts()
        self.dedup = _Dedup()
        self.pending_rows: list[dict] = []
        self.last_flush = time.monotonic()
        self.workers = options.workers or os.cpu_count() or 1
        self.in_flight = IN_FLIGHT_PER_WORKER * self.workers
        self.held_bytes = 0  # bytes of the members in flight (kept to resubmit after a crash)
        self.input_paths = {rec["path"]: i for i, rec in enumerate(input_records)}
        self.input_hashes: dict[int, str] = {}
        self.pool_failures = 0
        self.videos: list[tuple] = []  # ((seq, path), sampled frames, pixels) of the analysed videos
        self.stored = stored  # members stored by the interrupted run being resumed, in seq order
        self.resumed = 0
        self.analysed = 0
        self.emitted = 0
        self.cluster = cluster
        self.executor = executor  # started by scan() (or the CLI): local workers or a cluster

    def execute(self, inputs: list[str]) -> None:
        from concurrent.futures.process import BrokenProcessPool

        from scanner.workers import analyse

        self._analyse = analyse
        if self.cluster:
            self.in_flight = IN_FLIGHT_PER_CLUSTER_WORKER * self.executor.workers()
        pending: deque[_Slot] = deque()
        try:
            for read in MemberReader(self.options).read(inputs):
                row = self._stored_row(read.member)
                if row is not None:
                    self._replay(read, row)
                    continue
                pending.append(self._slot(read))
                while pending and (
                    len(pending) > self.in_flight or self.held_bytes > MAX_HELD_BYTES or _ready(pending[0])
                ):
                    self._emit(pending.popleft(), pending, BrokenProcessPool)
            while pending:
                self._emit(pending.popleft(), pending, BrokenProcessPool)
            # every member is in: the workers exit while this process clusters and profiles
            # (waiting for them took up to 0.4 s of the serial tail)
            self.executor.shutdown(wait=False)
        except BaseException:
            self.executor.shutdown(wait=True, cancel_futures=True)
            raise

    def _stored_row(self, m) -> dict | None:
        """The row the interrupted run stored for this member, or None past the stored prefix."""
        if self.stored is None:
            return None
        row = next(self.stored, None)
        if row is None:
            self.stored = None
            return None
        if (
            row["seq"] != m.seq
            or row["logical_path"] != m.logical_path
            or (row["sha256"] is not None and m.sha256 is not None and row["sha256"] != m.sha256)
        ):
            raise FacetraceError(
                f"cannot resume: member {m.seq} is now {m.logical_path} (SHA-256 {m.sha256}), but the interrupted "
                f"scan stored {row['logical_path']} (SHA-256 {row['sha256']}); the inputs changed. "
                "Start a new scan with --no-resume."
            )
        return row

    def _replay(self, read: ReadMember, row: dict) -> None:
        """Account for a member the interrupted run already stored, without analysing it again."""
        m = read.member
        read.data = None
        if m.sha256 is not None and read.status in (None, Status.OK) and row["duplicate_of"] is None:
            self.dedup.first_path.setdefault(m.sha256, m.logical_path)  # as _slot did in the first run
        if row["duplicate_of"] is not None:
            analysis = self._analysis_for(m.sha256, m.kind)
        else:
            analysis = _analysis_from_row(row)
        result = MemberResult(
            m,
            Status(row["status"]),
            row["reason"],
            row["duplicate_of"],
            analysis.image if analysis else None,
            analysis.faces if analysis else (),
            analysis.video if analysis else None,
        )
        if result.video is not None and result.status is Status.OK:
            self.videos.append(
                ((m.seq, m.logical_path), result.video.samples, result.video.width * result.video.height)
            )
        self.resumed += 1
        self.counts.add(result)
        self._record_input_hash(result)
        if self.on_result is not None:
            self.on_result(result)
        if self.progress is not None:
            self.progress(self.counts, result)

    def _slot(self, read: ReadMember) -> _Slot:
        m = read.member
        if m.sha256 is not None and read.status in (None, Status.OK):
            first = self.dedup.first_path.get(m.sha256)
            if first is not None:
                return _Slot(read, duplicate_of=first)
            self.dedup.first_path[m.sha256] = m.logical_path
        if read.status is None:  # an image or a video to analyse
            slot = _Slot(read, data=read.data, path=read.path, video=m.kind is Kind.VIDEO)
            read.data = None
            self.held_bytes += len(slot.data or b"")
            slot.future = self._submit(slot)
            return slot
        return _Slot(read)

    def _emit(self, slot: _Slot, pending: deque, broken_exc) -> None:
        result = self._resolve(slot, pending, broken_exc)
        if not self.emitted:  # the workers are up: import what the last steps need meanwhile
            import threading

            threading.Thread(target=_import_later_steps, name="facetrace-imports", daemon=True).start()
        self.emitted += 1
        if result.video is not None and result.status is Status.OK:
            self.videos.append(
                (
                    (result.member.seq, result.member.logical_path),
                    result.video.samples,
                    result.video.width * result.video.height,
                )
            )
        self.counts.add(result)
        self._record_input_hash(result)
        self.pending_rows.append(_row(result, self.info, self.options))
        if len(self.pending_rows) >= FLUSH_EVERY_MEMBERS or time.monotonic() - self.last_flush > FLUSH_EVERY_SECONDS:
            self.flush()
        if self.on_result is not None:
            self.on_result(result)
        if self.progress is not None:
            self.progress(self.counts, result)

    def _resolve(self, slot: _Slot, pending: deque, broken_exc) -> MemberResult:
        read = slot.read
        m = read.member
        if slot.future is not None:
            analysis = self._wait(slot, pending, broken_exc)
            self.held_bytes -= len(slot.data or b"")
            slot.data = None
            self.dedup.remember(m.sha256, analysis)
            if analysis.error is not None:
                return MemberResult(m, Status.UNREADABLE, _join(read.note, analysis.error), image=analysis.image)
            return MemberResult(
                m,
                Status.OK,
                _join(read.note, analysis.video.note if analysis.video else None),
                image=analysis.image,
                faces=analysis.faces,
                video=analysis.video,
            )
        first_path = slot.duplicate_of
        if first_path is not None:
            analysis = self._analysis_for(m.sha256, m.kind)
            return MemberResult(
                m,
                Status.DUPLICATE,
                _join(read.note, f"same bytes as {first_path}"),
                duplicate_of=first_path,
                image=analysis.image if analysis else None,
                faces=analysis.faces if analysis else (),
                video=analysis.video if analysis else None,
            )
        return MemberResult(m, read.status or Status.OK, read.reason)

    def _wait(self, slot: _Slot, pending: deque, broken_exc) -> Analysis:
        from scanner.workers import BrokenBatch, internal_error

        while True:
            try:
                if not slot.future.done() and hasattr(self.executor, "flush"):
                    self.executor.flush()  # its batch may still be collecting
                analysis = slot.future.result()
                self.pool_failures = 0
                return analysis
            except BrokenBatch as exc:
                # a worker died under several images: none is charged, each goes again alone
                self.pool_failures += 1
                self._check_pool_failures()
                log.warning(
                    "a worker process died while analysing %d images, %s among them; each is analysed again on its own",
                    exc.size,
                    slot.read.member.logical_path,
                )
                self._restart_pool(slot, pending)
            except broken_exc:
                slot.crashes += 1
                self.pool_failures += 1
                self._check_pool_failures()
                log.warning("a worker process died while analysing %s", slot.read.member.logical_path)
                self._restart_pool(slot, pending)
                if slot.crashes >= MAX_CRASHES_PER_MEMBER:
                    return Analysis(error="the analysis process crashed on this file twice: not analysed")
            except Exception as exc:
                if type(exc).__name__ == "KilledWorker":  # Dask: the task took down several workers
                    return Analysis(error="the analysis crashed the cluster's workers on this file: not analysed")
                log.exception("analysis failed for %s", slot.read.member.logical_path)
                return internal_error(exc)

    def _check_pool_failures(self) -> None:
        if self.pool_failures >= MAX_POOL_FAILURES:
            raise FacetraceError(
                f"worker processes died {self.pool_failures} times in a row without analysing a file; "
                "run with --workers 1 and -v to see why (a script that starts scans needs an "
                "`if __name__ == '__main__':` guard)"
            ) from None

    def _restart_pool(self, culprit: _Slot, pending: deque) -> None:
        from scanner.workers import BrokenBatch

        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = start_workers(self.options, self.cluster)
        # Every task of the dead pool is lost; resubmit them. Only `culprit` is charged the crash
        # (none is when it died under a batch: its members go again one per task).
        for s in [culprit, *pending]:
            if (
                s.future is not None
                and (s.data is not None or s.path is not None)
                and (s is culprit or not _done_ok(s.future))
            ):
                if s is culprit and s.crashes >= MAX_CRASHES_PER_MEMBER:
                    continue
                if s.future.done() and not s.future.cancelled() and isinstance(s.future.exception(), BrokenBatch):
                    s.alone = True
                s.future = self._submit(s)

    def _submit(self, slot: _Slot):
        if not slot.submitted:  # counted once, however often a crash makes it go again
            self.analysed += 1
            slot.submitted = True
        if slot.crashes or slot.alone:
            return self.executor.submit(self._analyse, slot.data, slot.path, slot.video, alone=True)
        return self.executor.submit(self._analyse, slot.data, slot.path, slot.video)

    def _analysis_for(self, sha: str, kind: Kind) -> Analysis | None:
        if kind not in (Kind.IMAGE, Kind.VIDEO):
            return None
        cached = self.dedup.cache.get(sha)
        if cached is not None:
            return cached
        self.flush()
        row = self.store.analysis_by_sha(self.scan_id, sha)
        if row is None or (row["image"] is None and row["video"] is None):
            return None
        analysis = _analysis_from_row(row)
        self.dedup.remember(sha, analysis)
        return analysis

    def _record_input_hash(self, result: MemberResult) -> None:
        idx = self.input_paths.get(result.member.logical_path)
        if idx is not None and result.member.sha256:
            self.input_hashes[idx] = result.member.sha256

    def relate(self) -> list[dict]:
        """Find the videos of this scan that are copies of each other; store and return the pairs."""
        from scanner.fingerprints.video import find_video_copies

        pairs = find_video_copies(self.videos)
        self.videos = []
        rows = [
            {
                "kind": p["relation"],
                "seq_a": p["original"][0],
                "seq_b": p["copy"][0],
                "evidence": {
                    "original": p["original"][1],
                    "copy": p["copy"][1],
                    **{k: v for k, v in p.items() if k not in ("original", "copy")},
                },
            }
            for p in pairs
        ]
        self.flush()
        self.store.add_relations(self.scan_id, rows)
        return rows

    def find_people(self) -> None:
        """Cluster every face of the scan into people (docs/profile.md); store each face's person."""
        from scanner.profile.people import assign_people

        self.flush()
        assignments, summary = assign_people(list(self.store.iter_faces(self.scan_id)))
        self.store.set_people(assignments)  # also on a resumed scan: clusters need every face
        self.counts.people = summary["people"]
        self.counts.background_faces = summary["background_faces"]
        self.counts.people_range = tuple(summary["people_range"])

    def mark_known(self) -> None:
        """Mark the members that come from a known public dataset (docs/profile.md)."""
        from scanner.profile.datasets import mark_known

        self.counts.known_items = mark_known(self.store, self.scan_id)

    def relate_to_earlier(self) -> list[dict]:
        """Compare this dump with every earlier scan of the workspace (docs/profile.md "Lineage")."""
        from scanner.profile.lineage import relate_to_earlier

        return relate_to_earlier(self.store, self.scan_id)

    def flush(self) -> None:
        if self.pending_rows:
            self.store.add_members(self.scan_id, self.pending_rows)
            self.pending_rows = []
        self.last_flush = time.monotonic()


def stored_records(store, scan_id: str) -> Iterator[dict]:
    """The scan's members as `--json` records (docs/scan-output.md), read back from the store.

    Unlike records made during the scan, these carry each face's person (cluster), known only
    once every face has been seen.
    """
    firsts: OrderedDict = OrderedDict()
    for row in store.iter_members(scan_id):
        src = row
        if row["duplicate_of"] is not None and row["sha256"]:
            src = firsts.get(row["sha256"]) or store.analysis_by_sha(scan_id, row["sha256"]) or row
        elif row["sha256"] and (row["image"] or row["video"]):
            firsts[row["sha256"]] = row
            while len(firsts) > ANALYSIS_CACHE:
                firsts.popitem(last=False)
        analysis = _analysis_from_row(src)
        member = Member(
            row["seq"],
            row["logical_path"],
            row["relpath"],
            row["size"],
            row["sha256"],
            row["mime"],
            Kind(row["kind"]),
            row["raw_name"],
            row["hint"],
        )
        result = MemberResult(
            member,
            Status(row["status"]),
            row["reason"],
            row["duplicate_of"],
            analysis.image if analysis else None,
            analysis.faces if analysis else (),
            analysis.video if analysis else None,
        )
        record = result.to_json(scan_id)
        record["known_source"] = row["known_source"]
        for face, stored in zip(record["faces"], src["faces"], strict=False):
            face["person"] = stored["person"]
            face["background"] = bool(stored["background"])
        yield record


def _analysis_from_row(row: dict) -> Analysis | None:
    """Rebuild what a stored member's analysis found (image, faces, video), or None if it has none."""
    if row["image"] is None and row["video"] is None:
        return None
    img = row["image"]
    return Analysis(
        image=None
        if img is None
        else ImageFingerprint(
            img["width"],
            img["height"],
            img["format"],
            img["orientation"],
            img["phash"],
            img["dhash"],
            img.get("capture"),
        ),
        faces=tuple(
            Face(FaceBox(f["top"], f["right"], f["bottom"], f["left"]), tuple(f["encoding"]), f["frame_ms"], f["track"])
            for f in row["faces"]
        ),
        video=None if row["video"] is None else VideoFingerprint.from_record(row["video"]),
    )


def _join(*parts: str | None) -> str | None:
    return "; ".join(p for p in parts if p) or None


def _import_later_steps() -> None:
    """Import what the steps after the last member use (SciPy's clustering alone takes about
    0.3 s) while the workers analyse, from the first result on (at start-up it would slow the
    workers loading their models): after the last member only this process works, and the other
    cores would wait for the import."""
    try:
        import scipy.cluster.hierarchy  # noqa: F401

        import scanner.fingerprints.video
        import scanner.profile.datasets
        import scanner.profile.lineage
        import scanner.profile.people  # noqa: F401
    except Exception:
        log.debug("importing the later steps' modules failed", exc_info=True)


def _ready(slot: _Slot) -> bool:
    # A duplicate is always behind its first copy in the queue, so it is ready once at the head.
    return slot.future is None or slot.future.done()


def _done_ok(fut) -> bool:
    return fut.done() and not fut.cancelled() and fut.exception() is None


def _row(result: MemberResult, info: EngineInfo, options: ScanOptions) -> dict:
    m = result.member
    row = {
        "seq": m.seq,
        "logical_path": m.logical_path,
        "relpath": m.relpath,
        "size": m.size,
        "sha256": m.sha256,
        "mime": m.mime,
        "kind": m.kind.value,
        "status": result.status.value,
        "reason": result.reason,
        "duplicate_of": result.duplicate_of,
        "raw_name": m.raw_name,
        "hint": m.hint,
    }
    # A duplicate's fingerprint is stored once, on its first copy.
    if result.status is not Status.DUPLICATE and (result.image is not None or result.video is not None):
        img = result.image
        if img is not None:
            row["image"] = {
                "width": img.width,
                "height": img.height,
                "format": img.format,
                "orientation": img.orientation,
                "phash": img.phash,
                "dhash": img.dhash,
                "hasher": info.hasher,
                "hasher_version": info.hasher_version,
                "capture": img.capture,
            }
        if result.video is not None:
            row["video"] = result.video.as_record()
        row["faces"] = [
            {
                "top": f.box.top,
                "right": f.box.right,
                "bottom": f.box.bottom,
                "left": f.box.left,
                "encoding": f.encoding,
                "embedder": info.embedder,
                "embedder_version": info.embedder_version,
                "detector": options.detector,
                "frame_ms": f.frame_ms,
                "track": f.track,
            }
            for f in result.faces
        ]
    return row


def _input_record(path: str) -> dict:
    abspath = os.path.abspath(path)
    if os.path.isdir(path):
        kind, size = "folder", None
    elif os.path.isfile(path):
        kind, size = "file", os.path.getsize(path)
    else:
        kind, size = "missing", None
    from scanner.ingest.entries import clean_text

    # a path given in bytes that are not UTF-8 is recorded decoded for display (entries.display_name)
    return {"path": clean_text(path), "abspath": clean_text(abspath), "kind": kind, "size": size, "sha256": None}


def _host(options: ScanOptions, cluster: str | None = None) -> dict:
    host = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "workers": options.workers or os.cpu_count() or 1,
    }
    if cluster:
        host["cluster"] = cluster  # the analyses ran on this Dask scheduler's workers
    return host


def match_against_registry(
    store, workspace: str, scan_id: str, actor: str | None = None, lab_networks: tuple[str, ...] | None = None
) -> list[dict] | None:
    """Match a stored scan against the workspace's registry; None when the registry is empty."""
    from indexes.store.subjects import RegistryStore
    from scanner.matching.matcher import match_scan
    from scanner.registry import default_actor, open_registry

    if RegistryStore(store.engine).count_active_subjects() == 0:
        return None
    registry = open_registry(store, workspace)
    findings = match_scan(registry, store, scan_id, actor or default_actor())
    notify_subjects(registry, store, findings, scan_id, lab_networks)
    return findings


def notify_subjects(
    registry, store, findings: list[dict], scan_id: str | None, lab_networks: tuple[str, ...] | None = None
) -> int:
    """Deliver a signed notification to each found subject that registered a webhook (docs/api.md).

    Only verified subjects are told as a scan finds them; an unverified one's webhook gets the
    delayed counts of scanner.disclosure instead.
    """
    from indexes.store.keys import ServiceStore
    from scanner.notify import deliver, subject_notifications

    hooks = ServiceStore(store.engine)
    sent = 0
    for sid, payload in subject_notifications(registry.store, findings, scan_id):
        hook = hooks.webhook("subject", sid)
        if hook is None:
            continue
        sent += deliver(
            hook["url"],
            payload,
            hook["secret"],
            lambda action, details, sid=sid: registry.store.audit(action, "facetrace-scan", sid, details),
            f"subject:{sid}",
            lab_networks=lab_networks,
        )
    return sent


# -- the workspace's face model ------------------------------------------------------------------


def pin_model(store, root: str, path: str, actor: str, **spec):
    """Pin an operator's ONNX model in an empty workspace (docs/engines.md); audited. Returns the ModelSpec."""
    from indexes.store.subjects import RegistryStore
    from scanner.fingerprints import modelfile

    _require_no_encodings(store, "pin a model")
    pinned = modelfile.pin(root, path, **spec)
    RegistryStore(store.engine, root).audit(
        "engine_set",
        actor,
        None,
        {
            "embedder": pinned.embedder,
            "model_sha256": pinned.sha256,
            "model_path": pinned.path,
            "alignment": pinned.alignment,
            "size": pinned.size,
            "dim": pinned.dim,
        },
    )
    return pinned


def unpin_model(store, root: str, actor: str):
    """Go back to the built-in engine in an empty workspace; audited. Returns the model unpinned, or None."""
    from indexes.store.subjects import RegistryStore
    from scanner.fingerprints import modelfile

    if modelfile.pinned(root) is None:
        return None
    _require_no_encodings(store, "change its engine")
    spec = modelfile.unpin(root)
    if spec is not None:
        RegistryStore(store.engine, root).audit(
            "engine_reset", actor, None, {"embedder": spec.embedder, "model_sha256": spec.sha256}
        )
    return spec


def _require_no_encodings(store, what: str) -> None:
    from indexes.store.subjects import RegistryStore

    templates = RegistryStore(store.engine).count_templates()
    scans = len(store.list_scans())
    if templates or scans:
        raise UsageError(
            f"this workspace holds {templates} enrolled template(s) and {scans} scan(s) made by its "
            f"current engine: it cannot {what} (encodings of two models are not comparable). Use a new "
            "workspace (--workspace)"
        )
