"""End-to-end scans of real photos from ../shared/facedata."""

from __future__ import annotations

import shutil
import tarfile
import zipfile

import pytest

from scanner.models import Kind, Status
from tests.conftest import by_relpath, facedata_path, run_scan

pytestmark = pytest.mark.facedata


@pytest.fixture(scope="session")
def small_dump(tmp_path_factory):
    """A folder of real photos (one group photo, two LFW people, a PNG), a duplicate and bad files."""
    root = tmp_path_factory.mktemp("dump") / "dump"
    lfw = facedata_path("lfw_deepfunneled")
    for person in ("Abdullah_Gul", "Ana_Palacio"):
        (root / person).mkdir(parents=True)
        for photo in sorted((lfw / person).iterdir())[:2]:
            shutil.copy(photo, root / person / photo.name)
    (root / "group").mkdir()
    shutil.copy(facedata_path("multiface", "fr_two_people.jpg"), root / "group" / "two.jpg")
    shutil.copy(facedata_path("nonface", "skimage_coins.png"), root / "group" / "coins.png")
    (root / "copies").mkdir()
    shutil.copy(root / "group" / "two.jpg", root / "copies" / "two_again.jpg")  # byte-identical
    good = (root / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg").read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "bad" / "readme.jpg").write_text("not a photo, just text posing as one\n")
    return root


@pytest.fixture(scope="session")
def folder_scan(small_dump, tmp_path_factory):
    return run_scan([small_dump], tmp_path_factory.mktemp("ws-folder"))


def _archive_scan(small_dump, tmp_path_factory, kind):
    out = tmp_path_factory.mktemp(f"ws-{kind}")
    files = sorted(p for p in small_dump.rglob("*") if p.is_file())
    if kind == "zip":
        archive = out / "dump.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, p.relative_to(small_dump).as_posix())
    else:
        archive = out / "dump.tar.gz"
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(small_dump, arcname=".")
    return run_scan([archive], out / "ws")


@pytest.mark.slow
def test_archives_give_the_same_members_hashes_and_encodings_as_the_folder(small_dump, folder_scan, tmp_path_factory):
    _, folder = folder_scan
    expected = {r.member.relpath: r for r in folder}
    for kind in ("zip", "tar.gz"):
        _, results = _archive_scan(small_dump, tmp_path_factory, kind)
        got = {r.member.relpath: r for r in results if r.member.kind is not Kind.ARCHIVE or r.member.relpath}
        got = {k: v for k, v in got.items() if not k.startswith("dump.")}
        assert set(got) == set(expected), kind
        for rel, want in expected.items():
            have = got[rel]
            assert have.member.sha256 == want.member.sha256, (kind, rel)
            assert have.member.mime == want.member.mime, (kind, rel)
            assert have.status == want.status, (kind, rel)
            assert have.image == want.image, (kind, rel)  # perceptual hashes, size, orientation
            assert have.faces == want.faces, (kind, rel)  # boxes and every encoding value, bit for bit


def test_every_face_is_found_and_encoded(folder_scan):
    summary, results = folder_scan
    r = by_relpath(results)
    assert len(r["copies/two_again.jpg"].faces) == 2  # every face, not just the largest
    for rel in ("Abdullah_Gul/Abdullah_Gul_0001.jpg", "Ana_Palacio/Ana_Palacio_0001.jpg"):
        assert len(r[rel].faces) >= 1
        assert all(len(f.encoding) == 128 for f in r[rel].faces)
    assert r["group/coins.png"].faces == ()
    assert len(r["group/coins.png"].image.phash) == 16 and len(r["group/coins.png"].image.dhash) == 16


def test_byte_identical_copy_is_a_duplicate(folder_scan):
    summary, results = folder_scan
    r = by_relpath(results)
    first, dup = r["copies/two_again.jpg"], r["group/two.jpg"]  # folders are read in sorted order
    assert first.status is Status.OK and first.member.seq < dup.member.seq
    assert dup.status is Status.DUPLICATE
    assert dup.duplicate_of == first.member.logical_path
    assert dup.faces == first.faces and len(dup.faces) == 2  # reported with the first copy's fingerprint
    assert summary.counts["duplicates"] == 1


def test_unreadable_files_are_reported_and_the_scan_completes(folder_scan):
    summary, results = folder_scan
    r = by_relpath(results)
    assert r["bad/truncated.jpg"].status is Status.UNREADABLE
    assert "truncated" in r["bad/truncated.jpg"].reason
    assert r["bad/readme.jpg"].status is Status.UNREADABLE
    assert "text/plain" in r["bad/readme.jpg"].reason
    assert summary.counts["unreadable"] == 2
    assert summary.counts["files"] == 9 and summary.counts["images"] == 6


def test_scan_is_stored_in_the_workspace(folder_scan, tmp_path):
    summary, results = folder_scan
    from scanner.pipeline import open_store

    store, _ = open_store(summary.workspace)
    scan = store.get_scan(summary.scan_id)
    assert scan["status"] == "finished"
    assert scan["engine"]["model_files"]["dlib_face_recognition_resnet_model_v1.dat"]
    assert scan["parameters"]["detect_max_side"] == 1024
    stored = list(store.iter_members(summary.scan_id))
    assert [m["logical_path"] for m in stored] == [r.member.logical_path for r in results]
    for rel in ("copies/two_again.jpg", "Ana_Palacio/Ana_Palacio_0001.jpg"):
        row = next(m for m in stored if m["relpath"] == rel)
        want = next(r for r in results if r.member.relpath == rel)
        assert want.faces and [tuple(f["encoding"]) for f in row["faces"]] == [f.encoding for f in want.faces]
    dup = next(m for m in stored if m["relpath"] == "group/two.jpg")
    assert dup["status"] == "duplicate" and dup["faces"] == []  # stored once, on the first copy
    store.close()


def test_exif_orientation_is_applied_before_detection(tmp_path):
    from PIL import Image

    src = Image.open(facedata_path("lfw_deepfunneled", "Ana_Palacio", "Ana_Palacio_0001.jpg"))
    src.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    src.transpose(Image.ROTATE_90).save(tmp_path / "sideways.png", exif=exif.tobytes())
    _, results = run_scan([tmp_path / "upright.png", tmp_path / "sideways.png"], tmp_path / "ws", workers=1)
    upright, sideways = results
    assert sideways.image.orientation == 6
    assert len(upright.faces) == 1 and sideways.faces == upright.faces


def test_large_photo_is_detected_on_a_reduced_copy_and_mapped_back(tmp_path):
    from PIL import Image

    src = Image.open(facedata_path("lfw_deepfunneled", "Ana_Palacio", "Ana_Palacio_0001.jpg"))
    src.save(tmp_path / "small.png")
    src.resize((src.width * 8, src.height * 8), Image.LANCZOS).save(tmp_path / "big.png")  # 2000x2000
    _, (small, big) = run_scan([tmp_path / "small.png", tmp_path / "big.png"], tmp_path / "ws", workers=1)
    (fs,), (fb,) = small.faces, big.faces
    side = fb.box.right - fb.box.left
    for a, b in zip(fs.box.as_tuple(), fb.box.as_tuple(), strict=False):
        assert abs(a * 8 - b) <= 0.15 * side  # same face, box in the big photo's own pixels
    import numpy as np

    assert np.linalg.norm(np.array(fs.encoding) - np.array(fb.encoding)) < 0.25
