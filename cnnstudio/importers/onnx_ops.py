"""One handler per ONNX operator: the block a node becomes, or the step it leaves pending.

Each handler takes the importer's state and the node and returns the value of the node's
output (or of each output); NoBlock says why the node has no block. Operands that newer opsets
pass as inputs and older ones as attributes (Clip's range, Pad's pads, Squeeze's axes, the axes
of ReduceMean) are read both ways, so opsets 11 to 21 import alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from cnnstudio.core import registry
from cnnstudio.importers.onnx_read import as_float, attrs, const_attr, node_label
from cnnstudio.importers.onnx_patterns import gated, gelu_input, local_response_norm
from cnnstudio.importers.onnx_values import (
    NO_PADS,
    Affine,
    GlobalPool,
    ImporterState,
    NoBlock,
    OneMinus,
    Out,
    Padded,
    Pads,
    Square,
    SumSquares,
    Value,
    Window,
    close,
    padding_choice,
    per_channel,
    shown,
    split_operands,
)

Handler = Callable[[ImporterState, onnx.NodeProto], "Value | list[Value]"]
HANDLERS: dict[str, Handler] = {}
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.BFLOAT16}
SELU_ALPHA, SELU_GAMMA = 1.6732632, 1.050701
_MIN_FILL = -1e30  # a Pad before max pooling must fill with −∞ (or a value this low)


def handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = handler
        return handler

    return register


def _pair(values: Any, default: list[int], what: str) -> list[int]:
    values = list(values) if values is not None else default
    if len(values) != 2:
        raise NoBlock(f"its {what} has {len(values)} axes: CNN Studio works on images (2 axes)")
    return [int(v) for v in values]


def _activation(im: ImporterState, node: onnx.NodeProto, function: str, tensor: str,
                **params: float) -> Out:
    return im.add("Activation", node_label(node), {"function": function, **params},
                  [im.source(tensor)], shape=im.item_shape(node.output[0]))


# -- convolution, pooling ------------------------------------------------------------------


def _unpadded(im: ImporterState, tensor: str, fill: float) -> tuple[str, Pads]:
    """The tensor before a Pad that the reading node folds in, and that Pad's pads."""
    value = im.values.get(tensor)
    if not isinstance(value, Padded):
        return tensor, NO_PADS
    same_fill = value.fill == fill or (fill == -math.inf and value.fill <= _MIN_FILL)
    if not same_fill:
        wanted = "−∞" if fill == -math.inf else f"{fill:g}"
        raise NoBlock(f"the Pad before it fills with {value.fill:g}; this layer pads with "
                      f"{wanted}")
    return value.source, value.pads


