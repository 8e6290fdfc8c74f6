"""Face detection and encoding on real photos: counts, and same/different-person distances."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.conftest import facedata_path, run_scan

pytestmark = pytest.mark.facedata

# Faces found per multiface photo with the default options (HOG, upsample 1, detection on a copy of
# at most 1024 px). Measured with benchmarks/detect_size.py; identical at full resolution for every
# photo (docs/accuracy.md).
MULTIFACE_COUNTS = {
    "deepface_couple.jpg": 2,
    "deepface_img11_reflection.jpg": 1,
    "deepface_selfie-many-people.jpg": 4,
    "dlib_2007_007763.jpg": 7,
    "dlib_2008_001009.jpg": 2,
    "dlib_2008_001322.jpg": 3,
    "dlib_2008_002079.jpg": 6,
    "dlib_2008_002470.jpg": 6,
    "dlib_2008_002506.jpg": 3,
    "dlib_2008_004176.jpg": 7,
    "dlib_2008_007676.jpg": 7,
    "dlib_2009_004587.jpg": 2,
    "dlib_Tom_Cruise_avp_2014_4.jpg": 1,
    "dlib_bald_guys.jpg": 24,
    "fr_kit_with_rose.jpg": 2,
    "fr_obama_and_biden.jpg": 3,
    "fr_two_people.jpg": 2,
}

PAIR_SEED = 20261122
TOLERANCE = 0.6  # face_recognition's usual same-person threshold


def test_no_face_in_any_nonface_image(tmp_path):
    folder = facedata_path("nonface")
    summary, results = run_scan([folder], tmp_path / "ws")
    assert summary.counts["images"] == len(list(folder.iterdir())) == 27
    assert summary.counts["unreadable"] == 0
    assert [r.member.relpath for r in results if r.faces] == []


def test_multiface_counts_match_the_documented_figures(tmp_path):
    folder = facedata_path("multiface")
    _, results = run_scan([folder], tmp_path / "ws")
    assert {r.member.relpath: len(r.faces) for r in results} == MULTIFACE_COUNTS


def _pairs(lfw):
    rng = random.Random(PAIR_SEED)
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    chosen = rng.sample(people, 100)
    photos = {p.name: sorted(p.iterdir())[:3] for p in chosen}
    same = [(ph[i], ph[i + 1]) for ph in photos.values() for i in (0, 1)]
    names = sorted(photos)
    different = set()
    while len(different) < 200:
        a, b = rng.sample(names, 2)
        different.add((photos[a][rng.randrange(3)], photos[b][rng.randrange(3)]))
    return same, sorted(different), [f for ph in photos.values() for f in ph]


def central_encodings(results) -> dict:
    """Map each photo's logical path to the encoding of the face nearest its centre.

    LFW photos are centred on their subject; about 5% also show someone in the background.
    """
    central = {}
    for r in results:
        if r.faces:
            cx, cy = r.image.width / 2, r.image.height / 2
            face = min(
                r.faces,
                key=lambda f: ((f.box.left + f.box.right) / 2 - cx) ** 2 + ((f.box.top + f.box.bottom) / 2 - cy) ** 2,
            )
            central[r.member.logical_path] = np.array(face.encoding)
    return central


@pytest.fixture(scope="module")
def lfw_pairs(tmp_path_factory):
    same, different, files = _pairs(facedata_path("lfw_deepfunneled"))
    _, results = run_scan(files, tmp_path_factory.mktemp("ws-lfw"))
    return same, different, central_encodings(results)


def _distance(central, a, b):
    ea, eb = central.get(str(a)), central.get(str(b))
    if ea is None or eb is None:
        return None  # no face found: counted against us below
    return float(np.linalg.norm(ea - eb))


@pytest.mark.slow
def test_same_person_pairs_accepted_at_0_6(lfw_pairs):
    same, _, central = lfw_pairs
    assert len(same) == 200
    distances = [_distance(central, a, b) for a, b in same]
    accepted = sum(d is not None and d <= TOLERANCE for d in distances)
    assert accepted / len(same) >= 0.97, f"{accepted}/200 same-person pairs within {TOLERANCE}"


@pytest.mark.slow
def test_different_person_pairs_rejected_at_0_6(lfw_pairs):
    _, different, central = lfw_pairs
    assert len(different) == 200
    distances = [_distance(central, a, b) for a, b in different]
    accepted = sum(d is not None and d <= TOLERANCE for d in distances)
    assert accepted / len(different) <= 0.01, f"{accepted}/200 different-person pairs within {TOLERANCE}"
