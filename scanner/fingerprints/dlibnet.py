"""dlib's face recognition ResNet, read from the model file face_recognition_models installed.

This module parses `dlib_face_recognition_resnet_model_v1.dat` in pure Python (no dlib, no
compiler) and runs the network in numpy. The descriptor equals dlib's to within about 3e-7 (max
abs), measured against `face_recognition.face_encodings` on LFW faces
(tests/scanner/fingerprints/test_dlibnet.py). It is the reference from which the ONNX embedding
engine's graph is built (onnxnet.py); it is not itself fast.

The file format (dlib/serialize.h and dlib/dnn/core.h, layers.h, input.h, loss.h):
- int: a control byte (low 4 bits: number of bytes; 0x80: negative), then the magnitude,
  little-endian. float/double: an int mantissa then an int exponent, value = m * 2**e. string:
  an int length then bytes. bool: one byte, ASCII '1' or '0'.
- tensor: version 2, n, k, nr, nc, then n*k*nr*nc raw little-endian float32. alias tensor (a
  shape only): version 1, n, k, nr, nc.
- The loss layer first (version 1, "loss_metric_2", margin, distance threshold). Then every
  layer wrapper writes its version before its sub-network, so the versions come outermost
  first: 2 for a layer, 1 for a tag or a skip (they cannot be told apart), 3 for the layer on the
  input. Then the input layer ("input_rgb_image_sized": channel averages, size). Then each
  layer's details, innermost first, each followed by 3 bools and 3 tensors of training state
  (the layer on the input adds one int).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHIP = 150


class ModelFormatError(ValueError):
    """The model file is not the network this reader knows."""


class _Reader:
    def __init__(self, data: bytes):
        self.b, self.p = data, 0

    def int(self) -> int:
        c = self.b[self.p]
        n = c & 0x0F
        if n > 8 or c & 0x70:
            raise ModelFormatError(f"bad integer at byte {self.p}")
        v = int.from_bytes(self.b[self.p + 1 : self.p + 1 + n], "little")
        self.p += 1 + n
        return -v if c & 0x80 else v

    def float(self) -> float:
        mantissa = self.int()
        return float(mantissa) * 2.0 ** self.int()

    def string(self) -> str:
        n = self.int()
        s = self.b[self.p : self.p + n].decode("latin-1")
        self.p += n
        return s

    def bool(self) -> bool:
        c = self.b[self.p]
        self.p += 1
        if c not in (0x30, 0x31):
            raise ModelFormatError(f"bad bool at byte {self.p - 1}")
        return c == 0x31

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ModelFormatError(f"unknown tensor version at byte {self.p}")
        shape = (self.int(), self.int(), self.int(), self.int())
        count = int(np.prod(shape))
        a = np.frombuffer(self.b, dtype="<f4", count=count, offset=self.p).copy()
        self.p += 4 * count
        return a.reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise ModelFormatError(f"unknown alias tensor version at byte {self.p}")
        return (self.int(), self.int(), self.int(), self.int())


@dataclass
class Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag_or_skip
    params: dict = field(default_factory=dict)


@dataclass
class DlibResNet:
    averages: np.ndarray  # mean R, G, B subtracted from the input
    layers: list[Layer]  # innermost (the first 7x7 conv) to outermost (the fc)

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d descriptor of one 150x150 RGB uint8 face chip (dlib.get_face_chip's output)."""
        chip = np.asarray(chip)
        if chip.shape != (CHIP, CHIP, 3) or chip.dtype != np.uint8:
            raise ValueError(f"a {CHIP}x{CHIP} RGB uint8 chip is needed, not {chip.shape} {chip.dtype}")
        x = ((chip.astype(np.float32) - self.averages) / np.float32(256.0)).transpose(2, 0, 1).astype(np.float64)
        return self._forward(x)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        tags: dict[int, np.ndarray] = {}
        skipped = False
        layers = self.layers
        i = 0
        while i < len(layers):
            layer, p = layers[i], layers[i].params
            if layer.kind == "tag_or_skip":
                if i + 1 < len(layers) and layers[i + 1].kind == "tag_or_skip":
                    # skip1<tag2<block>>: remember the block's output, continue from tag1's
                    tags[2], x, skipped = x, tags[1], True
                    i += 2
                    continue
                tags[1], skipped = x, False
            elif layer.kind == "con":
                x = _conv(x, p)
            elif layer.kind == "affine":
                x = x * p["gamma"][:, None, None] + p["beta"][:, None, None]
            elif layer.kind == "relu":
                x = np.maximum(x, 0.0)
            elif layer.kind in ("max_pool", "avg_pool"):
                x = _pool(x, p, layer.kind)
            elif layer.kind == "add_prev":
                x = _add(x, tags[2] if skipped else tags[1])
                skipped = False
            elif layer.kind == "fc":
                x = x.reshape(-1) @ p["W"]
            i += 1
        return x