def _own_pads(options: dict[str, Any], size: tuple[int, int], kernel: list[int],
              stride: list[int], dilation: list[int]) -> Pads:
    auto = options.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for axis in (0, 1):
            out = -(-size[axis] // stride[axis])
            span = dilation[axis] * (kernel[axis] - 1) + 1
            total = max((out - 1) * stride[axis] + span - size[axis], 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    if auto == "VALID":
        return NO_PADS
    pads = [int(p) for p in options.get("pads", NO_PADS)]
    if len(pads) != 4:
        raise NoBlock("its padding is not that of an image")
    return pads[0], pads[1], pads[2], pads[3]


def _add_pads(a: Pads, b: Pads) -> Pads:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def _uneven(pads: Pads) -> NoBlock:
    return NoBlock(f"its padding {list(pads)} (top, left, bottom, right) is neither even on "
                   "both sides nor 'same'; export the network with symmetric padding")


@handles("Conv")
def conv(im: ImporterState, node: onnx.NodeProto) -> Value:
    options = attrs(node)
    weight = im.const(node.input[1], "the weights are computed, not stored")
    if weight.ndim != 4:
        raise NoBlock(f"a {weight.ndim - 2}-D convolution: CNN Studio convolves images (2-D)")
    bias = im.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    source, pads = _unpadded(im, node.input[0], 0.0)
    size = im.image_size(source)
    kernel = _pair(options.get("kernel_shape"), list(weight.shape[2:]), "kernel")
    stride = _pair(options.get("strides"), [1, 1], "stride")
    dilation = _pair(options.get("dilations"), [1, 1], "dilation")
    pads = _add_pads(pads, _own_pads(options, size, kernel, stride, dilation))
    padding = padding_choice(pads, size, kernel, stride, dilation)
    if padding is None:
        raise _uneven(pads)
    group, filters = int(options.get("group", 1)), int(weight.shape[0])
    params = {"filters": filters, "kernel": kernel, "stride": stride, "padding": padding,
              "dilation": dilation, "groups": group, "bias": bias is not None}
    channels = im.shape(source)[1]  # type: ignore[index]
    if group > 1 and group == channels == filters and registry.get("Conv2D").has_param(
            "depthwise"):
        params["depthwise"] = True
    weights = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return im.add("Conv2D", node_label(node), params, [im.source(source)], weights,
                  im.item_shape(node.output[0]))


@handles("MaxPool", "AveragePool")
def pool(im: ImporterState, node: onnx.NodeProto) -> Value | list[Value]:
    options = attrs(node)
    kernel = _pair(options.get("kernel_shape"), [], "window")
    if any(int(d) != 1 for d in options.get("dilations", [1, 1])):
        raise NoBlock("dilated pooling has no block")
    stride = _pair(options.get("strides"), [1, 1], "stride")
    ceil_mode = bool(options.get("ceil_mode", 0))
    is_max = node.op_type == "MaxPool"
    source, outer = _unpadded(im, node.input[0], -math.inf if is_max else 0.0)
    size = im.image_size(source)
    own = _own_pads(options, size, kernel, stride, [1, 1])
    pads = _add_pads(outer, own)
    if is_max:
        padding = padding_choice(pads, size, kernel, stride, [1, 1], ceil_mode)
        if padding is None:
            raise _uneven(pads)
        params = {"mode": "max", "pool_size": kernel, "padding": padding, "ceil_mode": ceil_mode,
                  "stride": None if stride == kernel else stride}
        out = im.add("Pooling", node_label(node), params, [im.source(source)],
                     shape=im.item_shape(node.output[0]))
        extra = [im.refuse(node, "its second output (the positions of the maxima) has no "
                                 "block")] if len(node.output) > 1 and node.output[1] else []
        return [out, *extra]
    counts_own = bool(options.get("count_include_pad", 0))
    if any(outer) and any(own) and not counts_own:
        raise NoBlock("it counts some of its padding (a Pad before it) and not the rest")
    counted = not any(pads) or any(outer) or counts_own
    return Window(source, kernel, stride, pads, size, ceil_mode, counted, node)


@handles("Pad")
def pad(im: ImporterState, node: onnx.NodeProto) -> Value:
    options = attrs(node)
    if options.get("mode", "constant") != "constant":
        raise NoBlock(f"'{options['mode']}' padding has no block (only zeros, inside Conv2D "
                      "and Pooling)")
    raw = const_attr(node, im.consts, 1, "pads")
    fill = const_attr(node, im.consts, 2, "value", 0.0)
    if raw is None or fill is None:
        raise NoBlock("its pads or fill value are computed from the image")
    shape = im.shape(node.input[0])
    rank = len(shape) if shape else 4
    pads = [int(p) for p in np.asarray(raw).reshape(-1)]
    axes = list(range(rank))
    if len(node.input) > 3 and node.input[3]:
        axes = [int(a) % rank for a in im.const(node.input[3]).reshape(-1)]
    before, after = dict(zip(axes, pads[:len(axes)])), dict(zip(axes, pads[len(axes):]))
    if rank != 4 or any(before.get(a, 0) or after.get(a, 0) for a in (0, 1)) \
            or any(p < 0 for p in pads):
        raise NoBlock("it pads something other than the height and width of an image")
    own: Pads = (before.get(2, 0), before.get(3, 0), after.get(2, 0), after.get(3, 0))
    fills = np.asarray(fill).reshape(-1)
    source, fill_value = node.input[0], float(fills[0]) if fills.size else 0.0
    inner = im.values.get(source)
    if isinstance(inner, Padded) and inner.fill == fill_value:
        source, own = inner.source, _add_pads(inner.pads, own)
    im.value(source)
    return Padded(source, own, fill_value, node)


@handles("GlobalAveragePool", "GlobalMaxPool")
def global_pool(im: ImporterState, node: onnx.NodeProto) -> Value:
    im.image_size(node.input[0])
    return GlobalPool(node.input[0], "max" if node.op_type == "GlobalMaxPool" else "average",
                      node)


@handles("ReduceMean", "ReduceMax")
def reduce(im: ImporterState, node: onnx.NodeProto) -> Value:
    im.image_size(node.input[0])
    axes = const_attr(node, im.consts, 1, "axes")
    if axes is None or sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) != [2, 3]:
        raise NoBlock("only a mean or maximum over the height and width (global pooling) has "
                      "a block")
    pooled = GlobalPool(node.input[0], "max" if node.op_type == "ReduceMax" else "average",
                        node)
    if attrs(node).get("keepdims", 1):
        return pooled
    return Out(im.global_pool(pooled, flat=True))


# -- dense, normalisation -----------------------------------------------------------------


@handles("Gemm")
def gemm(im: ImporterState, node: onnx.NodeProto) -> Value:
    options = attrs(node)
    if options.get("transA", 0):
        raise NoBlock("it transposes its input (transA): no block does that")
    weight = im.const(node.input[1], "the weights are computed, not stored")
    weight = (weight if options.get("transB", 0) else weight.T) * options.get("alpha", 1.0)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = np.broadcast_to(im.const(node.input[2]), (1, weight.shape[0])).reshape(-1) \
            * options.get("beta", 1.0)
    return _dense(im, node, weight, bias)


@handles("MatMul")
def matmul(im: ImporterState, node: onnx.NodeProto) -> Value:
    weight = im.const(node.input[1], "a product of two computed tensors has no block")
    if weight.ndim != 2:
        raise NoBlock("only a vector times a weight matrix (a Dense layer) has a block")
    return _dense(im, node, weight.T, None)


def _dense(im: ImporterState, node: onnx.NodeProto, weight: np.ndarray,
           bias: np.ndarray | None) -> Value:
    shape = im.shape(node.input[0])
    if shape is None or len(shape) != 2:
        raise NoBlock(f"a Dense layer needs a vector (N, F), this input is {shown(shape)}")
    params = {"units": int(weight.shape[0]), "bias": bias is not None}
    weights = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return im.add("Dense", node_label(node), params, [im.source(node.input[0])], weights,
                  im.item_shape(node.output[0]))


@handles("BatchNormalization")
def batchnorm(im: ImporterState, node: onnx.NodeProto) -> Value:
    options = attrs(node)
    if options.get("training_mode", 0) or any(node.output[1:]):
        raise NoBlock("it is exported in training mode; export the network in eval mode")
    scale, shift, mean, var = (im.const(name) for name in node.input[1:5])
    params = {"eps": as_float(options.get("epsilon", 1e-5)),
              "momentum": round(1.0 - as_float(options.get("momentum", 0.9)), 7)}
    weights = {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var}
    return im.add("BatchNorm", node_label(node), params, [im.source(node.input[0])], weights,
                  im.item_shape(node.output[0]))


@handles("LRN")
def lrn(im: ImporterState, node: onnx.NodeProto) -> Value:
    options = attrs(node)
    params = {"size": int(options["size"]), "alpha": as_float(options.get("alpha", 1e-4)),
              "beta": as_float(options.get("beta", 0.75)),
              "k": as_float(options.get("bias", 1.0))}
    return im.add("LocalResponseNorm", node_label(node), params, [im.source(node.input[0])],
                  shape=im.item_shape(node.output[0]))


# -- activations ---------------------------------------------------------------------------

_PLAIN = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}


