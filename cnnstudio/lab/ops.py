"""The convolution lab's arithmetic: pure NumPy, no Qt, no torch.

"Convolution" here is the deep-learning one, a cross-correlation without a kernel flip:
y[r, c] = Σ_i Σ_j x[r·s + i·d, c·s + j·d] · w[i, j] over the padded input. Padding follows
cnnstudio.core.geometry (valid, Keras-style same, full, explicit), so the lab's output sizes are
the canvas's. Everything here also produces the step-by-step traces the lab animates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnnstudio.core.geometry import effective_kernel, resolve_padding, window_output_size

PaddingArg = str | int | Sequence[int]  # 'valid' | 'same' | 'full' | p | (ph, pw)
PairArg = int | Sequence[int]
POOL_MODES = ("max", "average", "sum", "l2")
PADDING_MODES = ("valid", "same", "full", "explicit")
MINUS = "−"


class LabError(ValueError):
    """An operation that cannot run with these numbers; the message says why."""


def pair(value: PairArg) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def _padding_value(padding: PaddingArg) -> str | list[int]:
    if isinstance(padding, str):
        if padding not in ("valid", "same", "full"):
            raise LabError(f"unknown padding {padding!r}; use valid, same, full or numbers")
        return padding
    ph, pw = pair(padding)
    if ph < 0 or pw < 0:
        raise LabError(f"padding must not be negative, got {ph}×{pw}")
    return [ph, pw]


def pads(shape: tuple[int, int], kernel: tuple[int, int], stride: PairArg = 1,
         padding: PaddingArg = "valid", dilation: PairArg = 1) -> tuple[tuple[int, int], ...]:
    """((top, bottom), (left, right)) zero padding, resolved as the canvas resolves it."""
    mode = _padding_value(padding)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    return (resolve_padding(mode, shape[0], kernel[0], sh, dh, 0),
            resolve_padding(mode, shape[1], kernel[1], sw, dw, 1))


def output_shape(shape: tuple[int, int], kernel: tuple[int, int], stride: PairArg = 1,
                 padding: PaddingArg = "valid", dilation: PairArg = 1) -> tuple[int, int]:
    """(height, width) of the output; a side is <= 0 when the window does not fit."""
    (top, bottom), (left, right) = pads(shape, kernel, stride, padding, dilation)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    return (window_output_size(shape[0], kernel[0], sh, dh, top, bottom),
            window_output_size(shape[1], kernel[1], sw, dw, left, right))


def _checked(stride: PairArg, dilation: PairArg) -> tuple[tuple[int, int], tuple[int, int]]:
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if min(sh, sw) < 1 or min(dh, dw) < 1:
        raise LabError(f"stride and dilation must be at least 1, got {sh}×{sw} and {dh}×{dw}")
    return (sh, sw), (dh, dw)


def correlate2d(x: np.ndarray, w: np.ndarray, stride: PairArg = 1,
                padding: PaddingArg = "valid", dilation: PairArg = 1) -> np.ndarray:
    """Cross-correlation of an H×W image (or each channel of a C×H×W stack) with a kh×kw kernel.

    Shift and add: one vectorised multiply-add over the whole output per kernel tap, so a
    512×512 photo with a 7×7 kernel is 49 array operations, not 250,000 Python steps.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim not in (2, 3) or w.ndim != 2 or 0 in w.shape or 0 in x.shape:
        raise LabError(f"expected an image (H×W or C×H×W) and a kh×kw kernel, got shapes "
                       f"{x.shape} and {w.shape}")
    (sh, sw), (dh, dw) = _checked(stride, dilation)
    kh, kw = w.shape
    size = (x.shape[-2], x.shape[-1])
    (top, bottom), (left, right) = pads(size, (kh, kw), (sh, sw), padding, (dh, dw))
    oh, ow = output_shape(size, (kh, kw), (sh, sw), padding, (dh, dw))
    if oh <= 0 or ow <= 0:
        raise LabError(
            f"the {kh}×{kw} kernel (dilation {dh}×{dw}) does not fit the {size[0]}×{size[1]} "
            "input: add padding or choose a smaller kernel")
    lead = [(0, 0)] * (x.ndim - 2)
    padded = np.pad(x, lead + [(top, bottom), (left, right)])
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(kh):
        for j in range(kw):
            if w[i, j] == 0:
                continue
            r0, c0 = i * dh, j * dw
            out += w[i, j] * padded[..., r0:r0 + sh * (oh - 1) + 1:sh,
                                    c0:c0 + sw * (ow - 1) + 1:sw]
    return out