def load(path: str | None = None) -> DlibResNet:
    """Parse the model file (default: the one face_recognition_models installed)."""
    if path is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import face_recognition_models

        path = face_recognition_models.face_recognition_model_location()
    with open(path, "rb") as f:
        r = _Reader(f.read())
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise ModelFormatError("not dlib's metric-learning network (loss_metric_2)")
    r.float(), r.float()  # margin and distance threshold: training-time values
    wrappers = []
    while True:
        v = r.int()
        if v not in (1, 2, 3):
            raise ModelFormatError(f"unexpected layer version {v} at byte {r.p}")
        wrappers.append(v)
        if v == 3:
            break
    if r.string() != "input_rgb_image_sized":
        raise ModelFormatError("the network's input is not input_rgb_image_sized")
    averages = np.array([r.float(), r.float(), r.float()], dtype=np.float32)
    if (r.int(), r.int()) != (CHIP, CHIP):
        raise ModelFormatError(f"the network's input is not {CHIP}x{CHIP}")
    layers = []
    for v in reversed(wrappers):
        if v == 1:
            layers.append(Layer("tag_or_skip"))
            continue
        layers.append(_details(r, r.string()))
        r.bool(), r.bool(), r.bool()
        r.tensor(), r.tensor(), r.tensor()
        if v == 3:
            r.int()  # the input layer's sample expansion factor
    if r.p != len(r.b):
        raise ModelFormatError(f"{len(r.b) - r.p} bytes left after the last layer")
    return DlibResNet(averages, layers)


def _details(r: _Reader, name: str) -> Layer:
    if name == "con_4":
        params = r.tensor().ravel()
        _filters, _nr, _nc = r.int(), r.int(), r.int()
        p = {"stride": (r.int(), r.int()), "padding": (r.int(), r.int())}
        wshape, bshape = r.alias(), r.alias()
        for _ in range(4):
            r.float()  # learning-rate and weight-decay multipliers
        n = int(np.prod(wshape))
        p["W"] = params[:n].reshape(wshape).astype(np.float64)  # (out, in, kh, kw)
        p["b"] = params[n : n + int(np.prod(bshape))].astype(np.float64)
        return Layer("con", p)
    if name == "affine_":
        params = r.tensor().ravel()
        g, b = r.alias(), r.alias()
        if r.int() != 0:
            raise ModelFormatError("only per-channel affine layers are known")
        n = int(np.prod(g))
        return Layer(
            "affine",
            {"gamma": params[:n].astype(np.float64), "beta": params[n : n + int(np.prod(b))].astype(np.float64)},
        )
    if name in ("relu_", "add_prev_"):
        return Layer(name.rstrip("_"))
    if name in ("max_pool_2", "avg_pool_2"):
        p = {"size": (r.int(), r.int()), "stride": (r.int(), r.int()), "padding": (r.int(), r.int())}
        if p["padding"] != (0, 0):
            raise ModelFormatError("padded pooling is not known")
        return Layer(name[:-2], p)
    if name == "fc_2":
        _outputs, _inputs = r.int(), r.int()
        params = r.tensor().ravel()
        w, _b = r.alias(), r.alias()
        if r.int() != 1:
            raise ModelFormatError("only the bias-free fully connected layer is known")
        for _ in range(4):
            r.float()
        return Layer("fc", {"W": params[: int(np.prod(w))].reshape(w[0], w[1]).astype(np.float64)})
    raise ModelFormatError(f"unknown layer {name!r} at byte {r.p}")


def _conv(x: np.ndarray, p: dict) -> np.ndarray:
    """Cross-correlation with symmetric zero padding; output 1 + (H + 2p - k) // s."""
    from numpy.lib.stride_tricks import sliding_window_view

    (py, px), (sy, sx) = p["padding"], p["stride"]
    if py or px:
        x = np.pad(x, ((0, 0), (py, py), (px, px)))
    _o, _i, kh, kw = p["W"].shape
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sy, ::sx]
    return np.tensordot(p["W"], windows, axes=([1, 2, 3], [0, 3, 4])) + p["b"][:, None, None]


def _pool(x: np.ndarray, p: dict, kind: str) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    nr, nc = p["size"]
    if nr == 0:  # pool over everything
        nr, nc = x.shape[1], x.shape[2]
    windows = sliding_window_view(x, (nr, nc), axis=(1, 2))[:, :: p["stride"][0], :: p["stride"][1]]
    return windows.max(axis=(3, 4)) if kind == "max_pool" else windows.mean(axis=(3, 4))


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add of unequal tensors: the larger shape, the smaller zero-padded at its end."""
    out = np.zeros(tuple(max(s, t) for s, t in zip(a.shape, b.shape, strict=False)))
    out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out
