"""Known public datasets: items of a registered dataset are marked in a later dump, re-encoded
copies included, and photos from outside it are not."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from scanner.pipeline import open_store, stored_records
from scanner.profile.datasets import add_dataset
from scanner.profile.dump import build_profile
from tests.conftest import facedata_path, run_scan

pytestmark = pytest.mark.facedata


def test_known_dataset_items_are_marked_in_a_later_dump(tmp_path):
    known = facedata_path("lfw_deepfunneled")
    lfw = sorted(p for p in known.iterdir() if p.is_dir())
    ws = tmp_path / "ws"
    store, _root = open_store(str(ws))
    out = add_dataset(store, "lfw", str(known))
    assert out["items"] == out["images"] == sum(1 for p in known.rglob("*") if p.is_file()) == 1896

    dump = tmp_path / "dump"
    dump.mkdir()
    a, b = sorted(lfw[0].iterdir())[:2]
    shutil.copy(a, dump / "exact.jpg")
    Image.open(b).resize((180, 180)).save(dump / "reencoded.jpg", quality=60)
    singletons = sorted(p for p in facedata_path("lfw_singletons").iterdir() if p.is_dir())
    for person in singletons[:2]:  # LFW people who are not in lfw_deepfunneled
        p = sorted(person.iterdir())[0]
        shutil.copy(p, dump / f"other_{p.name}")
    summary, _ = run_scan([dump], ws, workers=1)
    assert summary.counts["known_items"] == 2
    marks = {r["relpath"]: r["known_source"] for r in stored_records(store, summary.scan_id)}
    assert marks["exact.jpg"] == {"dataset": "lfw", "item": f"{lfw[0].name}/{a.name}", "match": "exact"}
    assert marks["reencoded.jpg"]["match"] == "near_copy" and marks["reencoded.jpg"]["item"].endswith(b.name)
    assert all(v is None for k, v in marks.items() if k.startswith("other_"))
    profile = build_profile(store, summary.scan_id)
    assert {(k["dataset"], k["match"], k["members"]) for k in profile["known_datasets"]} == {
        ("lfw", "exact", 1),
        ("lfw", "near_copy", 1),
    }
    assert "2 of 4 members come from known public datasets" in profile["bundle"]["caveat"]


def test_adding_a_dataset_marks_earlier_scans_too(tmp_path):
    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    dump = tmp_path / "dump"
    dump.mkdir()
    shutil.copy(person[0], dump / "a.jpg")
    summary, _ = run_scan([dump], tmp_path / "ws", workers=1)
    store, _root = open_store(str(tmp_path / "ws"))
    out = add_dataset(store, "ana", str(person[0].parent))
    assert out["marked"] == {summary.scan_id: 1}
