"""Layers that exporters spell as several ONNX nodes, recognised whole.

torch writes SiLU as x · sigmoid(x), hard swish (before opset 14) as x · hardsigmoid(x), exact
GELU as x · ½ · (1 + erf(x / √2)) and LocalResponseNorm as x / (k + α·avg(x²))^β, the average
taken by a 3-D pooling over the channels between reshapes (and an If that torch adds for
three-axis inputs). Each function looks back from the node that gives the layer's result and
names the layer's input, or returns None; the inner nodes then feed nothing that is needed.
"""

from __future__ import annotations

import math

import onnx

from cnnstudio.importers.onnx_read import as_float, attrs, node_label
from cnnstudio.importers.onnx_values import ImporterState, Value, close, split_operands


def gated(im: ImporterState, x: str, gate: str) -> str | None:
    """x · sigmoid(x) is SiLU; x · hardsigmoid(x) is hard swish."""
    node = im.producer(gate, "Sigmoid", "HardSigmoid")
    if node is None or node.input[0] != x:
        return None
    if node.op_type == "Sigmoid":
        return "silu"
    options = attrs(node)
    if close(options.get("alpha", 0.2), 1 / 6) and close(options.get("beta", 0.5), 0.5):
        return "hardswish"
    return None


def _factors(im: ImporterState, tensor: str, depth: int) -> tuple[list[str], float]:
    """The computed factors of a product and the product of its constant ones."""
    if tensor in im.consts:
        value = im.consts[tensor]
        return [], float(value.reshape(-1)[0]) if value.size == 1 else math.nan
    node = im.producer(tensor, "Mul")
    if node is None or depth == 0:
        return [tensor], 1.0
    (fa, ca), (fb, cb) = (_factors(im, name, depth - 1) for name in node.input[:2])
    return fa + fb, ca * cb


def gelu_input(im: ImporterState, node: onnx.NodeProto) -> str | None:
    """x for x · ½ · (1 + erf(x / √2)), however the exporter ordered the products."""
    factors, constant = _factors(im, node.output[0], 3)
    if len(factors) != 2 or not close(constant, 0.5):
        return None
    for x, other in (factors, factors[::-1]):
        plus = im.producer(other, "Add")
        if plus is None:
            continue
        erf_out, one, _ = split_operands(im.consts, plus)
        erf = im.producer(erf_out, "Erf")
        if one is None or one.size != 1 or not close(float(one.reshape(-1)[0]), 1.0) \
                or erf is None:
            continue
        scaled = im.producer(erf.input[0], "Div", "Mul")
        if scaled is None:
            continue
        inner, by, _ = split_operands(im.consts, scaled)
        root2 = math.sqrt(2) if scaled.op_type == "Div" else 1 / math.sqrt(2)
        if inner == x and by is not None and by.size == 1 and close(
                float(by.reshape(-1)[0]), root2):
            return x
    return None


_RESHAPING = ("Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "If", "Pad")


def _through_reshapes(im: ImporterState, tensor: str) -> str:
    """The tensor behind steps that only move values around (an If whose branches both pass
    one tensor on counts too)."""
    for _ in range(12):
        node = im.producer(tensor, *_RESHAPING)
        if node is None:
            return tensor
        if node.op_type != "If":
            tensor = node.input[0]
            continue
        outer = {name for attribute in node.attribute for inner in attribute.g.node
                 for name in inner.input if name in im.producers or name in im.values}
        outer = {name for name in outer if name not in im.consts}
        if len(outer) != 1:
            return tensor
        tensor = outer.pop()
    return tensor


def local_response_norm(im: ImporterState, node: onnx.NodeProto) -> Value | None:
    """x / (k + α·avg over n channels of x²)^β, as torch exports LocalResponseNorm."""
    x, divisor = node.input[0], node.input[1]
    power = im.producer(divisor, "Pow")
    if power is None or power.input[1] not in im.consts:
        return None
    shifted = im.producer(power.input[0], "Add")
    if shifted is None:
        return None
    scaled_out, k, _ = split_operands(im.consts, shifted)
    scaled = im.producer(scaled_out, "Mul")
    if scaled is None or k is None:
        return None
    averaged, alpha, _ = split_operands(im.consts, scaled)
    window = im.producer(_through_reshapes(im, averaged), "AveragePool")
    if window is None or alpha is None:
        return None
    kernel = list(attrs(window).get("kernel_shape", []))
    square = im.producer(_through_reshapes(im, window.input[0]), "Mul")
    if len(kernel) != 3 or kernel[1:] != [1, 1] or square is None \
            or list(square.input) != [x, x]:
        return None
    params = {"size": int(kernel[0]), "alpha": as_float(alpha), "k": as_float(k),
              "beta": as_float(im.consts[power.input[1]])}
    return im.add("LocalResponseNorm", node_label(node), params, [im.source(x)],
                  shape=im.item_shape(node.output[0]))


__all__ = ["gated", "gelu_input", "local_response_norm"]
