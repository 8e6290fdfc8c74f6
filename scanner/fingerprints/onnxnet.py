"""dlib's face recognition ResNet as an ONNX graph, built from the installed model file.

`build_model(net)` turns the network `dlibnet.load()` read into an ONNX model: input `chips`,
float32 [N, 3, 150, 150] already normalised ((pixel - channel average) / 256, planar RGB);
output `descriptors`, float32 [N, 128]. dlib's residual additions of unequal tensors (the
shortcut has fewer channels and, after a stride-2 convolution of an even size, more rows) become
a zero Pad of each side to the larger shape, then an Add, which is what dlib computes.
"""

from __future__ import annotations

import os

import numpy as np

from scanner.fingerprints.dlibnet import CHIP, DlibResNet


def normalise(averages: np.ndarray, chips: np.ndarray) -> np.ndarray:
    """[N, 150, 150, 3] uint8 chips -> the graph's float32 [N, 3, 150, 150] input."""
    x = (chips.astype(np.float32) - averages) / np.float32(256.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def build_model(net: DlibResNet):
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = iter(range(10**6))

    def name(prefix: str) -> str:
        return f"{prefix}_{next(counter)}"

    def const(array: np.ndarray, prefix: str) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(kind: str, inputs: list[str], **attrs) -> str:
        out = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def pad_to(x: str, shape: tuple, target: tuple) -> str:
        if shape == target:
            return x
        pads = [0, 0, 0, 0, 0, target[0] - shape[0], target[1] - shape[1], target[2] - shape[2]]
        return op("Pad", [x, const(np.array(pads, dtype=np.int64), "pads")], mode="constant")

    x, shape = "chips", (3, CHIP, CHIP)  # (C, H, W) of the current tensor, tracked to size the pads
    tags: dict[int, tuple[str, tuple]] = {}
    skipped = False
    layers = net.layers
    i = 0
    while i < len(layers):
        layer, p = layers[i], layers[i].params
        if layer.kind == "tag_or_skip":
            if i + 1 < len(layers) and layers[i + 1].kind == "tag_or_skip":
                tags[2] = (x, shape)
                (x, shape), skipped = tags[1], True
                i += 2
                continue
            tags[1], skipped = (x, shape), False
        elif layer.kind == "con":
            (py, px), (sy, sx) = p["padding"], p["stride"]
            out_c, _in_c, kh, kw = p["W"].shape
            x = op(
                "Conv",
                [x, const(p["W"].astype(np.float32), "w"), const(p["b"].astype(np.float32), "b")],
                kernel_shape=[kh, kw],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = (out_c, 1 + (shape[1] + 2 * py - kh) // sy, 1 + (shape[2] + 2 * px - kw) // sx)
        elif layer.kind == "affine":
            c = len(p["gamma"])
            x = op("Mul", [x, const(p["gamma"].astype(np.float32).reshape(1, c, 1, 1), "gamma")])
            x = op("Add", [x, const(p["beta"].astype(np.float32).reshape(1, c, 1, 1), "beta")])
        elif layer.kind == "relu":
            x = op("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            nr, nc = p["size"]
            if nr == 0:
                x, shape = (
                    op("GlobalAveragePool" if layer.kind == "avg_pool" else "GlobalMaxPool", [x]),
                    (shape[0], 1, 1),
                )
            else:
                sy, sx = p["stride"]
                x = op(
                    "MaxPool" if layer.kind == "max_pool" else "AveragePool",
                    [x],
                    kernel_shape=[nr, nc],
                    strides=[sy, sx],
                )
                shape = (shape[0], 1 + (shape[1] - nr) // sy, 1 + (shape[2] - nc) // sx)
        elif layer.kind == "add_prev":
            other, other_shape = tags[2] if skipped else tags[1]
            target = tuple(max(a, b) for a, b in zip(shape, other_shape, strict=False))
            x = op("Add", [pad_to(x, shape, target), pad_to(other, other_shape, target)])
            shape, skipped = target, False
        elif layer.kind == "fc":
            flat = op("Flatten", [x], axis=1)
            w = p["W"].astype(np.float32)
            x = op("MatMul", [flat, const(w, "fc")])
            shape = (w.shape[1],)
        i += 1
    nodes[-1].output[0] = "descriptors"
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["N", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", 128])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="facetrace")
    model.ir_version = 8
    return model


def import_onnxruntime():
    """Import ONNX Runtime with its telemetry off.

    Official ONNX Runtime builds carry Microsoft's 1DS telemetry on Linux too (1.31 here): on import
    they write a persistent device id and an event database under ~/.cache/Microsoft and a session
    file (.ses) into $TMPDIR, and queue events for upload. A forensic tool sends nothing anywhere
    and writes nothing outside its workspace. ORT_DISABLE_TELEMETRY=1, set before the first
    import, is ONNX Runtime's full opt-out (no uploader, events, device id or cache); the CLI also
    sets it at start, in case another package imports ONNX Runtime first.
    """
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


class OnnxDescriptors:
    """The network in ONNX Runtime: descriptors for a batch of chips.

    Only the channel averages of `net` are kept: ONNX Runtime holds its own copy of the weights,
    and the parsed network and the ONNX protobuf (about 120 MB together) are freed once the
    session exists.
    """

    def __init__(self, net: DlibResNet, threads: int = 1):
        ort = import_onnxruntime()
        self.averages = net.averages
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            build_model(net).SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """[N, 150, 150, 3] uint8 chips -> [N, 128] float64 descriptors."""
        out = self.session.run(["descriptors"], {"chips": normalise(self.averages, chips)})[0]
        return out.astype(np.float64)


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc only; elsewhere nothing happens).

    Building the graph frees about 80 MB in many small blocks that glibc keeps for reuse; every
    worker process would otherwise carry them for the whole scan.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)
