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


def test_portable_kernels_give_dlibs_rectangles(detector, monkeypatch):
    """The kernels a CPU without AVX-512 or AVX2 runs (or FACETRACE_HOG_PORTABLE=1) find the same faces."""
    monkeypatch.setattr(hog, "AVX512", False)
    monkeypatch.setattr(hog, "AVX2", False)
    for photo in _sample()[:3] + _sample()[-4:-2]:
        pixels = _pixels(photo)
        assert hog.detect(pixels, 1) == [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(pixels, 1)]


@pytest.mark.parametrize("kernel", ["avx512", "avx2"])
def test_vector_resizes_equal_the_portable_kernel(kernel, monkeypatch):
    """On a CPU with AVX-512 (AVX2) the pyramid's resizes run in blocks of 16 (8) columns from
    permuted loads: the same values bit for bit as the portable kernel (which
    test_resize_is_dlibs_bit_for_bit checks against dlib), on the scan's sizes, odd widths, rows
    near the block width, and random enlargements and reductions (reductions past 2x fall back to
    the portable kernel by design). The AVX2 kernel runs on AVX-512 CPUs too (a subset)."""
    feature = {"avx512": "avx512f", "avx2": "avx2"}[kernel]
    if feature not in hog._host_features():
        pytest.skip(f"this CPU (or $NUMBA_CPU_NAME/$NUMBA_CPU_FEATURES) has no {feature}")
    monkeypatch.setattr(hog, "AVX512", kernel == "avx512")
    monkeypatch.setattr(hog, "AVX2", kernel == "avx2")
    lanes = 16 if kernel == "avx512" else 8
    rng = np.random.default_rng(7)
    sizes = [
        (250, 250, 501, 502),
        (501, 502, 417, 418),
        (417, 418, 347, 348),
        (40, 33, 81, 68),
        (31, 31, 63, 64),
        (33, 32, 27, 26),
        (120, 200, 50, 90),
        (1000, 1200, 833, 1000),
        (20, 17, 24, 20),
        (16, 16, 33, 34),
    ]
    sizes += [
        (int(a), int(b), max(1, int(a * f)), max(1, int(b * f)))
        for a, b, f in zip(
            rng.integers(20, 600, 60), rng.integers(20, 600, 60), rng.uniform(0.45, 2.2, 60), strict=False
        )
    ]
    blocked = 0
    for rows, cols, out_rows, out_cols in sizes:
        src = rng.integers(0, 256, (3, rows, cols)).astype(np.float32)
        plan = hog._resize_plan(rows, cols, out_rows, out_cols)
        want = np.empty((3, out_rows, out_cols), np.float32)
        left = np.empty((rows, plan[0].shape[0]), np.float32)
        hog._resize_kernel(src, want, left, left.copy(), *plan)
        assert np.array_equal(hog.resize_planar(src, out_rows, out_cols), want), (rows, cols, out_rows, out_cols)
        blocked += hog._block_plan(rows, cols, out_rows, out_cols, lanes) is not None
    assert blocked >= 50  # the block kernel, not the fallback, made most of them


def test_vector_histogram_equals_the_portable_kernel():
    """The FHOG histogram with the gradient pass 16 pixels at a time (AVX-512 or AVX2) is the portable
    kernel's, bit for bit: on a real photo's pyramid, and on low-contrast noise where gradients tie
    between channels and orientations (the tie rules are where a vector version could differ), in
    rows of every length class (the 16-pixel blocks overlap at a row's end; short rows fall back)."""
    if not (hog.AVX512 or hog.AVX2):
        pytest.skip(
            "this CPU (or $NUMBA_CPU_NAME/$NUMBA_CPU_FEATURES) has neither AVX-512 nor AVX2: the portable kernel runs"
        )
    rng = np.random.default_rng(11)
    pixels = _pixels(_sample()[1])
    level = np.empty((3,) + pixels.shape[:2], np.float32)
    hog._planar(pixels, level)
    levels = [hog.resize_planar(level, *hog.pyramid_up_size(*level.shape[1:]))]
    while min(levels[-1].shape[1:]) > 60:
        levels.append(hog.resize_planar(levels[-1], 5 * levels[-1].shape[1] // 6, 5 * levels[-1].shape[2] // 6))
    levels += [
        rng.integers(0, 3, (3, 50, 203)).astype(np.float32),
        rng.integers(0, 256, (3, 70, 97)).astype(np.float32),
        rng.integers(0, 2, (3, 33, 40)).astype(np.float32),
    ]
    # short rows
    levels += [rng.integers(0, 3, (3, 24, w)).astype(np.float32) for w in (16, 20, 23, 25, 31, 33, 47)]
    for level in levels:
        p = hog._fhog_plan(level.shape[1], level.shape[2])
        if p is None:  # too small to have features
            continue
        got = []
        for kernel in (hog._histogram, hog._histogram_vector):
            hist, energy = np.empty((p["cnr"] + 2, (p["cnc"] + 2) * 18)), np.empty((p["cnr"], p["cnc"]))
            kernel(level, p["vy"], p["vx"], p["tail"], p["ixs"], p["fxs"], hist, energy)
            got.append((hist, energy))
        assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1]), level.shape


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
