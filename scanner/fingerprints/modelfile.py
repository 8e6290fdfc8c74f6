"""An operator's own face model: an ONNX file whose SHA-256 is pinned in the workspace.

Operators who hold a licence for a stronger face embedder (an ArcFace or SFace model exported to
ONNX, say) can scan, enroll and match with it instead of dlib's ResNet (docs/engines.md). The
model is named by a file, never downloaded, and never copied into the workspace:

- `pin(root, path, ...)` (`facetrace engine set MODEL.onnx`) checks the file (one float input of
  [N, 3, S, S] or [N, S, S, 3], one [N, D] output), runs it on a blank crop, and writes
  `<workspace>/engine/engine.json`: the file's absolute path, its SHA-256, how its input crop is
  made (`ModelSpec`) and the output's size. From then on every command of that workspace uses it.
- Every process that loads the model hashes the file again and refuses it when the SHA-256 is not
  the pinned one (`ModelChanged`): a replaced model file would silently change every encoding.
- `OnnxModelEngine` is the built-in ONNX engine (detector, landmarks, batching) with the
  operator's network in place of dlib's: the crop is either dlib's own 150x150 chip
  (`alignment="dlib-150"`, what dlib's network takes) or the ArcFace 5-point template crop at the
  model's input size (`alignment="arcface"`: scanner/fingerprints/arcface_align.py). Pixels are
  RGB or BGR, minus `mean`, divided by `std`, per channel; the output is optionally L2-normalised
  (cosine models: Euclidean distance between unit vectors orders pairs as cosine distance does).
- Its encodings are the model's own, not comparable with dlib's: the embedder's name is
  `onnx-model:<label>` and its version the model's SHA-256, stored beside every encoding and
  checked by every index. A model's distances mean nothing to the built-in policy: until
  `facetrace calibrate` has measured a policy for it on a labelled folder
  (scanner/matching/calibration.py), faces of that workspace earn no same-person finding.
- `export_dlib(path)` writes dlib's network (the built-in engine's) as such a file, normalisation
  inside: the reference an operator can check the path with (it must give the built-in engine's
  encodings and figures; tests/scanner/fingerprints/test_modelfile.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from scanner.errors import UsageError, WorkspaceError
from scanner.fingerprints.faces import NET_BATCH, OnnxFaceEngine
from scanner.models import ModelSpec

FOLDER = "engine"
MANIFEST = "engine.json"
ALIGNMENTS = ("dlib-150", "arcface")
MAX_LABEL = 48  # the embedder column holds 64 characters: "onnx-model:" + label
MAX_DIM = 4096
MAX_MODEL_BYTES = 2 << 30  # ONNX Runtime reads protobuf files of at most 2 GiB


class ModelChanged(UsageError):
    """The model file's SHA-256 is no longer the one pinned in the workspace."""

    http_status = 409  # the workspace's state, not the request, is in the way
    code = "model_changed"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(root: str | os.PathLike) -> Path:
    return Path(root) / FOLDER / MANIFEST


