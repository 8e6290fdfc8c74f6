"""The ONNX engine gives face_recognition's own encodings: same boxes, every value within 1e-4.

A stratified sample of every collection in ../shared/facedata (LFW, the singletons, photos up to
1548 px, partly visible faces, group photos with up to 24 faces, non-faces, frames of the real
video) keeps the test to seconds; `python benchmarks/bench_embedding.py` checks every face of
the whole folder and prints the figures in docs/performance.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanner.fingerprints.faces import EMBEDDER, DlibFaceEngine, OnnxFaceEngine, make_engine
from scanner.media.images import decode_image
from scanner.models import ScanOptions
from tests.conftest import facedata_path

pytestmark = pytest.mark.facedata

TOLERANCE = 1e-4  # the contract; measured: about 4e-7


def _sample():
    root = facedata_path()
    picks = []
    for collection, per_folder, folders in (
        ("lfw_deepfunneled", 1, 8),
        ("lfw_singletons", 1, 4),
        ("fr_examples", 2, 6),
        ("fr_examples_partial", 2, 1),
        ("multiface", 3, 1),
        ("nonface", 3, 1),
        ("misc_people", 2, 1),
    ):
        base = root / collection
        dirs = sorted(p for p in base.iterdir() if p.is_dir())[:folders] or [base]
        for d in dirs:
            picks += sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:per_folder]
    return picks


@pytest.fixture(scope="module")
def engines():
    options = ScanOptions()
    return DlibFaceEngine(options), OnnxFaceEngine(options)


def _compare(reference, candidate, image):
    ref, got = reference.faces(image), candidate.faces(image)
    assert [f.box for f in got] == [f.box for f in ref]
    return [
        float(np.abs(np.asarray(a.encoding) - np.asarray(b.encoding)).max()) for a, b in zip(ref, got, strict=False)
    ]


@pytest.mark.slow
def test_every_sampled_face_equals_face_recognition(engines):
    diffs = []
    photos = _sample()
    for photo in photos:
        diffs += _compare(*engines, decode_image(photo.read_bytes(), 100_000_000).image)
    assert len(photos) >= 25 and len(diffs) >= 30  # multiface alone brings group photos' many faces
    assert max(diffs) <= TOLERANCE, max(diffs)


def test_video_frames_too(engines):
    from scanner.media.video import Sampling, sample_video

    frames = list(
        sample_video(
            str(facedata_path("video", "short_hamilton_clip.mp4")),
            Sampling(),
            every_ms=3000,
            scene_change=255.0,
            max_frames=4,
            max_pixels=100_000_000,
        )
    )
    diffs = [d for frame in frames for d in _compare(*engines, frame.image)]
    assert diffs and max(diffs) <= TOLERANCE


def test_both_engines_write_one_embedder_name_and_their_own_runtime(engines):
    dlib_engine, onnx_engine = engines
    assert dlib_engine.name == onnx_engine.name == EMBEDDER and dlib_engine.version == onnx_engine.version
    assert dlib_engine.runtime.startswith("dlib ") and onnx_engine.runtime.startswith("onnxruntime ")
    assert isinstance(make_engine(ScanOptions(engine="dlib")), DlibFaceEngine)
    assert type(make_engine(ScanOptions())) is OnnxFaceEngine  # the default


def test_the_cnn_detector_gives_the_same_faces_too():
    options = ScanOptions(detector="cnn")
    photo = sorted(facedata_path("lfw_deepfunneled").iterdir())[0]
    image = decode_image(sorted(photo.iterdir())[0].read_bytes(), 100_000_000).image
    diffs = _compare(DlibFaceEngine(options), OnnxFaceEngine(options), image)
    assert diffs and max(diffs) <= TOLERANCE


def test_the_onnx_engine_writes_nothing_outside_the_workspace(tmp_path):
    # ONNX Runtime's official builds would write a device id under ~/.cache/Microsoft and a .ses
    # file into $TMPDIR on import, and queue telemetry for upload, unless told not to
    import os
    import subprocess
    import sys

    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    code = (
        "from scanner.fingerprints.faces import make_engine; from scanner.models import ScanOptions; "
        "import numpy; e = make_engine(ScanOptions()); "
        "assert e._net(numpy.zeros((1, 150, 150, 3), numpy.uint8)).shape == (1, 128)"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=tmp_path,
        env={**env, "HOME": str(home), "TMPDIR": str(tmp), "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [Path("home"), Path("tmp")]
