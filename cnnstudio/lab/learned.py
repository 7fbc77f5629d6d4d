"""A trained Conv2D block's arithmetic in NumPy, for the lab on the user's own model.

The torch side (cnnstudio.train.learned_kernels) reads the block's weights, bias and settings
into a LearnedConv and computes the block's real input; everything the lab then shows is
computed here, with the lab's own correlate2d, so that it can be checked against the model:

    y[f] = act( Σ_c  x[c] ⋆ w[f, c]  +  b[f] )     (⋆: cross-correlation, ops.correlate2d)

over the input channels c that filter f sees (all of them, or its group's with groups > 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnnstudio.lab import ops

SELU_ALPHA = 1.6732632423543772848170429916717  # torch.nn.SELU's constants
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.01  # the slope and α a Conv2D's fused activation uses (nn.layers)
ELU_ALPHA = 1.0
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


# name: (label, formula, function): every activation a Conv2D block can fuse (core.blocks).
ACTIVATIONS: dict[str, tuple[str, str, Callable[[np.ndarray], np.ndarray]]] = {
    "none": ("no activation", "z", lambda x: x),
    "relu": ("ReLU", "max(0, z)", ops.relu),
    "leaky_relu": ("Leaky ReLU", "z if z > 0 else 0.01·z",
                   lambda x: ops.leaky_relu(x, LEAKY_SLOPE)),
    "elu": ("ELU", "z if z > 0 else eᶻ − 1", lambda x: ops.elu(x, ELU_ALPHA)),
    "selu": ("SELU", "1.0507·(z if z > 0 else 1.6733·(eᶻ − 1))",
             lambda x: SELU_SCALE * ops.elu(x, SELU_ALPHA)),
    "gelu": ("GELU", "z·Φ(z)", lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))),
    "tanh": ("tanh", "tanh(z)", ops.tanh),
    "sigmoid": ("sigmoid", "1/(1 + e⁻ᶻ)", ops.sigmoid),
    "relu6": ("ReLU6", "min(max(0, z), 6)", _relu6),
    "silu": ("SiLU", "z·sigmoid(z)", lambda x: x * ops.sigmoid(x)),
    "hardswish": ("hard swish", "z·min(max(0, z + 3), 6)/6", lambda x: x * _relu6(x + 3) / 6),
    "hardsigmoid": ("hard sigmoid", "min(max(0, z + 3), 6)/6", lambda x: _relu6(x + 3) / 6),
}


def activation_label(name: str) -> str:
    return ACTIVATIONS[name][0] if name in ACTIVATIONS else name


def activate(values: np.ndarray, name: str) -> np.ndarray:
    """A Conv2D block's fused activation, elementwise, as the model applies it."""
    values = np.asarray(values, dtype=np.float64)
    if name not in ACTIVATIONS:
        raise ops.LabError(f"the lab cannot compute the activation {name!r}")
    return ACTIVATIONS[name][2](values)


