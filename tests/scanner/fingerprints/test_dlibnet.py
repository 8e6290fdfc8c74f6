"""dlib's face recognition network read from the installed model file and run in numpy gives
face_recognition's own encodings (the reference for the faster engine of issue 8)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scanner.fingerprints.dlibnet import load
from tests.conftest import facedata_path

pytestmark = pytest.mark.facedata


def test_the_model_file_is_read_to_its_end_with_the_known_architecture():
    net = load()
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds[0] == "con" and kinds[-1] == "fc" and net.layers[-1].params["W"].shape == (256, 128)
    assert net.layers[0].params["W"].shape == (32, 3, 7, 7)


def test_descriptors_equal_face_recognition_encodings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dlib
        import face_recognition
        from face_recognition import api

    net = load()
    photos = [sorted(p.iterdir())[0] for p in sorted(facedata_path("lfw_deepfunneled").iterdir())[:6]]
    worst = 0.0
    for photo in photos:
        img = face_recognition.load_image_file(photo)
        (loc,) = face_recognition.face_locations(img)[:1]
        reference = np.asarray(face_recognition.face_encodings(img, [loc])[0])
        shape = api._raw_face_landmarks(img, [loc], model="small")[0]
        chip = np.ascontiguousarray(dlib.get_face_chip(img, shape, size=150, padding=0.25), dtype=np.uint8)
        worst = max(worst, float(np.abs(net.descriptor(chip) - reference).max()))
    assert worst <= 1e-4, worst  # measured: about 3e-7


def test_the_onnx_graph_gives_the_same_descriptors_in_a_batch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dlib
        import face_recognition
        from face_recognition import api

    from scanner.fingerprints.onnxnet import OnnxDescriptors

    engine = OnnxDescriptors(load())
    photos = [sorted(p.iterdir())[1] for p in sorted(facedata_path("lfw_deepfunneled").iterdir())[:6]]
    chips, refs = [], []
    for photo in photos:
        img = face_recognition.load_image_file(photo)
        locs = face_recognition.face_locations(img)
        if not locs:
            continue
        refs.append(np.asarray(face_recognition.face_encodings(img, [locs[0]])[0]))
        shape = api._raw_face_landmarks(img, [locs[0]], model="small")[0]
        chips.append(np.ascontiguousarray(dlib.get_face_chip(img, shape, size=150, padding=0.25), dtype=np.uint8))
    out = engine(np.stack(chips))
    assert out.shape == (len(chips), 128) and len(chips) >= 4
    assert float(np.abs(out - np.stack(refs)).max()) <= 1e-4  # measured: about 3.6e-7
