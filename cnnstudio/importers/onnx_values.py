"""What the ONNX importer knows about each tensor while it walks the nodes.

A tensor is the output of a block (`Out`), or a step that only the node reading it can place:
the network's input after the normalisation in front of it (`Affine`), a padded image that the
next Conv or pooling folds in (`Padded`), global pooling that a flatten makes a vector and
anything else a 1×1 map (`GlobalPool`), an average pooling whose divisor a Div or Mul may
change into Keras' 'same' average, a sum or an L2 norm (`Window`), and the inner steps of L2
pooling and of a two-class output (`Square`, `SumSquares`, `OneMinus`). `ImporterState` holds
those values and the blocks made so far; `source()` places a pending step as its plain block
when a node reads it as an image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from cnnstudio.core.geometry import effective_kernel, resolve_padding
from cnnstudio.importers.common import block_id_for, module_path_name
from cnnstudio.importers.onnx_read import (
    OnnxInput,
    Shape,
    node_label,
    shapes_and_constants,
    standard_opset,
)

# activations a Conv2D or Dense block can apply itself (core/blocks/base.py FUSED_ACTIVATIONS
# with their default slopes; softmax stays a block before the Output)
FUSABLE = frozenset({"relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", "relu6",
                     "silu", "hardswish", "hardsigmoid"})
Pads = tuple[int, int, int, int]  # top, left, bottom, right (ONNX's order for two axes)
NO_PADS: Pads = (0, 0, 0, 0)


class NoBlock(Exception):
    """The node being read has no block; the message says why and what to do."""


@dataclass
class Spec:
    """A block to make (or, with `refusal`, a node that has none)."""

    id: str
    type: str | None
    name: str
    params: dict[str, Any]
    sources: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None  # the ONNX model's shape of its output, batch left out
    refusal: tuple[str, str, str] | None = None  # (node, op type, what to do)


@dataclass(frozen=True)
class Out:
    spec: str


@dataclass
class Affine:
    """The network's input after scale·x + shift per channel (its own normalisation)."""

    scale: np.ndarray
    shift: np.ndarray

    def same(self, other: Affine) -> bool:
        return bool(np.allclose(self.scale, other.scale) and np.allclose(self.shift, other.shift))

    def is_identity(self) -> bool:
        return bool(np.allclose(self.scale, 1.0) and np.allclose(self.shift, 0.0))

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        return -self.shift / self.scale, 1.0 / self.scale


@dataclass
class Padded:
    source: str
    pads: Pads
    fill: float
    node: onnx.NodeProto


@dataclass
class GlobalPool:
    source: str
    mode: str  # average or max
    node: onnx.NodeProto
    made: dict[str, str] = field(default_factory=dict)


@dataclass
class Window:
    """An average pooling: `counted` when every window divides by its whole area."""

    source: str
    kernel: list[int]
    stride: list[int]
    pads: Pads
    size: tuple[int, int]
    ceil_mode: bool
    counted: bool
    node: onnx.NodeProto
    made: dict[tuple[str, bool], str] = field(default_factory=dict)


@dataclass
class Square:
    source: str
    node: onnx.NodeProto


@dataclass
class SumSquares:
    window: Window
    node: onnx.NodeProto


@dataclass
class OneMinus:
    source: str
    node: onnx.NodeProto


Value = Out | Affine | Padded | GlobalPool | Window | Square | SumSquares | OneMinus

_ADVICE = {
    ("Resize", "Upsample", "ConvTranspose", "DepthToSpace", "SpaceToDepth"):
        "CNN Studio has no upsampling block: import a classifier, or leave this layer out",
    ("LSTM", "GRU", "RNN", "Scan", "Loop"):
        "recurrent layers and loops have no block: CNN Studio builds convolutional networks",
    ("InstanceNormalization", "LayerNormalization", "GroupNormalization",
     "MeanVarianceNormalization"):
        "this normalisation has no block; BatchNorm is the one CNN Studio has",
    ("PRelu",): "PReLU learns its slopes and has no block; use LeakyReLU instead",
    ("LogSoftmax",): "export the network without its final LogSoftmax: CNN Studio's loss "
                     "applies softmax itself",
    ("Transpose",): "reorders the axes: no block does that; export the network in (N, C, H, W) "
                    "order without it",
    ("If",): "decides at run time what to compute: CNN Studio networks always do the same",
}


def advice_for(op_type: str, domain: str = "") -> str:
    if domain not in ("", "ai.onnx"):
        return f"an operator of the '{domain}' domain, which only its own runtime knows"
    for ops, advice in _ADVICE.items():
        if op_type in ops:
            return advice
    return (f"CNN Studio has no block for {op_type}; leave it out of the exported network or "
            "replace it by a layer that has one")


