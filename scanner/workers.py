"""Per-member analysis: decode, perceptual hashes, faces. Runs in worker processes.

Each worker loads the face models once (on first use) and then analyses one member's bytes per
call (`analyse`), or a batch of images whose faces go through the network together
(`analyse_many`, which `BatchingExecutor` sends). Everything that can go wrong with one file
comes back as `Analysis.error`, never as an exception, so a hostile file costs one record and
not the scan.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from scanner.models import Analysis, ImageFingerprint, ScanOptions

_engine = None
_options: ScanOptions | None = None

# One thread per worker process: parallelism comes from processes, and BLAS threads on top of
# them would oversubscribe the cores.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def init_worker(options: ScanOptions) -> None:
    """Prepare a worker process (or the main one, for a single-worker scan)."""
    global _options, _engine
    for key, value in THREAD_ENV.items():
        os.environ.setdefault(key, value)
    _options = options
    _engine = None


def _get_engine():
    global _engine
    if _engine is None:
        from scanner.fingerprints.faces import make_engine

        _engine = make_engine(_options)
    return _engine


def analyse(data: bytes | None, path: str | None = None, video: bool = False) -> Analysis:
    """Return the fingerprint of one member: an image's bytes, or a video's bytes or file path."""
    if video:
        return analyse_video(data if data is not None else path)
    first = _still(data)
    if isinstance(first, Analysis):
        return first
    fingerprint, image = first
    try:
        faces = tuple(_get_engine().faces(image))
    except DETECTION_ERRORS as exc:
        return Analysis(image=fingerprint, error=f"face detection failed: {exc}")
    return Analysis(image=fingerprint, faces=faces)


DETECTION_ERRORS = (RuntimeError, ValueError, MemoryError)  # dlib raises RuntimeError on odd inputs


def _still(data: bytes):
    """Decode and hash an image: (fingerprint, upright PIL image) for a still image to look for
    faces in, or the whole Analysis of one that cannot be decoded or is animated."""
    from scanner.fingerprints.perceptual import perceptual_hashes
    from scanner.media.images import ImageDecodeError, decode_image

    try:
        decoded = decode_image(data, _options.max_image_pixels)
    except ImageDecodeError as exc:
        return Analysis(error=str(exc))
    image = decoded.image
    width, height = image.size
    phash, dhash = perceptual_hashes(image)
    fingerprint = ImageFingerprint(width, height, decoded.format, decoded.orientation, phash, dhash, decoded.capture)
    if decoded.frames > 1:  # an animated GIF, WebP or PNG: its frames are sampled like a video's
        return _analyse_frames(decoded.animation, fingerprint)
    return fingerprint, image


def analyse_many(items: list[bytes]) -> list[Analysis]:
    """Analyse several images in one task, as `analyse` would one by one, with one network call
    for all their faces: each image is decoded, hashed, its faces located and aligned, and its
    pixels released before the next; then every chip goes through the network together (one
    call costs less per face than several: the network's weights are read once). A chip's
    descriptor does not depend on the chips beside it, so the result is the same as `analyse`'s.
    A bug on one image (an exception no decoder or detector is expected to raise) becomes that
    image's error, not the others'."""
    engine = _get_engine()
    results: list[Analysis | None] = [None] * len(items)
    waiting = []  # (index, fingerprint, boxes, chips) of the images whose faces need the network
    for i, data in enumerate(items):
        try:
            if not engine.batches:
                results[i] = analyse(data)
                continue
            first = _still(data)
            if isinstance(first, Analysis):
                results[i] = first
                continue
            fingerprint, image = first
            try:
                boxes, chips = engine.located(image)
            except DETECTION_ERRORS as exc:
                results[i] = Analysis(image=fingerprint, error=f"face detection failed: {exc}")
                continue
            del first, image
            waiting.append((i, fingerprint, boxes, chips))
        except Exception as exc:  # noqa: BLE001 - one image's bug must not cost the others
            results[i] = _internal_error(exc)
    _describe_waiting(engine, waiting, results)
    return results


def _describe_waiting(engine, waiting: list, results: list) -> None:
    try:
        found = engine.faces_of([(boxes, chips) for _, _, boxes, chips in waiting])
    except Exception:  # noqa: BLE001 - the batch failed: describe each image alone to find which
        for i, fingerprint, boxes, chips in waiting:
            try:
                results[i] = Analysis(image=fingerprint, faces=tuple(engine.faces_of([(boxes, chips)])[0]))
            except DETECTION_ERRORS as exc:
                results[i] = Analysis(image=fingerprint, error=f"face detection failed: {exc}")
            except Exception as exc:  # noqa: BLE001
                results[i] = _internal_error(exc)
        return
    for (i, fingerprint, _, _), faces in zip(waiting, found, strict=True):
        results[i] = Analysis(image=fingerprint, faces=tuple(faces))


def _internal_error(exc: Exception) -> Analysis:
    import logging

    logging.getLogger(__name__).exception("analysis failed")
    return internal_error(exc)


def internal_error(exc: Exception) -> Analysis:
    """The record of a member whose analysis raised what no decoder or detector is expected to."""
    return Analysis(error=f"internal error while analysing: {type(exc).__name__}: {exc}")


def analyse_video(source: bytes | str) -> Analysis:
    """Sample a video's frames, hash them, find faces, group them into people, check for animation."""
    from scanner.media.video import sample_video

    return _sampled(sample_video, source, None)


def _analyse_frames(animated, fingerprint: ImageFingerprint) -> Analysis:
    from scanner.media.video import sample_animation

    return _sampled(sample_animation, animated, fingerprint)


def _sampled(sampler, source, image: ImageFingerprint | None) -> Analysis:
    from scanner.media.video import Sampling, VideoDecodeError

    opts = _options
    state = Sampling()
    frames = sampler(
        source,
        state,
        every_ms=opts.video_every_ms,
        scene_change=opts.video_scene_change,
        max_frames=opts.video_max_frames,
        max_pixels=opts.max_image_pixels,
    )
    try:
        return _video_analysis(frames, state, image)
    except VideoDecodeError as exc:
        return Analysis(image=image, error=str(exc))


def _video_analysis(frames, state, image: ImageFingerprint | None) -> Analysis:
    from scanner.fingerprints.video import analyse_video_frames, animation_reason, group_tracks, video_fingerprint

    try:
        samples, faces = analyse_video_frames(frames, _get_engine())
    except (RuntimeError, ValueError, MemoryError) as exc:
        return Analysis(image=image, error=f"face detection failed: {exc}")
    if state.info is None or (not samples and state.stopped):
        return Analysis(image=image, error=state.stopped or "no frame could be decoded")
    if not samples:
        return Analysis(image=image, error="the video has no frame")
    faces, tracks = group_tracks(faces, _options.video_every_ms)
    fingerprint = video_fingerprint(state.info, state, samples, tracks, animation_reason(samples, faces))
    return Analysis(image=image, faces=tuple(faces), video=fingerprint)


def analyse_here(
    data: bytes | None, options: ScanOptions | None = None, path: str | None = None, video: bool = False
) -> Analysis:
    """Analyse one member in this process (enrollment, a one-photo match, a cluster worker's task).

    The models load once per process: re-preparing for every call would reload dlib's models
    (about half a second) for each enrollment.
    """
    options = options or ScanOptions()
    if _options != options:
        init_worker(options)
    return analyse(data, path, video)


class InlineExecutor:
    """A stand-in for a process pool that runs each task at once in this process (workers=1)."""

    def __init__(self, options: ScanOptions):
        init_worker(options)

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller through the future
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def installed_versions() -> dict[str, str]:
    """facetrace's version and those of every package that shapes a fingerprint (for cluster workers)."""
    from importlib.metadata import version

    from scanner.fingerprints.faces import engine_versions

    return {"facetrace": version("facetrace"), **engine_versions()}


CLUSTER_CONNECT_TIMEOUT_S = 30  # Dask retries a refused connection until then


class ClusterExecutor:
    """Each member's analysis as a task on a Dask distributed cluster (`scan --cluster ADDRESS`).

    The scan's own process still reads the inputs, deduplicates, stores and matches, exactly as
    in a local scan; only `analyse` runs on the cluster's workers, which receive the member's
    bytes with the task (a video that is analysed from its file needs that path readable on the
    workers: shared storage, docs/deployment.md). A worker that dies mid-task is the scheduler's
    to handle: its tasks run again on the other workers.
    """

    def __init__(self, address: str, options: ScanOptions):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            from scanner.errors import DependencyError

            raise DependencyError(f"dask.distributed is not importable ({exc}); make setup installs it") from None
        from scanner.errors import UsageError

        self.options = options
        try:
            self.client = Client(address, timeout=CLUSTER_CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._check_versions()
        self._executor = self.client.get_executor(pure=False)

    def _check_versions(self) -> None:
        """Refuse workers whose facetrace or libraries differ: their encodings would be recorded as ours."""
        from scanner.errors import UsageError

        mine = installed_versions()
        theirs = self.client.run(installed_versions)
        if not theirs:
            self.client.close()
            raise UsageError("the Dask cluster has no workers yet: start some (docs/deployment.md) and scan again")
        for worker, versions in sorted(theirs.items()):
            differ = {k: (mine.get(k), v) for k, v in versions.items() if mine.get(k) != v}
            if differ:
                self.client.close()
                raise UsageError(
                    f"Dask worker {worker} runs other versions than this scan: "
                    + ", ".join(f"{k} {v} (here {m})" for k, (m, v) in sorted(differ.items()))
                    + "; install the same facetrace on every worker"
                )

    def workers(self) -> int:
        """The cluster's worker threads now (how many tasks it runs at once)."""
        return sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()) or 1

    def submit(
        self, fn, data: bytes | None, path: str | None = None, video: bool = False, alone: bool = False
    ) -> Future:
        if fn is not analyse:
            raise ValueError("only member analyses run on the cluster")
        return self._executor.submit(analyse_here, data, self.options, path, video)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait and not cancel_futures)
        self.client.close()


