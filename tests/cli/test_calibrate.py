"""`facetrace calibrate`: the reference cohort built from a labelled folder, its measurement, audit and removal."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from scanner.matching import calibration, cohort
from tests.conftest import facedata_path

PEOPLE = 12
PHOTOS = 3
ODD_PERSON = b"\xc8\xcb"  # not UTF-8: folder names are bytes, whatever their encoding


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _lfw_people(n: int, photos: int) -> list[list[Path]]:
    lfw = facedata_path("lfw_deepfunneled")
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.iterdir())) >= photos)
    return [sorted(p.iterdir())[:photos] for p in people[:n]]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A labelled folder of 12 LFW people x 3 photos, plus a 13th under a non-UTF-8 name and the
    files a real folder holds by mistake; calibrated once into a fresh workspace."""
    base = tmp_path_factory.mktemp("calibrate")
    folder, ws = base / "people", base / "ws"
    people = _lfw_people(PEOPLE + 1, PHOTOS + 1)
    for photos in people[:PEOPLE]:
        (folder / photos[0].parent.name).mkdir(parents=True)
        for p in photos[:PHOTOS]:
            shutil.copyfile(p, folder / p.parent.name / p.name)
    first, second, third = (folder / people[i][0].parent.name for i in range(3))
    (first / "more").mkdir()  # a person's folder is read recursively
    shutil.copyfile(people[0][PHOTOS], first / "more" / people[0][PHOTOS].name)
    shutil.copyfile(facedata_path("nonface", "skimage_brick.png"), second / "brick.png")
    shutil.copyfile(facedata_path("multiface", "fr_two_people.jpg"), second / "two.jpg")
    shutil.copyfile(people[1][0], second / "copy.jpg")  # the same bytes twice
    (third / "link.jpg").symlink_to(people[2][0])
    (folder / "README.txt").write_text("photos of consenting reference people\n")
    (folder / "empty_person").mkdir()
    odd = os.path.join(os.fsencode(folder), ODD_PERSON)
    os.mkdir(odd)
    for i, p in enumerate(people[PEOPLE][:PHOTOS]):
        name = b"\xff\xfe.jpg" if i == 0 else os.fsencode(p.name)
        shutil.copyfile(p, os.path.join(odd, name))
    with open(os.path.join(odd, b"notes\xff.txt"), "wb") as fh:
        fh.write(b"not a photo")
    r = _run("calibrate", folder, "-w", ws, "--json")
    return folder, ws, r


@pytest.mark.facedata
def test_calibrate_builds_saves_and_measures(calibrated):
    _folder, ws, r = calibrated
    assert r.exit_code == 0, r.output
    manifest = json.loads(r.stdout)
    assert manifest["people"] == PEOPLE + 1  # the non-UTF-8 person counts; the empty folder does not
    assert manifest["people_without_usable_photo"] == 1
    skipped = manifest["skipped"]
    assert skipped["duplicate"] == 1 and skipped["not_a_file"] == 1 and skipped["outside_person_folder"] == 1
    assert skipped["unreadable"] == 1 and skipped["no_face"] >= 1 and skipped["several_faces"] >= 1
    assert manifest["faces"] + sum(skipped.values()) == manifest["files"]
    assert "Skipped (unreadable): \\xc8\\xcb/notes\\xff.txt" in r.stderr  # odd names printed, escaped

    saved = json.loads((cohort.path(ws) / cohort.MANIFEST).read_text())
    assert saved == manifest
    assert len(saved["source_sha256"]) == 64 and saved["created_at"].endswith("+00:00")
    loaded = cohort.load(ws, saved["embedder"], saved["embedder_version"])
    assert loaded is not None and loaded.people == PEOPLE + 1
    assert loaded.encodings.shape == (manifest["faces"], 128) and loaded.encodings.dtype == np.float32
    assert cohort.load(ws, saved["embedder"], "another version") is None

    m = manifest["measured"]
    assert m["k"] == 3 and m["people"] == PEOPLE + 1 and m["faces"] == manifest["faces"]
    assert [row[0] for row in m["fmr_table"]] == list(calibration.MARGINS)
    assert [row[0] for row in m["genuine_rate"]] == list(calibration.MARGINS)
    events = [e for _, e, _ in m["fmr_table"]]
    uppers = [u for _, _, u in m["fmr_table"]]
    rates = [g for _, g in m["genuine_rate"]]
    assert _non_increasing(events)  # a stricter margin, fewer false matches
    assert _non_increasing(uppers) and all(0 < u < 1 for u in uppers)
    assert _non_increasing(rates) and rates[0] > 0.5
    assert m["impostor_pairs"] > 100 * events[0]