def correlate1d(x: Sequence[float] | np.ndarray, w: Sequence[float] | np.ndarray,
                stride: int = 1, padding: str | int = "valid", dilation: int = 1) -> np.ndarray:
    """1-D cross-correlation: correlate1d([0..6], [1, 2]) = [2, 5, 8, 11, 14, 17]."""
    row = np.asarray(x, dtype=np.float64).reshape(1, -1)
    kernel = np.asarray(w, dtype=np.float64).reshape(1, -1)
    pad: PaddingArg = padding if isinstance(padding, str) else (0, int(padding))
    return correlate2d(row, kernel, (1, stride), pad, (1, dilation))[0]


def pool2d(x: np.ndarray, mode: str = "max", size: PairArg = 2,
           stride: PairArg | None = None) -> np.ndarray:
    """Windowed pooling without padding: max, average, sum or L2 (√Σx²) of each window."""
    if mode not in POOL_MODES:
        raise LabError(f"unknown pooling {mode!r}; use one of {', '.join(POOL_MODES)}")
    x = np.asarray(x, dtype=np.float64)
    ph, pw = pair(size)
    sh, sw = pair(stride if stride is not None else size)
    if min(ph, pw, sh, sw) < 1:
        raise LabError("pool size and stride must be at least 1")
    if ph > x.shape[-2] or pw > x.shape[-1]:
        raise LabError(f"the {ph}×{pw} pool does not fit the {x.shape[-2]}×{x.shape[-1]} map")
    oh, ow = (x.shape[-2] - ph) // sh + 1, (x.shape[-1] - pw) // sw + 1
    total: np.ndarray | None = None
    for i in range(ph):  # one vectorised step per window cell, as in correlate2d
        for j in range(pw):
            part = x[..., i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            if mode == "l2":
                part = part * part
            if total is None:
                total = part.copy()
            elif mode == "max":
                np.maximum(total, part, out=total)
            else:
                total += part
    assert total is not None
    if mode == "average":
        return total / (ph * pw)
    return np.sqrt(total) if mode == "l2" else total


# -- activations ------------------------------------------------------------------------------


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def relu_grad(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) > 0).astype(np.float64)


def leaky_relu(x: np.ndarray, eps: float = 0.01) -> np.ndarray:
    return np.where(x > 0, x, eps * np.asarray(x, dtype=np.float64))


def leaky_relu_grad(x: np.ndarray, eps: float = 0.01) -> np.ndarray:
    return np.where(np.asarray(x) > 0, 1.0, eps)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_grad(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(x) ** 2


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # stable on both sides
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return s * (1.0 - s)


def softmax(z: Sequence[float] | np.ndarray) -> np.ndarray:
    """exp(z_i) / Σ exp(z_j), shifted by max(z) so large values do not overflow."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def softmax_jacobian(z: Sequence[float] | np.ndarray) -> np.ndarray:
    """∂p_i/∂z_j = p_i·(δ_ij − p_j)."""
    p = softmax(z)
    return np.diag(p) - np.outer(p, p)


@dataclass(frozen=True)
class Activation:
    key: str
    name: str
    function: Callable[..., np.ndarray]
    derivative: Callable[..., np.ndarray]
    formula: str
    parameter: str = ""  # 'eps' or 'alpha': the adjustable constant


ACTIVATIONS: dict[str, Activation] = {a.key: a for a in (
    Activation("relu", "ReLU", relu, relu_grad, "max(0, x)"),
    Activation("leaky_relu", "Leaky ReLU", leaky_relu, leaky_relu_grad,
               "x if x > 0 else ε·x", "eps"),
    Activation("elu", "ELU", elu, elu_grad, "x if x > 0 else α·(eˣ − 1)", "alpha"),
    Activation("tanh", "tanh", tanh, tanh_grad, "(eˣ − e⁻ˣ)/(eˣ + e⁻ˣ)"),
    Activation("sigmoid", "sigmoid", sigmoid, sigmoid_grad, "1/(1 + e⁻ˣ)"),
)}


def activate(x: np.ndarray, key: str, eps: float = 0.01, alpha: float = 1.0) -> np.ndarray:
    """One of 'none', 'relu', 'leaky_relu', 'elu', 'tanh', 'sigmoid' applied elementwise."""
    if key == "none":
        return np.asarray(x, dtype=np.float64)
    if key == "leaky_relu":
        return leaky_relu(x, eps)
    if key == "elu":
        return elu(x, alpha)
    if key not in ACTIVATIONS:
        raise LabError(f"unknown activation {key!r}")
    return ACTIVATIONS[key].function(x)


# -- numbers as the course writes them -------------------------------------------------------


def fmt(value: float, digits: int = 3) -> str:
    """19 for 19.0, 2.5, 0.333, −1 (typographic minus)."""
    value = float(value)
    if math.isfinite(value) and value == round(value) and abs(value) < 1e15:
        text = str(int(round(value)))
    else:
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
        if text in ("-0", ""):
            text = "0"
    return text.replace("-", MINUS)


def factor(value: float) -> str:
    """A number inside a product: negative ones in parentheses, 2·(−1)."""
    text = fmt(value)
    return f"({text})" if text.startswith(MINUS) else text


def explain_output_size(size: int, kernel: int, stride: int = 1, pad_before: int = 0,
                        pad_after: int | None = None, dilation: int = 1,
                        axis: str = "", floor: bool = True) -> str:
    """o = ⌊(i − k + 2p)/s⌋ + 1 with the numbers, e.g. 'height: ⌊(512 − 3 + 2·1)/1⌋ + 1 = 512'.

    Unequal padding (Keras 'same' with an even kernel) is written as p_before + p_after; a
    dilated kernel uses its effective size k' = d·(k − 1) + 1, named after the result."""
    after = pad_before if pad_after is None else pad_after
    k_eff = effective_kernel(kernel, dilation)
    out = window_output_size(size, kernel, stride, dilation, pad_before, after)
    pad = f"2·{pad_before}" if pad_before == after else f"{pad_before} + {after}"
    inner = f"({size} {MINUS} {k_eff} + {pad})/{stride}"
    text = f"⌊{inner}⌋ + 1 = {out}" if floor else f"{inner} + 1 = {out}"
    if dilation != 1:
        text += f"  (k′ = {dilation}·({kernel} {MINUS} 1) + 1 = {k_eff})"
    return f"{axis}: {text}" if axis else text


# -- the kernel library ----------------------------------------------------------------------


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """size×size samples of exp(−(x² + y²)/(2σ²)), normalised to sum 1."""
    if size < 1 or sigma <= 0:
        raise LabError(f"a Gaussian needs a size of at least 1 and σ > 0, got {size} and {sigma}")
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma * sigma))
    return g / g.sum()