@handles(*_PLAIN)
def plain_activation(im: ImporterState, node: onnx.NodeProto) -> Value:
    return _activation(im, node, _PLAIN[node.op_type], node.input[0])


@handles("LeakyRelu", "Elu", "Selu", "HardSigmoid", "Gelu")
def activation(im: ImporterState, node: onnx.NodeProto) -> Value:
    options, op = attrs(node), node.op_type
    if op == "LeakyRelu":
        slope = as_float(options.get("alpha", 0.01))
        if not 0 <= slope <= 1:
            raise NoBlock(f"a leaky slope of {slope:g}: the Activation block takes 0 to 1")
        return _activation(im, node, "leaky_relu", node.input[0], negative_slope=slope)
    if op == "Elu":
        return _activation(im, node, "elu", node.input[0],
                           alpha=as_float(options.get("alpha", 1.0)))
    if op == "Selu":
        if not (close(options.get("alpha", SELU_ALPHA), SELU_ALPHA)
                and close(options.get("gamma", SELU_GAMMA), SELU_GAMMA)):
            raise NoBlock("SELU with other constants than the standard ones has no block")
        return _activation(im, node, "selu", node.input[0])
    if op == "Gelu":
        if options.get("approximate", "none") != "none":
            raise NoBlock("the tanh approximation of GELU has no block (only the exact one)")
        return _activation(im, node, "gelu", node.input[0])
    if not (close(options.get("alpha", 0.2), 1 / 6) and close(options.get("beta", 0.5), 0.5)):
        raise NoBlock("only the hard sigmoid x/6 + 1/2 (PyTorch's) has a block")
    return _activation(im, node, "hardsigmoid", node.input[0])