def _non_increasing(values) -> bool:
    return all(a >= b for a, b in itertools.pairwise(values))


@pytest.mark.facedata
def test_calibrate_is_audited_without_encodings_and_removable(calibrated):
    _folder, ws, r = calibrated
    assert r.exit_code == 0, r.output
    manifest = json.loads(r.stdout)
    entries = json.loads(_run("registry", "audit", "--json", "-w", ws).stdout)
    entry = next(e for e in entries if e["action"] == "calibrate")
    assert entry["details"]["source_sha256"] == manifest["source_sha256"]
    assert entry["details"]["people"] == manifest["people"] and entry["details"]["faces"] == manifest["faces"]
    text = json.dumps(entry["details"])
    assert "encoding" not in text and len(text) < 1000  # counts and a hash, never a vector

    r = _run("calibrate", "--remove", "-w", ws)
    assert r.exit_code == 0 and "removed" in r.stdout
    assert not (cohort.path(ws) / cohort.DATA).exists() and not (cohort.path(ws) / cohort.MANIFEST).exists()
    r = _run("calibrate", "--remove", "-w", ws)
    assert r.exit_code == 0 and "nothing removed" in r.stdout
    entries = json.loads(_run("registry", "audit", "--json", "-w", ws).stdout)
    removals = [e["details"] for e in entries if e["action"] == "calibrate_remove"]
    assert removals[0]["removed"] and removals[0]["source_sha256"] == manifest["source_sha256"]
    assert not removals[1]["removed"]
    assert _run("registry", "audit", "--verify", "-w", ws).exit_code == 0


@pytest.mark.facedata
def test_summary_reads_the_table(calibrated):
    _folder, ws, r = calibrated
    from cli.calibrate import format_summary

    text = format_summary(json.loads(r.stdout), cohort.path(ws))
    assert "people" in text and "registry at 1%" in text and "genuine found" in text
    rows = [line for line in text.splitlines() if line.strip().startswith(("0.", "1."))]
    assert len(rows) == len(calibration.MARGINS)


@pytest.mark.facedata
def test_fewer_than_ten_people_is_refused(tmp_path):
    folder = tmp_path / "people"
    for photos in _lfw_people(9, 1):
        (folder / photos[0].parent.name).mkdir(parents=True)
        shutil.copyfile(photos[0], folder / photos[0].parent.name / photos[0].name)
    r = _run("calibrate", folder, "-w", tmp_path / "ws")
    assert r.exit_code == 2 and "at least 10 people" in r.stderr
    assert not (cohort.path(tmp_path / "ws") / cohort.DATA).exists()


def test_folder_and_remove_together_are_refused(tmp_path):
    r = _run("calibrate", tmp_path, "--remove", "-w", tmp_path / "ws")
    assert r.exit_code == 2 and "either FOLDER" in r.stderr
    r = _run("calibrate", "-w", tmp_path / "ws")
    assert r.exit_code == 2


# -- measure: the vectorised protocol against a plain loop (plumbing, on made-up encodings) --------


def _measure_by_loop(enc, person, k=3, max_distance=0.5):
    """The protocol as written in measure's docstring, one pair at a time."""
    templates = {}
    for i, p in enumerate(person):
        if (person == p).sum() >= 2 and p not in templates:
            templates[p] = i
    subjects = list(templates)
    probes = [i for i in range(len(enc)) if i not in templates.values()]

    def dist(a, b):
        return float(np.linalg.norm(enc[a] - enc[b]))

    ct = {s: np.mean(sorted(dist(templates[s], templates[o]) for o in subjects if o != s)[:k]) for s in subjects}
    events, found = np.zeros(len(calibration.MARGINS), int), np.zeros(len(calibration.MARGINS), int)
    pairs = genuine = 0
    for q in probes:
        own = person[q]
        for s in subjects:
            if s == own:
                continue
            d = dist(q, templates[s])
            cq = np.mean(sorted(dist(q, templates[o]) for o in subjects if o not in (s, own))[:k])
            pairs += 1
            if d <= max_distance:
                events += [0.5 * (cq + ct[s]) - d >= mg for mg in calibration.MARGINS]
        if own in templates:
            genuine += 1
            ds = {s: dist(q, templates[s]) for s in subjects}
            cq = np.mean(sorted(ds[o] for o in subjects if o != own)[:k])
            if min(subjects, key=ds.get) == own and ds[own] <= max_distance:
                found += [0.5 * (cq + ct[own]) - ds[own] >= mg for mg in calibration.MARGINS]
    return pairs, events, genuine, found