def box_kernel(size: int = 3) -> np.ndarray:
    if size < 1:
        raise LabError(f"a box blur needs a size of at least 1, got {size}")
    return np.full((size, size), 1.0 / (size * size))


@dataclass(frozen=True)
class KernelInfo:
    key: str
    name: str
    description: str
    matrix: tuple[tuple[float, ...], ...] = ()  # fixed kernels; sized ones are computed
    sized: bool = False  # box and Gaussian blur take a size (and σ)


def _m(rows: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in rows)


KERNELS: dict[str, KernelInfo] = {k.key: k for k in (
    KernelInfo("identity", "Identity", "Copies the image: only the centre weight is 1.",
               _m([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
    KernelInfo("vertical_edges", "Vertical edges",
               "Left column minus right column: strong where brightness changes from left to "
               "right (vertical edges).", _m([[1, 0, -1]] * 3)),
    KernelInfo("horizontal_edges", "Horizontal edges",
               "Top row minus bottom row: strong on horizontal edges.",
               _m([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])),
    KernelInfo("edges", "Edges", "The course's edge kernel: the 8 neighbours minus 7 × the "
               "centre (sums to 1, so flat areas keep their value).",
               _m([[1, 1, 1], [1, -7, 1], [1, 1, 1]])),
    KernelInfo("laplacian", "Laplacian (8 neighbours)",
               "Sum of the 8 neighbours minus 8 × the centre: zero on flat areas, large on "
               "edges in every direction.", _m([[1, 1, 1], [1, -8, 1], [1, 1, 1]])),
    KernelInfo("dark_edges", "Dark edges",
               "The 4-neighbour Laplacian: positive where the centre is darker than its four "
               "neighbours (dark lines, the dark side of an edge); with ReLU after it only "
               "those remain.", _m([[0, 1, 0], [1, -4, 1], [0, 1, 0]])),
    KernelInfo("box_blur", "Box blur", "The mean of the size × size window.", sized=True),
    KernelInfo("gaussian_blur", "Gaussian blur",
               "A weighted mean: near pixels count more (σ sets how fast the weight falls).",
               sized=True),
    KernelInfo("sharpen", "Sharpen", "5 × the centre minus its 4 neighbours: the image plus "
               "its edges.", _m([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])),
    KernelInfo("emboss", "Emboss", "Differences along the diagonal: a relief lit from the "
               "top left.", _m([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])),
    KernelInfo("sobel_x", "Sobel x", "Horizontal gradient (right minus left), the centre row "
               "weighted twice.", _m([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])),
    KernelInfo("sobel_y", "Sobel y", "Vertical gradient (bottom minus top): Sobel x "
               "transposed.", _m([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])),
)}


def kernel(key: str, size: int = 3, sigma: float = 1.0) -> np.ndarray:
    """The library's kernel as a float array; box and Gaussian blur take size (and σ)."""
    info = KERNELS.get(key)
    if info is None:
        raise LabError(f"unknown kernel {key!r}; choose one of {', '.join(KERNELS)}")
    if key == "box_blur":
        return box_kernel(size)
    if key == "gaussian_blur":
        return gaussian_kernel(size, sigma)
    return np.array(info.matrix, dtype=np.float64)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an H×W×3 image: 0.299 R + 0.587 G + 0.114 B."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb
    return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])


# -- step-by-step traces ---------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One output cell: where the window is, what it multiplies or pools, and the result."""

    out: tuple[int, int]
    cells: tuple[tuple[int, int], ...]  # input cells under the window, in the padded input
    taps: tuple[tuple[int, int], ...]  # the kernel cell of each input cell (convolution)
    values: tuple[float, ...]
    weights: tuple[float, ...]  # empty for pooling
    result: float
    text: str  # '0·0 + 1·1 + 3·2 + 4·3 = 19', 'max(1, 2, 1, 4) = 4'


@dataclass(frozen=True)
class Trace:
    kind: str  # 'convolution' or 'pooling'
    padded: np.ndarray  # the input as the window sees it (zeros around it)
    offset: tuple[int, int]  # where the original input starts inside `padded`
    output: np.ndarray
    steps: tuple[Step, ...]
    size_lines: tuple[str, ...]  # the output size written out, one line per axis


def _size_lines(shape: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                pad: tuple[tuple[int, int], ...], dilation: tuple[int, int]) -> tuple[str, ...]:
    if shape[0] == 1 and kernel[0] == 1 and pad[0] == (0, 0):  # a 1-D example
        return ("o = " + explain_output_size(shape[1], kernel[1], stride[1], *pad[1],
                                             dilation=dilation[1]),)
    return tuple(explain_output_size(shape[a], kernel[a], stride[a], *pad[a],
                                     dilation=dilation[a], axis=name)
                 for a, name in ((0, "height"), (1, "width")))


def conv_trace(x: np.ndarray, w: np.ndarray, stride: PairArg = 1, padding: PaddingArg = 0,
               dilation: PairArg = 1) -> Trace:
    """Every output cell of correlate2d(x, w, ...) with its window, products and sum."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    output = correlate2d(x, w, stride, padding, dilation)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    pad = pads((x.shape[0], x.shape[1]), (w.shape[0], w.shape[1]), stride, padding, dilation)
    padded = np.pad(x, pad)
    taps = tuple((i, j) for i in range(w.shape[0]) for j in range(w.shape[1]))
    weights = tuple(float(w[t]) for t in taps)
    steps = []
    for r in range(output.shape[0]):
        for c in range(output.shape[1]):
            cells = tuple((r * sh + i * dh, c * sw + j * dw) for i, j in taps)
            values = tuple(float(padded[cell]) for cell in cells)
            result = float(output[r, c])
            text = " + ".join(f"{factor(v)}·{factor(k)}" for v, k in zip(values, weights))
            steps.append(Step((r, c), cells, taps, values, weights, result,
                              f"{text} = {fmt(result)}"))
    lines = _size_lines(x.shape, w.shape, (sh, sw), pad, (dh, dw))
    return Trace("convolution", padded, (pad[0][0], pad[1][0]), output, tuple(steps), lines)


def _pool_text(mode: str, values: Sequence[float], result: float) -> str:
    items = [fmt(v) for v in values]
    if mode == "max":
        return f"max({', '.join(items)}) = {fmt(result)}"
    if mode == "average":
        return f"({' + '.join(factor(v) for v in values)})/{len(values)} = {fmt(result)}"
    if mode == "sum":
        return f"{' + '.join(factor(v) for v in values)} = {fmt(result)}"
    return f"√({' + '.join(factor(v) + '²' for v in values)}) = {fmt(result)}"


def pool_trace(x: np.ndarray, mode: str = "max", size: PairArg = 2,
               stride: PairArg | None = None) -> Trace:
    """Every output cell of pool2d(x, ...) with its window and the pooled value."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    output = pool2d(x, mode, size, stride)
    ph, pw = pair(size)
    sh, sw = pair(stride if stride is not None else size)
    steps = []
    for r in range(output.shape[0]):
        for c in range(output.shape[1]):
            cells = tuple((r * sh + i, c * sw + j) for i in range(ph) for j in range(pw))
            values = tuple(float(x[cell]) for cell in cells)
            result = float(output[r, c])
            steps.append(Step((r, c), cells, (), values, (), result,
                              _pool_text(mode, values, result)))
    lines = _size_lines(x.shape, (ph, pw), (sh, sw), ((0, 0), (0, 0)), (1, 1))
    return Trace("pooling", x, (0, 0), output, tuple(steps), lines)