@handles("Clip")
def clip(im: ImporterState, node: onnx.NodeProto) -> Value:
    low = const_attr(node, im.consts, 1, "min", -math.inf)
    high = const_attr(node, im.consts, 2, "max", math.inf)
    if low is None or high is None:
        raise NoBlock("its range is computed from the image")
    low, high = float(np.asarray(low).reshape(-1)[0]), float(np.asarray(high).reshape(-1)[0])
    value = im.value(node.input[0])
    if isinstance(value, SumSquares) and 0 <= low <= 1e-20 and high == math.inf:
        return value  # L2 pooling keeps √ away from 0
    if low == 0 and high == 6:
        return _activation(im, node, "relu6", node.input[0])
    if low == 0 and high == math.inf:
        return _activation(im, node, "relu", node.input[0])
    raise NoBlock(f"clipping to [{low:g}, {high:g}] has no block (ReLU6 clips to [0, 6])")


@handles("Softmax")
def softmax(im: ImporterState, node: onnx.NodeProto) -> Value:
    shape = im.shape(node.input[0])
    rank = len(shape) if shape else 0
    axis = int(attrs(node).get("axis", 1 if im.opset < 13 else -1)) % max(rank, 1)
    if not (rank == 2 and axis == 1) and not (rank == 4 and axis == 1 and im.opset >= 13):
        raise NoBlock("only a softmax across the classes of a vector (or across channels) has "
                      "a block")
    return _activation(im, node, "softmax", node.input[0])


@handles("Sqrt")
def sqrt(im: ImporterState, node: onnx.NodeProto) -> Value:
    value = im.value(node.input[0])
    if isinstance(value, SumSquares):
        return Out(im.window(value.window, "l2", True))
    raise NoBlock("a square root has no block (L2 pooling takes one inside)")


# -- arithmetic ----------------------------------------------------------------------------


def _rescaled(im: ImporterState, value: Value, constant: np.ndarray, op: str) -> Affine | None:
    """The input's normalisation continued by `op` with a per-channel constant."""
    if not isinstance(value, Affine):
        return None
    numbers = per_channel(constant, len(value.scale), 4)
    if numbers is None:
        return None
    scale, shift = value.scale, value.shift
    if op == "Add":
        return Affine(scale, shift + numbers)
    if op == "Sub":
        return Affine(scale, shift - numbers)
    if op == "Mul":
        return Affine(scale * numbers, shift * numbers)
    return Affine(scale / numbers, shift / numbers)


def _merge_shapes(im: ImporterState, node: onnx.NodeProto, scales: bool) -> None:
    a, b = (im.shape(name) for name in node.input[:2])
    if a is None or b is None or a == b:
        return
    if scales and len(a) == len(b) == 4 and a[:2] == b[:2] and (a[2:] == (1, 1)
                                                                or b[2:] == (1, 1)):
        return
    raise NoBlock(f"it broadcasts {shown(a)} with {shown(b)}: the block needs equal shapes"
                  + (" (or an image and one weight per channel)" if scales else ""))