@pytest.mark.parametrize("chunk", [7, calibration.CHUNK_VALUES])
def test_measure_agrees_with_a_plain_loop(chunk):
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 0.03, (30, 128))
    centres[1:20:2] = centres[0:20:2] + rng.normal(0, 0.012, (10, 128))  # look-alike pairs: false matches happen
    person = np.repeat(np.arange(30), rng.integers(1, 5, 30))  # some people have one face: probes only
    enc = centres[person] + rng.normal(0, 0.02, (len(person), 128))
    pairs, events, genuine, found = _measure_by_loop(enc, person)
    m = calibration.measure(enc, person, chunk_values=chunk)
    assert m["impostor_pairs"] == pairs and m["genuine_probes"] == genuine
    assert [e for _, e, _ in m["fmr_table"]] == list(events) and events[0] > 0
    assert np.allclose([g for _, g in m["genuine_rate"]], found / genuine)
    for _, e, upper in m["fmr_table"]:
        assert upper == pytest.approx(calibration.upper_bound(e, pairs)) and upper > e / pairs


def test_measure_needs_enough_people_with_two_faces():
    enc = np.random.default_rng(0).normal(0, 0.05, (12, 128))
    person = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7])  # 4 people with 2 faces: fewer than k + 2
    with pytest.raises(calibration.UsageError, match="at least 5"):
        calibration.measure(enc, person)


def test_upper_bound_and_supported_size():
    assert calibration.upper_bound(0, 1000) == pytest.approx(1 - 0.05 ** (1 / 1000))  # the "rule of three" case
    assert calibration.upper_bound(3, 3) == 1.0 and calibration.upper_bound(0, 0) == 1.0
    assert calibration.supported_registry_size(0.002) == 5


def test_source_digest_recipe():
    used = [("b/2.jpg", "bb" * 32), (os.fsdecode(b"\xc8\xcb/1.jpg"), "aa" * 32)]
    body = '[["b/2.jpg","' + "bb" * 32 + '"],["\\udcc8\\udccb/1.jpg","' + "aa" * 32 + '"]]'
    assert calibration.source_digest(used) == hashlib.sha256(body.encode()).hexdigest()
    assert calibration.source_digest(list(reversed(used))) == calibration.source_digest(used)


def _stand_in(data: bytes) -> np.ndarray:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(data).digest()[:4], "big")).normal(0, 0.05, 128)


def test_build_accounts_for_every_file_with_a_stand_in_engine(tmp_path, monkeypatch):
    """Plumbing only (no claim about faces): file order, skips by reason, odd names, a raising analysis."""
    from scanner import workers
    from scanner.models import Analysis, Face, FaceBox

    def fake(data, options=None, path=None, video=False):
        if data.startswith(b"boom"):
            raise RuntimeError("a decoder bug")
        n = int(data.split(b":")[1]) if data.startswith(b"faces:") else 1
        return Analysis(faces=tuple(Face(FaceBox(0, 1, 1, 0), tuple(_stand_in(data))) for _ in range(n)))

    monkeypatch.setattr(workers, "analyse_here", fake)
    root = os.fsencode(tmp_path)
    for i in range(11):
        person = os.path.join(root, b"p%02d" % i if i else ODD_PERSON)
        os.makedirs(os.path.join(person, b"sub"))
        for name in (b"b.jpg", b"sub/a.jpg", b"\xff.jpg"):
            with open(os.path.join(person, name), "wb") as fh:
                fh.write(b"photo %d %s" % (i, name))
    for name, body in (
        (b"p01/none.jpg", b"faces:0"),
        (b"p01/two.jpg", b"faces:2"),
        (b"p02/x.jpg", b"boom"),
        (b"p03/copy.jpg", b"photo 3 b.jpg"),
        (b"loose.jpg", b"photo loose"),
    ):
        with open(os.path.join(root, name), "wb") as fh:
            fh.write(body)
    enc, person, people, stats = calibration.build(tmp_path)
    assert people[0] == "p01" and people[-1] == os.fsdecode(ODD_PERSON) and len(people) == 11  # byte order
    assert enc.shape == (33, 128) and enc.dtype == np.float32 and list(person[:3]) == [0, 0, 0]
    assert stats["skipped"] == {
        "no_face": 1,
        "several_faces": 1,
        "unreadable": 1,
        "duplicate": 1,
        "too_large": 0,
        "not_a_file": 0,
        "outside_person_folder": 1,
    }
    assert stats["files"] == 33 + 5
    assert ("p02/x.jpg", "unreadable") in stats["skipped_photos"]
    # within a person, file-name order (b.jpg, sub/a.jpg, then the \xff name): the first row is the template
    assert np.allclose(enc[:3], [_stand_in(b"photo 1 " + n) for n in (b"b.jpg", b"sub/a.jpg", b"\xff.jpg")], atol=1e-6)