def padding_choice(pads: Pads, size: Sequence[int], kernel: Sequence[int],
                   stride: Sequence[int], dilation: Sequence[int], ceil_mode: bool = False,
                   prefer_same: bool = True) -> str | list[int] | None:
    """The Conv2D / Pooling `padding` that pads as `pads` does: 'valid', 'same' or [ph, pw];
    None when none does. Padding after the last window (which no window reads) is ignored.
    At stride 1 'same' reads better than [k // 2, k // 2] unless `prefer_same` is off (an
    average that counts its padding, as PyTorch's AvgPool2d(padding=p) does)."""
    top, left, bottom, right = pads

    def used(axis: int, before: int, after: int) -> tuple[int, int]:
        if ceil_mode:
            return before, after
        span = size[axis] + before + after - effective_kernel(kernel[axis], dilation[axis])
        return (before, after - min(after, span % stride[axis])) if span >= 0 else (before, after)

    wanted = (used(0, top, bottom), used(1, left, right))

    def fits(mode: str | list[int]) -> bool:
        return all(used(axis, *resolve_padding(mode, size[axis], kernel[axis], stride[axis],
                                               dilation[axis], axis)) == wanted[axis]
                   for axis in (0, 1))

    if fits("valid"):
        return "valid"
    if prefer_same and list(stride) == [1, 1] and fits("same"):
        return "same"
    if fits([top, left]):
        return [top, left]
    return "same" if fits("same") else None


def close(a: float, b: float, tolerance: float = 1e-5) -> bool:
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def split_operands(consts: dict[str, np.ndarray],
                   node: onnx.NodeProto) -> tuple[str, np.ndarray | None, bool]:
    """(the computed operand, the constant one or None, whether the constant comes first)."""
    a, b = node.input[0], node.input[1]
    if b in consts and a not in consts:
        return a, consts[b], False
    if a in consts and b not in consts:
        return b, consts[a], True
    return a, None, False


def shown(shape: Sequence[int | None] | None) -> str:
    """A shape with its batch axis as N: (N, 64, 56, 56)."""
    if shape is None:
        return "of unknown shape"
    dims = ["N", *("?" if d is None else str(d) for d in list(shape)[1:])]
    return "(" + ", ".join(dims) + ")"