BATCH_PHOTOS = 8  # images per local task: their faces go through the network in one call
BATCH_BYTES = 16 << 20  # ... and at most this many bytes of them; a larger image goes alone


class BrokenBatch(BrokenProcessPool):
    """A worker process died during a task of several images: which of them killed it is not
    known, so none is charged the crash and each is tried again alone (the pipeline does)."""

    def __init__(self, size: int):
        super().__init__(f"a worker process died while analysing a batch of {size} images")
        self.size = size


class BatchingExecutor:
    """Groups image analyses into tasks of up to `photos` images (`analyse_many`) on a local
    executor, while every member keeps its own Future: the pipeline's order, in-flight window
    and crash recovery see members, not tasks. A batch goes to the workers when it is full, when
    the next image would take it past `max_bytes`, or when the pipeline waits for one of its
    members (`flush`). Videos and members submitted `alone` (those that were in a batch whose
    worker died) are tasks of their own."""

    def __init__(self, inner, photos: int = BATCH_PHOTOS, max_bytes: int = BATCH_BYTES):
        self.inner = inner
        self.photos = photos
        self.max_bytes = max_bytes
        self._batch: list[tuple[bytes, Future]] = []
        self._bytes = 0

    def submit(
        self, fn, data: bytes | None, path: str | None = None, video: bool = False, alone: bool = False
    ) -> Future:
        if fn is not analyse or video or data is None or alone or self.photos <= 1 or len(data) > self.max_bytes:
            return self.inner.submit(fn, data, path, video)
        if self._batch and self._bytes + len(data) > self.max_bytes:
            self.flush()
        fut: Future = Future()
        self._batch.append((data, fut))
        self._bytes += len(data)
        if len(self._batch) >= self.photos:
            self.flush()
        return fut

    def flush(self) -> None:
        """Send the images collected so far as one task."""
        if not self._batch:
            return
        batch, self._batch, self._bytes = self._batch, [], 0
        futures = [f for _, f in batch]
        task = self.inner.submit(analyse_many, [d for d, _ in batch])
        task.add_done_callback(lambda done: _deliver(done, futures))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        if cancel_futures:
            for _, f in self._batch:
                f.cancel()
            self._batch, self._bytes = [], 0
        else:
            self.flush()
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def _deliver(task: Future, futures: list[Future]) -> None:
    """Hand a batch task's outcome to its members' futures: its analyses, its exception (a dead
    worker under a batch of several: BrokenBatch), or its cancellation (it never ran)."""
    if task.cancelled():
        for f in futures:
            f.cancel()
        return
    exc = task.exception()
    if isinstance(exc, BrokenProcessPool) and len(futures) > 1:
        exc = BrokenBatch(len(futures))
    analyses = task.result() if exc is None else [None] * len(futures)
    for f, analysis in zip(futures, analyses, strict=True):
        if f.done():  # cancelled meanwhile
            continue
        if exc is not None:
            f.set_exception(exc)
        else:
            f.set_result(analysis)


def make_executor(options: ScanOptions, workers: int, cluster: str | None = None):
    """Return an executor with `workers` processes (spawned: safe beside threads and SQLite),
    batching images (`BatchingExecutor`), or one that sends each analysis to the Dask cluster
    whose scheduler is at `cluster`."""
    if cluster:
        return ClusterExecutor(cluster, options)
    if workers <= 1:
        return BatchingExecutor(InlineExecutor(options))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(options,),
    )
    for _ in range(workers):  # every worker starts now and loads its models before the first images come
        pool.submit(warm_up)
    return BatchingExecutor(pool)


def warm_up() -> None:
    """A worker's first task: load the face engine (models, ONNX Runtime session, compiled
    detector) now rather than on its first image. A failure is left to that image to report."""
    try:
        _get_engine()
    except Exception:  # noqa: BLE001 - the first analysis raises it again, as that file's error
        pass