def pinned(root: str | os.PathLike | None) -> ModelSpec | None:
    """The workspace's pinned model, or None when it uses the built-in engine."""
    if root is None:
        return None
    try:
        record = json.loads(manifest_path(root).read_text())
    except (FileNotFoundError, NotADirectoryError):  # no pin (or no workspace yet: opening it says why)
        return None
    except OSError as exc:
        raise WorkspaceError(
            f"{manifest_path(root)} cannot be read ({exc.strerror}): check the workspace's permissions"
        ) from None
    except ValueError as exc:
        raise UsageError(
            f"{manifest_path(root)} is damaged ({exc}): restore it, or pin the model again in a new workspace"
        ) from None
    try:
        return ModelSpec.from_record(record["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{manifest_path(root)} is damaged ({exc!r}): restore it, or pin the model again in a new workspace"
        ) from None


def _triple(values, what: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not all(np.isfinite(values)):
        raise UsageError(f"--{what} takes one number or three (one per channel)")
    if what == "std" and any(v == 0 for v in values):
        raise UsageError("--std must not be 0")
    return values  # type: ignore[return-value]


def inspect(path: str | os.PathLike) -> tuple[str, int, int]:
    """Read an ONNX face model's input and output: (layout, input size, output size).

    Refuses, with the reason, anything but one float input of [N, 3, S, S] (or [N, S, S, 3]) and
    one [N, D] (or [N, D, 1, 1]) output."""
    session = _session(os.fspath(path))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise UsageError(
            f"{path}: a face model has one input (the crop) and one output (the embedding); this one has "
            f"{len(inputs)} input(s) and {len(outputs)} output(s)"
        )
    shape, kind = inputs[0].shape, inputs[0].type
    if kind != "tensor(float)" or len(shape) != 4:
        raise UsageError(
            f"{path}: the input must be a float32 image batch [N, 3, S, S] or [N, S, S, 3], not {kind} {shape}"
        )
    if shape[1] == 3 and isinstance(shape[2], int) and shape[2] == shape[3]:
        layout, size = "nchw", shape[2]
    elif shape[3] == 3 and isinstance(shape[1], int) and shape[1] == shape[2]:
        layout, size = "nhwc", shape[1]
    else:
        raise UsageError(f"{path}: the input must be a square image batch [N, 3, S, S] or [N, S, S, 3], not {shape}")
    if not 32 <= size <= 512:
        raise UsageError(f"{path}: an input of {size}x{size} pixels is not a face crop (32 to 512)")
    blank = np.zeros((1, 3, size, size) if layout == "nchw" else (1, size, size, 3), np.float32)
    out = np.asarray(session.run([outputs[0].name], {inputs[0].name: blank})[0])
    if out.ndim not in (2, 4) or out.shape[0] != 1 or (out.ndim == 4 and out.shape[2:] != (1, 1)):
        raise UsageError(f"{path}: the output must be one embedding per face ([N, D]), not {list(out.shape)}")
    dim = int(out.shape[1])
    if not 2 <= dim <= MAX_DIM:
        raise UsageError(f"{path}: an embedding of {dim} values is not supported (2 to {MAX_DIM})")
    return layout, int(size), dim


def pin(
    root: str | os.PathLike,
    path: str | os.PathLike,
    *,
    label: str | None = None,
    alignment: str = "arcface",
    channels: str = "rgb",
    mean=(127.5,),
    std=(128.0,),
    l2: bool = True,
) -> ModelSpec:
    """Check the model file, pin its SHA-256 and crop in the workspace; return what was pinned."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{path} is not a file: give the ONNX model file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise UsageError(f"{path} is larger than 2 GiB, which ONNX Runtime cannot read as one file")
    if alignment not in ALIGNMENTS:
        raise UsageError(f"unknown alignment {alignment!r}: use {' or '.join(ALIGNMENTS)}")
    if channels not in ("rgb", "bgr"):
        raise UsageError("channels must be rgb or bgr")
    sha = file_sha256(path)
    label = label if label is not None else path.stem
    label = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in label)[:MAX_LABEL]
    if not label:
        raise UsageError("the model's --label must hold at least one letter or digit")
    layout, size, dim = inspect(path)
    if alignment == "dlib-150" and size != 150:
        raise UsageError(f"{path}: dlib's chip is 150x150; this model takes {size}x{size} (use --alignment arcface)")
    spec = ModelSpec(
        str(path),
        sha,
        label,
        alignment,
        size,
        channels,
        _triple(mean, "mean"),
        _triple(std, "std"),
        layout,
        bool(l2),
        dim,
    )
    folder = manifest_path(root).parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"model": spec.as_record(), "pinned_at": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = folder / (MANIFEST + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(manifest_path(root))
    return spec


def unpin(root: str | os.PathLike) -> ModelSpec | None:
    """Go back to the built-in engine; return the model that was pinned (None: there was none)."""
    spec = pinned(root)
    if spec is not None:
        manifest_path(root).unlink()
    return spec


def verified(spec: ModelSpec) -> ModelSpec:
    """`spec`, once its file is there and still has the pinned SHA-256 (raises ModelChanged)."""
    try:
        sha = file_sha256(spec.path)
    except OSError as exc:
        raise ModelChanged(
            f"the workspace's model file {spec.path} cannot be read ({exc.strerror}): restore it, or "
            "pin another with `facetrace engine set` (encodings made by another model are not "
            "comparable)"
        ) from None
    if sha != spec.sha256:
        raise ModelChanged(
            f"the workspace's model file {spec.path} changed: SHA-256 {sha}, pinned {spec.sha256}. "
            "Restore the pinned file; a different model needs its own workspace"
        )
    return spec


@lru_cache(maxsize=4)
def _session(path: str):
    from scanner.fingerprints.onnxnet import import_onnxruntime

    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own classes for a bad file
        raise UsageError(
            f"{path} is not an ONNX model ONNX Runtime can run: {str(exc).splitlines()[0][:300]}"
        ) from None


def preprocess(spec: ModelSpec, crops: np.ndarray) -> np.ndarray:
    """[N, S, S, 3] uint8 RGB crops -> the model's float32 input."""
    x = crops.astype(np.float32)
    if spec.channels == "bgr":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    if spec.layout == "nchw":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


class OnnxModelEngine(OnnxFaceEngine):
    """The built-in engine's detection and alignment, the operator's network (ModelSpec)."""

    def __init__(self, options):
        from scanner.fingerprints.faces import _compiled_hog, _dlib_models, engine_versions

        spec = verified(options.model)
        self.options, self.spec = options, spec
        self.name, self.version = spec.embedder, spec.sha256
        self.runtime = f"onnxruntime {engine_versions()['onnxruntime']}; {spec.alignment} crop {spec.size}x{spec.size}"
        self._detect, self._landmarks = _dlib_models(options.detector)
        self._hog = _compiled_hog() if options.detector == "hog" else None
        self._session = _session(spec.path)
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def _chips(self, pixels, boxes):
        if self.spec.alignment == "dlib-150":
            return super()._chips(pixels, boxes)
        from PIL import Image

        from scanner.fingerprints.arcface_align import aligned_crops

        if not boxes:
            return np.empty((0, self.spec.size, self.spec.size, 3), np.uint8)
        return aligned_crops(Image.fromarray(pixels), boxes, self.spec.size)

    def describe(self, chips):
        if not len(chips):
            return np.empty((0, self.spec.dim))
        out = [
            np.asarray(
                self._session.run([self._output], {self._input: preprocess(self.spec, chips[i : i + NET_BATCH])})[0],
                dtype=np.float64,
            ).reshape(-1, self.spec.dim)
            for i in range(0, len(chips), NET_BATCH)
        ]
        x = np.concatenate(out)
        if self.spec.l2:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x


def workspace_options(root, options=None, *, explicit_engine: bool = False):
    """`options` (default ScanOptions()) with the workspace's engine: its pinned model, if any.

    Refuses a built-in engine chosen explicitly (`explicit_engine`, or `--engine dlib`) in a
    workspace that pinned a model: the scan's encodings could not be matched with the registry's."""
    from scanner.models import ScanOptions

    options = options or ScanOptions()
    spec = pinned(root)
    if spec is None:
        if options.engine == "model":
            raise UsageError("this workspace has no model pinned: run `facetrace engine set MODEL.onnx` first")
        return options
    if options.engine == "model" and options.model is not None:
        if options.model.sha256 != spec.sha256:
            raise UsageError(
                f"these options name the model {options.model.sha256[:12]}..., this workspace pinned "
                f"{spec.sha256[:12]}..."
            )
        return options
    if options.engine == "dlib" or explicit_engine:
        raise UsageError(
            f"this workspace's engine is the pinned model {spec.label} ({spec.sha256[:12]}...): its "
            f"encodings cannot be compared with --engine {options.engine}'s. Leave --engine out, or use "
            "another workspace"
        )
    return replace(options, engine="model", model=spec)


# -- the built-in network as a model file --------------------------------------------------------


def export_dlib(path: str | os.PathLike) -> str:
    """Write dlib's ResNet (the built-in engine's) as a standalone ONNX file; return its SHA-256.

    Input `pixels`: float32 [N, 3, 150, 150], RGB 0-255 (dlib's chip); the channel averages and
    the division by 256 are inside the graph. Pin it with `--alignment dlib-150 --mean 0 --std 1
    --no-l2`: it then gives the built-in engine's encodings."""
    from onnx import helper, numpy_helper

    from scanner.fingerprints.dlibnet import load
    from scanner.fingerprints.onnxnet import build_model

    net = load()
    model = build_model(net)
    graph = model.graph
    graph.input[0].name = "pixels"
    avg = numpy_helper.from_array(np.asarray(net.averages, np.float32).reshape(1, 3, 1, 1), "channel_averages")
    div = numpy_helper.from_array(np.array(256.0, np.float32), "divisor")
    graph.initializer.extend([avg, div])
    pre = [
        helper.make_node("Sub", ["pixels", "channel_averages"], ["centred"]),
        helper.make_node("Div", ["centred", "divisor"], ["chips"]),
    ]
    for node in reversed(pre):
        graph.node.insert(0, node)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)
    return file_sha256(path)