def per_channel(value: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """A constant as one number per channel of a rank-`rank` tensor (N, C, ...), or None
    when it varies along another axis."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim > rank:
        return None
    value = value.reshape((1,) * (rank - value.ndim) + value.shape)
    try:
        return np.broadcast_to(value, (1, channels) + (1,) * (rank - 2)).reshape(channels).copy()
    except ValueError:
        return None


class ImporterState:
    """The values of the tensors and the blocks made so far, for the node handlers."""

    def __init__(self, model: onnx.ModelProto, file_name: str, source: OnnxInput) -> None:
        self.model, self.file_name, self.source_input = model, file_name, source
        self.opset = standard_opset(model)
        self.shapes, self.consts = shapes_and_constants(model, source)
        self.producers: dict[str, onnx.NodeProto] = {
            name: node for node in model.graph.node for name in node.output if name}
        self.readers: dict[str, int] = {}
        for node in model.graph.node:
            for name in set(node.input):
                self.readers[name] = self.readers.get(name, 0) + 1
        for output in model.graph.output:
            self.readers[output.name] = self.readers.get(output.name, 0) + 1
        self.specs: dict[str, Spec] = {}
        self.taken: set[str] = set()
        self.refused: dict[str, str] = {}  # node label -> the id of its refusal
        self.values: dict[str, Value] = {}
        self.normalisation: Affine | None = None
        channels = source.dims[1]
        self.input_id = self.add("Input", source.name, {
            "channels": channels, "height": source.dims[2], "width": source.dims[3]}, []).spec
        self.values[source.name] = Affine(np.ones(channels), np.zeros(channels))

    # -- tensors ----------------------------------------------------------------------------

    def shape(self, tensor: str) -> Shape | None:
        """The tensor's full shape (batch first), None when unknown."""
        shape = self.shapes.get(tensor)
        return shape if shape is not None and all(d is not None for d in shape) else None

    def item_shape(self, tensor: str) -> tuple[int, ...] | None:
        shape = self.shape(tensor)
        return tuple(shape[1:]) if shape else None  # type: ignore[arg-type]

    def image_size(self, tensor: str) -> tuple[int, int]:
        shape = self.shape(tensor)
        if shape is None or len(shape) != 4:
            raise NoBlock(f"it needs an image (N, C, H, W) of known size, not {shown(shape)}")
        return shape[2], shape[3]  # type: ignore[return-value]

    def const(self, tensor: str, why: str = "it is computed, not stored") -> np.ndarray:
        if tensor not in self.consts:
            raise NoBlock(f"its input '{tensor}' must be a constant ({why})")
        return self.consts[tensor]

    def producer(self, tensor: str, *ops: str) -> onnx.NodeProto | None:
        node = self.producers.get(tensor)
        return node if node is not None and node.op_type in ops else None

    def value(self, tensor: str) -> Value:
        if tensor in self.values:
            return self.values[tensor]
        if tensor in self.consts:
            raise NoBlock(f"its input '{tensor}' is a constant where a block needs the image")
        raise NoBlock(f"its input '{tensor}' comes from nowhere CNN Studio can follow")

    # -- blocks -----------------------------------------------------------------------------

    def add(self, block_type: str, name: str, params: dict[str, Any], sources: list[str],
            weights: dict[str, np.ndarray] | None = None,
            shape: tuple[int, ...] | None = None) -> Out:
        name = module_path_name(name)
        spec = Spec(block_id_for(name, self.taken), block_type, name, params, sources,
                    dict(weights or {}), shape)
        self.specs[spec.id] = spec
        return Out(spec.id)

    def refuse(self, node: onnx.NodeProto, advice: str) -> Out:
        """A placeholder for a node without a block; it fails the import only if needed."""
        label = node_label(node)
        if label not in self.refused:
            sources = [spec for name in node.input for spec in self.upstream(name)]
            spec = Spec(block_id_for(label, self.taken), None, label, {}, sources,
                        refusal=(label, node.op_type, advice))
            self.specs[spec.id] = spec
            self.refused[label] = spec.id
        return Out(self.refused[label])

    def upstream(self, tensor: str) -> list[str]:
        """The blocks (and refusals) a tensor depends on, without placing pending steps: what
        a refusal hangs on, so that the import names every refused node an output needs."""
        value = self.values.get(tensor)
        if isinstance(value, Out):
            return [value.spec]
        if isinstance(value, Affine):
            return [self.input_id]
        if isinstance(value, SumSquares):
            return self.upstream(value.window.source)
        return self.upstream(value.source) if value is not None else []

    def source(self, tensor: str) -> str:
        """The block whose output stands for `tensor` as a block's input, placing a pending
        step as its plain block (or the refusal of the node that made it)."""
        value = self.value(tensor)
        if isinstance(value, Out):
            return value.spec
        if isinstance(value, Affine):
            if self.normalisation is None:
                self.normalisation = value
            elif not self.normalisation.same(value):
                raise NoBlock("the network reads its input both as given and rescaled; CNN "
                              "Studio's Input block gives one image")
            return self.input_id
        if isinstance(value, GlobalPool):
            return self.global_pool(value, flat=False)
        if isinstance(value, Window):
            try:
                return self.window(value, "average", value.counted)
            except NoBlock as refusal:
                return self.refuse(value.node, str(refusal)).spec
        advice = {
            Padded: "CNN Studio pads only inside a Conv2D or Pooling block; here the padded "
                    "image feeds another layer",
            Square: "squares the values: no block does that alone (L2 pooling does it inside)",
            SumSquares: "sums squares over windows: only as part of L2 pooling (√ of it)",
            OneMinus: "computes 1 − x: no block does that (a two-class sigmoid output does it "
                      "inside)",
        }[type(value)]
        return self.refuse(value.node, advice).spec

    def global_pool(self, pool: GlobalPool, flat: bool) -> str:
        """Global pooling as a vector (C,) for a flatten, else adaptive pooling to 1×1."""
        key = "global" if flat else "adaptive"
        if key not in pool.made:
            shape = self.item_shape(pool.node.output[0])
            params: dict[str, Any] = {"mode": f"global_{pool.mode}"}
            if flat:
                shape = shape[:1] if shape else None
            else:
                params = {"mode": f"adaptive_{pool.mode}", "output_size": [1, 1]}
            pool.made[key] = self.add("Pooling", node_label(pool.node), params,
                                      [self.source(pool.source)], shape=shape).spec
        return pool.made[key]

    def window(self, pool: Window, mode: str, counted: bool) -> str:
        """The Pooling block for a windowed average seen as `mode` (average, sum, l2)."""
        key = (mode, counted)
        if key not in pool.made:
            source = pool.source
            if mode == "l2":
                square = self.values[pool.source]
                assert isinstance(square, Square)
                source = square.source
            padding = padding_choice(pool.pads, pool.size, pool.kernel, pool.stride, [1, 1],
                                     pool.ceil_mode, prefer_same=not counted)
            if padding is None:
                raise NoBlock(f"its padding {list(pool.pads)} (top, left, bottom, right) is "
                              "neither even on both sides nor 'same'")
            params = {"mode": mode, "pool_size": pool.kernel, "padding": padding,
                      "stride": None if pool.stride == pool.kernel else pool.stride,
                      "ceil_mode": pool.ceil_mode, "count_padding": counted}
            pool.made[key] = self.add("Pooling", node_label(pool.node), params,
                                      [self.source(source)],
                                      shape=self.item_shape(pool.node.output[0])).spec
        return pool.made[key]


__all__ = ["FUSABLE", "NO_PADS", "Affine", "GlobalPool", "ImporterState", "NoBlock", "OneMinus",
           "Out", "Padded", "Pads", "Spec", "Square", "SumSquares", "Value", "Window",
           "advice_for", "close", "padding_choice", "per_channel", "shown", "split_operands"]
