"""An operator's own ONNX face model (issue 18 item 6), tested with a real model file made here:
dlib's network exported to ONNX must reproduce the built-in engine's encodings and, once
calibrated, its findings; an orthogonal 256-d lift of it tests storage and indexes of other sizes
with the same real distances."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path

REF_PEOPLE = 60  # reference people for the calibration: the crowd is known from 60 other people on
ENROLLED = 22
PHOTOS = 3


def _run(*args, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _lfw_photos(n: int) -> list[Path]:
    lfw = facedata_path("lfw_deepfunneled")
    person = next(p for p in sorted(lfw.iterdir()) if p.is_dir() and len(list(p.iterdir())) >= n)
    return sorted(person.iterdir())[:n]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """dlib's exported network, and the same followed by a fixed 128 -> 256 orthonormal lift
    (distances unchanged: W W^T = I)."""
    import onnx
    from onnx import helper, numpy_helper

    base = tmp_path_factory.mktemp("models")
    dlib_file = base / "dlib_resnet.onnx"
    _run("engine", "export-dlib", dlib_file)
    model = onnx.load(str(dlib_file))
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(256, 128)))  # 256x128, orthonormal columns
    model.graph.initializer.append(numpy_helper.from_array(q.T.astype(np.float32), "lift"))
    model.graph.node.append(helper.make_node("MatMul", ["descriptors", "lift"], ["lifted"]))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("lifted", onnx.TensorProto.FLOAT, ["N", 256]))
    lifted = base / "lifted_256.onnx"
    onnx.save(model, str(lifted))
    return dlib_file, lifted


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """LFW people: a labelled reference folder (REF_PEOPLE x 2 photos), ENROLLED people to enroll
    (3 photos each) and a dump of their other photos plus single photos of 10 strangers."""
    lfw = facedata_path("lfw_deepfunneled")
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    many = [p for p in folders if len(list(p.iterdir())) >= PHOTOS + 2]
    base = tmp_path_factory.mktemp("people")
    ref, dump = base / "reference", base / "dump"
    for person in many[:REF_PEOPLE]:
        (ref / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:2]:
            shutil.copyfile(photo, ref / person.name / photo.name)
    enroll = {}
    for person in many[REF_PEOPLE : REF_PEOPLE + ENROLLED]:
        photos = sorted(person.iterdir())
        enroll[person.name] = photos[:PHOTOS]
        (dump / person.name).mkdir(parents=True)
        for photo in photos[PHOTOS : PHOTOS + 3]:
            shutil.copyfile(photo, dump / person.name / photo.name)
    strangers = [p for p in folders if len(list(p.iterdir())) == 1][:10]
    (dump / "strangers").mkdir()
    for person in strangers:
        photo = next(person.iterdir())
        shutil.copyfile(photo, dump / "strangers" / photo.name)
    return ref, enroll, dump


def _workspace(base: Path, people, model=None, *pin_args) -> tuple[Path, dict]:
    """Pin `model` (or keep the built-in engine), calibrate, enroll and scan; return (workspace,
    {relpath-free finding key: band})."""
    ref, enroll, dump = people
    ws = base
    if model is not None:
        _run("engine", "set", model, "--workspace", ws, *pin_args)
    _run("calibrate", ref, "--workspace", ws)
    subjects = {}
    for name, photos in enroll.items():
        out = _run("enroll", *photos, "--consent", "default", "--label", name, "--workspace", ws, ok=False)
        if out.exit_code == 0:
            subjects[out.output.split("subject ")[1].split()[0]] = name
    _run("scan", dump, "--workspace", ws, "--workers", "1", "--quiet")
    return ws, subjects


def _findings(ws: Path, subjects: dict) -> dict:
    from scanner.pipeline import open_store
    from scanner.registry import open_registry

    store, root = open_store(str(ws))
    reg = open_registry(store, root)
    out = {}
    for f in reg.store.findings():
        ev = f["evidence"]
        out[(Path(f["logical_path"]).name, subjects[f["subject_id"]], f["kind"])] = (
            f["band"],
            round(ev.get("distance", ev.get("face_distance", 0.0)), 4),
        )
    store.close()
    return out


@pytest.fixture(scope="module")
def builtin_and_models(tmp_path_factory, people, model_files):
    dlib_file, lifted = model_files
    base = tmp_path_factory.mktemp("workspaces")
    builtin = _findings(*_workspace(base / "builtin", people))
    exported = _workspace(
        base / "exported", people, dlib_file, "--alignment", "dlib-150", "--mean", "0", "--std", "1", "--no-l2"
    )
    lifted_ws = _workspace(
        base / "lifted",
        people,
        lifted,
        "--alignment",
        "dlib-150",
        "--mean",
        "0",
        "--std",
        "1",
        "--no-l2",
        "--label",
        "lifted",
    )
    return builtin, exported, lifted_ws


def test_exported_dlib_model_gives_the_builtin_encodings(model_files, tmp_path):
    from scanner import workers
    from scanner.fingerprints import modelfile
    from scanner.models import ScanOptions

    dlib_file, _ = model_files
    spec = modelfile.pin(tmp_path, dlib_file, alignment="dlib-150", mean=(0,), std=(1,), l2=False)
    assert (spec.size, spec.dim, spec.layout) == (150, 128, "nchw")
    photos = _lfw_photos(2) + [facedata_path("multiface", "fr_two_people.jpg")]
    model_options = ScanOptions(engine="model", model=spec, workers=1)
    for photo in photos:
        data = photo.read_bytes()
        builtin = workers.analyse_here(data, ScanOptions(workers=1)).faces
        mine = workers.analyse_here(data, model_options).faces
        assert [f.box for f in mine] == [f.box for f in builtin] and mine
        assert np.abs(np.asarray([f.encoding for f in mine]) - np.asarray([f.encoding for f in builtin])).max() < 1e-4


@pytest.mark.slow
def test_exported_model_reproduces_the_builtin_policys_findings(builtin_and_models):
    builtin, (ws, subjects), _ = builtin_and_models
    mine = _findings(ws, subjects)
    assert sum(band == "confident" for band, _ in builtin.values()) >= 15  # the workspaces really find people
    assert mine == builtin
    policy_file = json.loads((ws / "engine" / "policy.json").read_text())
    knots = policy_file["distance_scale"]
    # the calibrated scale of dlib's own network is the identity
    assert np.abs(np.asarray(knots["model"]) - np.asarray(knots["reference"])).max() < 1e-4
    assert policy_file["policy"].startswith("facetrace-policy-2026-12-v2+onnx-model:dlib_resnet+scale-")
    shown = _run("engine", "show", "--workspace", ws).output
    assert policy_file["policy"] in shown and "0.44 at 0.4400" in shown and "0.6 at 0.6000" in shown


@pytest.mark.slow
def test_a_256_d_model_is_stored_indexed_and_matched(builtin_and_models):
    builtin, _, (ws, subjects) = builtin_and_models
    mine = _findings(ws, subjects)
    assert {k: band for k, (band, _) in mine.items()} == {k: band for k, (band, _) in builtin.items()}
    manifest = json.loads((ws / "indexes" / "templates.faiss.json").read_text())
    assert manifest["dim"] == 256 and manifest["embedder"] == "onnx-model:lifted"


@pytest.mark.slow
def test_findings_and_scans_name_the_model_and_its_policy(builtin_and_models):
    from scanner.pipeline import open_store

    _, (ws, _subjects), _ = builtin_and_models
    store, _root = open_store(str(ws))
    scan = store.list_scans()[-1]
    sha = json.loads((ws / "engine" / "engine.json").read_text())["model"]["sha256"]
    assert scan["engine"]["embedder"] == "onnx-model:dlib_resnet" and scan["engine"]["embedder_version"] == sha
    assert scan["engine"]["model_files"]["dlib_resnet.onnx"] == sha
    assert scan["parameters"]["model"]["sha256"] == sha
    store.close()
    report = ws.parent / "exported-report"
    _run("report", "--workspace", ws, "--out", report)
    doc = json.loads((report / "report.json").read_text())
    text = json.dumps(doc)
    assert sha in text and "+scale-" in text


def test_an_uncalibrated_model_finds_copies_only(model_files, people, tmp_path):
    dlib_file, _ = model_files
    _ref, enroll, _dump = people
    ws = tmp_path / "ws"
    _run(
        "engine", "set", dlib_file, "--workspace", ws, "--alignment", "dlib-150", "--mean", "0", "--std", "1", "--no-l2"
    )
    name, photos = next(iter(enroll.items()))
    _run("enroll", *photos, "--consent", "default", "--workspace", ws)
    dump = tmp_path / "dump"
    dump.mkdir()
    shutil.copyfile(photos[0], dump / "copy.jpg")  # a copy of an enrolled photo
    other = sorted(photos[0].parent.iterdir())[PHOTOS]
    shutil.copyfile(other, dump / "other.jpg")  # another photo of the same person
    out = _run("scan", dump, "--workspace", ws, "--workers", "1", "--quiet").output
    assert "exact_copy" in out and "other.jpg" not in out.split("Registry:")[1]
    assert "no policy calibrated" in out


def test_the_pinned_file_is_checked_and_engines_are_not_mixed(model_files, tmp_path):
    dlib_file, _ = model_files
    copy = tmp_path / "model.onnx"
    shutil.copyfile(dlib_file, copy)
    ws = tmp_path / "ws"
    _run("engine", "set", copy, "--workspace", ws, "--alignment", "dlib-150", "--mean", "0", "--std", "1", "--no-l2")
    photo = _lfw_photos(1)[0]
    out = _run("scan", photo, "--workspace", ws, "--engine", "dlib", ok=False)
    assert out.exit_code == 2 and "cannot be compared" in out.output
    with open(copy, "ab") as fh:
        fh.write(b"\0")  # one byte more: another file
    out = _run("scan", photo, "--workspace", ws, "--workers", "1", ok=False)
    assert out.exit_code == 2 and "changed" in out.output
    out = _run("engine", "set", dlib_file, "--workspace", ws, ok=False)
    assert out.exit_code == 0  # nothing was stored yet: it can still change its model
    _run("scan", photo, "--workspace", ws, "--workers", "1", "--quiet")
    out = _run("engine", "reset", "--workspace", ws, ok=False)
    assert out.exit_code == 2 and "new workspace" in out.output


@pytest.mark.parametrize("bad, why", [("not onnx", "not an ONNX model"), (None, "one input")])
def test_bad_model_files_are_refused_with_the_reason(tmp_path, bad, why):
    import onnx
    from onnx import TensorProto, helper

    path = tmp_path / "bad.onnx"
    if bad is not None:
        path.write_bytes(bad.encode())
    else:  # two inputs
        graph = helper.make_graph(
            [helper.make_node("Add", ["a", "b"], ["c"])],
            "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "ab"],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # what this ONNX Runtime reads
        onnx.save(model, str(path))
    out = _run("engine", "set", path, "--workspace", tmp_path / "ws", ok=False)
    assert out.exit_code == 2 and why in out.output


def test_arcface_alignment_runs_the_model_on_template_crops(model_files, tmp_path):
    """The same network on ArcFace-template crops at 150 px: other crops, so other encodings of the
    same faces, of the model's size."""
    from scanner import workers
    from scanner.fingerprints import modelfile
    from scanner.models import ScanOptions

    dlib_file, _ = model_files
    spec = modelfile.pin(tmp_path, dlib_file, alignment="arcface", mean=(0,), std=(1,), l2=True)
    data = facedata_path("multiface", "fr_two_people.jpg").read_bytes()
    faces = workers.analyse_here(data, ScanOptions(engine="model", model=spec, workers=1)).faces
    builtin = workers.analyse_here(data, ScanOptions(workers=1)).faces
    assert len(faces) == len(builtin) == 2
    enc = np.asarray([f.encoding for f in faces])
    assert np.allclose(np.linalg.norm(enc, axis=1), 1.0)
    assert np.abs(enc - np.asarray([f.encoding for f in builtin])).max() > 1e-2