def _distinct(node: onnx.NodeProto) -> None:
    if len(set(node.input)) != len(node.input):
        raise NoBlock("it reads the same tensor twice; a block takes each input once")


@handles("Add")
def add(im: ImporterState, node: onnx.NodeProto) -> Value:
    tensor, constant, _ = split_operands(im.consts, node)
    if constant is None:
        _distinct(node)
        _merge_shapes(im, node, scales=False)
        return im.add("Add", node_label(node), {}, [im.source(name) for name in node.input],
                      shape=im.item_shape(node.output[0]))
    value = im.value(tensor)
    affine = _rescaled(im, value, constant, "Add")
    if affine is not None:
        return affine
    if isinstance(value, Out) and im.readers.get(tensor) == 1:
        spec = im.specs[value.spec]
        if spec.type in ("Conv2D", "Dense") and spec.params.get("activation", "none") == "none":
            rank = 4 if spec.type == "Conv2D" else 2
            numbers = per_channel(constant, int(spec.weights["weight"].shape[0]), rank)
            if numbers is not None:
                spec.weights["bias"] = spec.weights.get("bias", 0.0) + numbers
                spec.params["bias"] = True
                return value
    raise NoBlock("adding a constant has no block (only a Conv2D's or Dense layer's bias)")


@handles("Sub")
def sub(im: ImporterState, node: onnx.NodeProto) -> Value:
    tensor, constant, first = split_operands(im.consts, node)
    if constant is not None and first and np.all(constant == 1):
        im.value(tensor)
        return OneMinus(tensor, node)
    if constant is not None and not first:
        affine = _rescaled(im, im.value(tensor), constant, "Sub")
        if affine is not None:
            return affine
    raise NoBlock("subtracting has no block (only the normalisation in front of the network)")


@handles("Div")
def div(im: ImporterState, node: onnx.NodeProto) -> Value:
    found = local_response_norm(im, node)
    if found is not None:
        return found
    tensor, constant, first = split_operands(im.consts, node)
    if constant is not None and not first:
        value = im.value(tensor)
        affine = _rescaled(im, value, constant, "Div")
        if affine is not None:
            return affine
        if isinstance(value, Window) and value.counted and any(value.pads) \
                and _divides_by_real_pixels(value, constant):
            return Out(im.window(value, "average", False))
    raise NoBlock("dividing has no block (only the normalisation in front of the network)")


def _divides_by_real_pixels(pool: Window, divisor: np.ndarray) -> bool:
    """Whether `divisor` is the share of real pixels in each window (Keras' 'same' average,
    as CNN Studio's own export computes it)."""
    top, left, bottom, right = pool.pads
    ones = F.pad(torch.ones(1, 1, *pool.size, dtype=torch.float64), (left, right, top, bottom))
    share = F.avg_pool2d(ones, pool.kernel, pool.stride, ceil_mode=pool.ceil_mode).numpy()
    try:
        return bool(np.allclose(np.broadcast_to(divisor, share.shape), share, atol=1e-6))
    except ValueError:
        return False


@handles("Mul")
def mul(im: ImporterState, node: onnx.NodeProto) -> Value:
    tensor, constant, _ = split_operands(im.consts, node)
    gelu = gelu_input(im, node)
    if gelu is not None:
        return _activation(im, node, "gelu", gelu)
    if constant is None:
        a, b = node.input[0], node.input[1]
        if a == b:
            im.value(a)
            return Square(a, node)
        for x, gate in ((a, b), (b, a)):
            function = gated(im, x, gate)
            if function:
                return _activation(im, node, function, x)
        _merge_shapes(im, node, scales=True)
        return im.add("Multiply", node_label(node), {}, [im.source(a), im.source(b)],
                      shape=im.item_shape(node.output[0]))
    value = im.value(tensor)
    affine = _rescaled(im, value, constant, "Mul")
    if affine is not None:
        return affine
    if isinstance(value, Window) and value.counted and constant.size == 1 \
            and close(float(constant.reshape(-1)[0]), value.kernel[0] * value.kernel[1]):
        if isinstance(im.values.get(value.source), Square):
            return SumSquares(value, node)
        return Out(im.window(value, "sum", True))
    raise NoBlock("multiplying by a constant has no block")


