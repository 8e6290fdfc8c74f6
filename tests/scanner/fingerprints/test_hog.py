"""scanner/fingerprints/hog.py gives dlib's HOG face detector's rectangles, box for box.

A small real sample (30 LFW photos, two group photos, two non-face images) at the scan's
settings (detection copy at most 1024 px, upsample 1), plus scores and weaker detections at
adjust_threshold -1 on a few photos; `python benchmarks/bench_detector.py` compares all of
../shared/facedata.
"""

from __future__ import annotations

import numpy as np
import pytest

from scanner.fingerprints import hog
from scanner.media.images import decode_image, reduced_copy
from tests.conftest import facedata_path

pytestmark = pytest.mark.facedata


def _pixels(path) -> np.ndarray:
    small, _ = reduced_copy(decode_image(path.read_bytes(), 100_000_000).image.convert("RGB"), 1024)
    return np.ascontiguousarray(np.asarray(small.convert("RGB")))


def _sample():
    lfw = facedata_path("lfw_deepfunneled")
    photos = [sorted(d.glob("*.jpg"))[0] for d in sorted(p for p in lfw.iterdir() if p.is_dir())[:30]]
    photos += [facedata_path("multiface", "dlib_2008_002470.jpg"), facedata_path("multiface", "fr_two_people.jpg")]
    photos += [facedata_path("nonface", "skimage_chelsea.png"), facedata_path("nonface", "dlib_dogs.jpg")]
    return photos


@pytest.fixture(scope="module")
def detector():
    import dlib

    return dlib.get_frontal_face_detector()


def _dlib(detector, pixels, upsample, adjust):
    rects, scores, idx = detector.run(pixels, upsample, adjust)
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects], list(scores), [int(i) for i in idx]


def test_same_rectangles_as_dlib(detector):
    found = 0
    for photo in _sample():
        pixels = _pixels(photo)
        want = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(pixels, 1)]
        assert hog.detect(pixels, 1) == want, photo.name
        found += len(want)
    assert found >= 30  # the group photos bring several faces; the non-face images none


@pytest.mark.parametrize("upsample", [0, 1])
def test_scores_and_weak_detections(detector, upsample):
    for photo in _sample()[:5] + _sample()[-4:-2]:
        pixels = _pixels(photo)
        want_rects, want_scores, want_idx = _dlib(detector, pixels, upsample, -1.0)
        rects, scores, idx = hog.run(pixels, upsample, -1.0)
        assert (rects, idx) == (want_rects, want_idx), photo.name
        assert np.allclose(scores, want_scores, atol=1e-5, rtol=0), photo.name


def test_small_and_odd_inputs(detector):
    for shape in [(14, 25, 3), (1, 1, 3), (70, 90, 3)]:
        pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        want = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(pixels, 1)]
        assert hog.detect(pixels, 1) == want
    with pytest.raises(ValueError):
        hog.detect(np.zeros((10, 10), np.uint8))


def test_resize_is_dlibs_bit_for_bit():
    import dlib

    pixels = _pixels(_sample()[0])
    planar = np.ascontiguousarray(pixels.transpose(2, 0, 1)).astype(np.float32)
    for rows, cols in [(501, 502), (208, 208), (100, 77), (37, 45)]:
        got = hog.resize_planar(planar, rows, cols).transpose(1, 2, 0).astype(np.uint8)
        assert np.array_equal(got, dlib.resize_image(pixels, rows, cols)), (rows, cols)


def test_working_arrays_reused_across_sizes_and_threads(detector):
    """Levels, histograms and feature planes live in per-thread scratch arrays reused from image to
    image: a large image after a small one (and back), and several threads at once, still give
    dlib's rectangles."""
    from concurrent.futures import ThreadPoolExecutor

    photos = [_pixels(p) for p in _sample()[-4:]] + [_pixels(p) for p in _sample()[:2]]
    want = [[(r.left(), r.top(), r.right(), r.bottom()) for r in detector(px, 1)] for px in photos]
    order = [0, 4, 1, 5, 2, 3, 0]  # group photo, LFW photo, group photo, ...
    assert [hog.detect(photos[i], 1) for i in order] == [want[i] for i in order]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda px: hog.detect(px, 1), photos * 2))
    assert got == want * 2
    assert sum(map(len, want)) >= 10