@dataclass(frozen=True, eq=False)
class LearnedConv:
    """One Conv2D block of a trained network: its learned numbers and its settings."""

    block_id: str
    name: str
    weights: np.ndarray  # (filters, input channels per group, kh, kw)
    bias: np.ndarray  # (filters,), zeros when the block has no bias
    has_bias: bool
    stride: tuple[int, int]
    padding: str | tuple[int, int]  # as the block's parameter: valid, same, full or (ph, pw)
    dilation: tuple[int, int]
    groups: int
    activation: str
    in_channels: int

    @property
    def filters(self) -> int:
        return int(self.weights.shape[0])

    @property
    def per_filter(self) -> int:
        """The input channels each filter sums over (all of them unless groups > 1)."""
        return int(self.weights.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    def input_channels(self, f: int) -> range:
        """The block-input channels filter f reads (its group's)."""
        group = f // (self.filters // self.groups)
        return range(group * self.per_filter, (group + 1) * self.per_filter)

    def kernel(self, f: int, channel: int | None = None) -> np.ndarray:
        """Filter f's kh×kw kernel for one of its input channels (0-based among the channels
        it reads), or the sum of its kernels over all of them (channel None)."""
        if channel is None:
            return self.weights[f].sum(axis=0)
        return self.weights[f, channel].copy()

    def describe(self) -> str:
        """'32 filters of 3×3 over 1 input channel, stride 1, padding valid, ReLU'."""
        kh, kw = self.kernel_size
        over = f"{self.per_filter} input channel{'s' * (self.per_filter != 1)}"
        if self.groups > 1:
            over += f" each ({self.groups} groups)"
        padding = (self.padding if isinstance(self.padding, str)
                   else f"{self.padding[0]}×{self.padding[1]}")
        stride = "×".join(map(str, self.stride)) if len(set(self.stride)) > 1 else self.stride[0]
        parts = [f"{self.filters} filters of {kh}×{kw} over {over}", f"stride {stride}",
                 f"padding {padding}"]
        if self.dilation != (1, 1):
            parts.append(f"dilation {self.dilation[0]}×{self.dilation[1]}")
        parts.append(activation_label(self.activation))
        return ", ".join(parts)


def _check_input(conv: LearnedConv, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != conv.in_channels:
        raise ops.LabError(f"{conv.name} takes {conv.in_channels} input channels, got an input "
                           f"of shape {x.shape}")
    return x


def pre_activation(conv: LearnedConv, x: np.ndarray, f: int) -> np.ndarray:
    """z[f] = Σ_c x[c] ⋆ w[f, c] + b[f]: filter f's H×W sums before the activation."""
    x = _check_input(conv, x)
    total: np.ndarray | None = None
    for k, channel in enumerate(conv.input_channels(f)):
        part = ops.correlate2d(x[channel], conv.weights[f, k], conv.stride, conv.padding,
                               conv.dilation)
        total = part if total is None else total + part
    assert total is not None
    return total + conv.bias[f]


def filter_output(conv: LearnedConv, x: np.ndarray, f: int) -> np.ndarray:
    """Filter f's output map after the block's activation: the model's channel f."""
    return activate(pre_activation(conv, x, f), conv.activation)


@dataclass(frozen=True)
class PixelArithmetic:
    """How one output value of one filter comes about, with the real numbers."""

    filter: int
    out: tuple[int, int]
    channels: tuple[int, ...]  # the block-input channels the filter reads
    windows: np.ndarray  # per channel, the kh×kw input values under the kernel (padding: 0)
    cells: tuple[tuple[int, int], ...]  # the window's cells in the padded input, row-major
    offset: tuple[int, int]  # where the unpadded input starts in the padded one
    kernels: np.ndarray  # per channel, the kh×kw weights
    channel_sums: np.ndarray  # per channel, Σ window × kernel
    total: float  # Σ over the channels
    bias: float
    pre: float  # total + bias
    value: float  # after the activation
    activation: str

    def products(self, k: int) -> np.ndarray:
        return self.windows[k] * self.kernels[k]

    def channel_text(self, k: int, most: int = 0) -> str:
        """'0.1·(−0.2) + 0.5·0.3 + … = 0.31' for the k-th channel the filter reads; with more
        than `most` products (0: no limit) the middle ones are left out and counted."""
        terms = [f"{ops.factor(v)}·{ops.factor(w)}" for v, w in
                 zip(self.windows[k].ravel(), self.kernels[k].ravel())]
        if most and len(terms) > most:
            left = len(terms) - most + 1
            terms = [*terms[:most - 3], f"… ({left} more products) …", *terms[-2:]]
        return f"{' + '.join(terms)} = {ops.fmt(self.channel_sums[k], 4)}"

    def lines(self) -> list[str]:
        """Sum over channels, plus bias, activation: the course's steps after the products."""
        n = len(self.channels)
        sums = (ops.fmt(self.total, 4) if n == 1 else
                f"Σ over the {n} input channels = {ops.fmt(self.total, 4)}")
        lines = [f"window × kernel, summed: {sums}",
                 f"plus the bias: z = {ops.fmt(self.total, 4)} + {_factor(self.bias)}"
                 f" = {ops.fmt(self.pre, 4)}"]
        if self.activation == "none":
            lines.append(f"no activation: y = z = {ops.fmt(self.value, 4)}")
        else:
            label, formula = ACTIVATIONS[self.activation][:2]
            inside = re.sub(r"(?<=[(, ])z(?=[),])", ops.fmt(self.pre, 4), formula)
            text = inside.replace("z", _factor(self.pre))
            lines.append(f"{label}: y = {text} = {ops.fmt(self.value, 4)}")
        return lines


def pixel_arithmetic(conv: LearnedConv, x: np.ndarray, f: int, row: int,
                     col: int) -> PixelArithmetic:
    """The window, products, sums, bias and activation behind filter f's output (row, col)."""
    x = _check_input(conv, x)
    kh, kw = conv.kernel_size
    size = (x.shape[1], x.shape[2])
    pads = ops.pads(size, (kh, kw), conv.stride, conv.padding, conv.dilation)
    oh, ow = ops.output_shape(size, (kh, kw), conv.stride, conv.padding, conv.dilation)
    if not (0 <= row < oh and 0 <= col < ow):
        raise ops.LabError(f"the output is {oh}×{ow}: there is no pixel ({row}, {col})")
    channels = tuple(conv.input_channels(f))
    padded = np.pad(x[list(channels)], [(0, 0), *pads])
    (sh, sw), (dh, dw) = conv.stride, conv.dilation
    cells = tuple((row * sh + i * dh, col * sw + j * dw) for i in range(kh) for j in range(kw))
    rows, cols = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
    windows = padded[:, rows, cols].reshape(len(channels), kh, kw)
    kernels = conv.weights[f]
    sums = (windows * kernels).sum(axis=(1, 2))
    total = float(sums.sum())
    bias = float(conv.bias[f])
    pre = total + bias
    value = float(activate(np.array([pre]), conv.activation)[0])
    return PixelArithmetic(f, (row, col), channels, windows, cells, (pads[0][0], pads[1][0]),
                           kernels.copy(), sums, total, bias, pre, value, conv.activation)


def _factor(value: float) -> str:
    """A number inside a product or sum, 4 decimals: negative ones in parentheses."""
    text = ops.fmt(value, 4)
    return f"({text})" if text.startswith(ops.MINUS) else text


def kernel_grid(matrix: np.ndarray, digits: int = 4) -> list[str]:
    """A kernel as rows of numbers with `digits` decimals, aligned, for the command line."""
    texts = [[f"{v:.{digits}f}".replace("-", ops.MINUS) for v in row]
             for row in np.atleast_2d(np.asarray(matrix, dtype=np.float64))]
    width = max(len(t) for row in texts for t in row)
    return ["  ".join(t.rjust(width) for t in row) for row in texts]