# -- shapes, merges, pass-through ----------------------------------------------------------


def _flat(im: ImporterState, node: onnx.NodeProto, tensor: str) -> Value:
    """A flatten of `tensor` to (N, features)."""
    value = im.value(tensor)
    if isinstance(value, GlobalPool):
        return Out(im.global_pool(value, flat=True))
    shape = im.shape(tensor)
    if shape is not None and len(shape) == 2:
        return value
    if shape is None or len(shape) != 4:
        raise NoBlock(f"flattening a tensor {shown(shape)} has no block")
    return im.add("Flatten", node_label(node), {}, [im.source(tensor)],
                  shape=(int(np.prod(shape[1:])),))


@handles("Flatten")
def flatten(im: ImporterState, node: onnx.NodeProto) -> Value:
    shape = im.shape(node.input[0])
    if int(attrs(node).get("axis", 1)) % max(len(shape) if shape else 1, 1) != 1:
        raise NoBlock("only a flatten that keeps the batch axis (axis 1) has a block")
    return _flat(im, node, node.input[0])


@handles("Reshape", "Squeeze")
def reshape(im: ImporterState, node: onnx.NodeProto) -> Value:
    before, after = im.shape(node.input[0]), im.shape(node.output[0])
    if node.op_type == "Reshape" and node.input[1] in im.consts and before is not None:
        target = [int(v) for v in im.consts[node.input[1]].reshape(-1)]
        if not attrs(node).get("allowzero", 0):
            target = [before[i] if v == 0 and i < len(before) else v
                      for i, v in enumerate(target)]
        after = np.empty(before, dtype=np.int8).reshape(target).shape
    if before is not None and after is not None:
        if tuple(after) == tuple(before):
            return im.value(node.input[0])
        if len(after) == 2 and after[0] == before[0] and len(before) >= 3:
            return _flat(im, node, node.input[0])
    raise NoBlock(f"reshaping {shown(before)} to {shown(after)} has no block (only a flatten "
                  "to (N, -1))")


@handles("Concat")
def concat(im: ImporterState, node: onnx.NodeProto) -> Value:
    shape = im.shape(node.output[0])
    rank = len(shape) if shape else 0
    if int(attrs(node).get("axis", 0)) % max(rank, 1) != 1 or rank not in (2, 4):
        raise NoBlock("only joining along the channels (axis 1) has a block")
    values = [im.value(name) for name in node.input]
    if len(values) == 1:
        return values[0]  # torch.cat of one tensor (DenseNet's first layers)
    if len(values) == 2 and isinstance(values[0], OneMinus):
        kept = im.values.get(values[0].source)
        if kept is not None and kept == values[1] and shape is not None and shape[1] == 2:
            return values[1]  # [1 − p, p]: the two-class output of one sigmoid unit
    _distinct(node)
    return im.add("Concatenate", node_label(node), {}, [im.source(name) for name in node.input],
                  shape=im.item_shape(node.output[0]))


@handles("Slice")
def slice_(im: ImporterState, node: onnx.NodeProto) -> Value:
    if im.shape(node.input[0]) is not None and im.shape(node.input[0]) == im.shape(
            node.output[0]):
        return im.value(node.input[0])
    raise NoBlock("cutting out part of a tensor has no block")


@handles("Identity", "Dropout")
def identity(im: ImporterState, node: onnx.NodeProto) -> Value | list[Value]:
    value = im.value(node.input[0])
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        return [value, im.refuse(node, "its mask output has no block")]
    return value


@handles("Cast")
def cast(im: ImporterState, node: onnx.NodeProto) -> Value:
    if int(attrs(node).get("to", 0)) not in FLOAT_TYPES:
        raise NoBlock("it turns the values into integers or booleans: no block does that")
    return im.value(node.input[0])


__all__ = ["HANDLERS"]
