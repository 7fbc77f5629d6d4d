"""One small torch module per block type.

Every layer takes the list of its input tensors (ordered by input port) and returns one tensor.
The uniform signature lets GraphModel run any block the same way, which keeps the model
scriptable with torch.jit.script and traceable for ONNX: all branching below depends on values
fixed at build time (padding, mode), never on tensor values.
"""

# No `from __future__ import annotations` here: TorchScript reads the class-level annotations
# (List[int], Dict[str, ...]) and cannot resolve them as strings.
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnstudio.core.geometry import adaptive_windows

def activation_module(name: str, negative_slope: float = 0.01, alpha: float = 1.0) -> nn.Module:
    """The torch module for an activation name; 'none' is the identity."""
    if name == "none":
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "elu":
        return nn.ELU(alpha)
    if name == "selu":
        return nn.SELU()
    if name == "gelu":
        return nn.GELU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softmax":
        return nn.Softmax(dim=1)
    if name == "relu6":
        return nn.ReLU6()
    if name == "silu":
        return nn.SiLU()
    if name == "hardswish":
        return nn.Hardswish()
    if name == "hardsigmoid":
        return nn.Hardsigmoid()
    raise ValueError(f"unknown activation {name!r}")


def pad_list(pad_h: tuple[int, int], pad_w: tuple[int, int]) -> List[int]:
    """Per-axis (before, after) pads in F.pad order: (left, right, top, bottom)."""
    return [pad_w[0], pad_w[1], pad_h[0], pad_h[1]]


class IdentityLayer(nn.Module):
    """Input and Output: pass the tensor through."""

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return inputs[0]


class ConvLayer(nn.Module):
    """Conv2D with optional asymmetric zero padding in front and a fused activation."""

    pads: List[int]
    pre_pad: bool

    def __init__(self, conv: nn.Conv2d, pads: List[int], activation: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.act = activation
        self.pads = list(pads)
        self.pre_pad = any(p != 0 for p in pads)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x = inputs[0]
        if self.pre_pad:
            x = F.pad(x, self.pads)
        return self.act(self.conv(x))


class DenseLayer(nn.Module):
    """Dense: nn.Linear and a fused activation."""

    def __init__(self, linear: nn.Linear, activation: nn.Module) -> None:
        super().__init__()
        self.linear = linear
        self.act = activation

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.act(self.linear(inputs[0]))


class ActivationLayer(nn.Module):
    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.act = activation

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.act(inputs[0])


class DropoutLayer(nn.Module):
    def __init__(self, dropout: nn.Module) -> None:
        super().__init__()
        self.drop = dropout

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.drop(inputs[0])


class BatchNormLayer(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.bn = norm

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.bn(inputs[0])


class LRNLayer(nn.Module):
    def __init__(self, norm: nn.LocalResponseNorm) -> None:
        super().__init__()
        self.lrn = norm

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.lrn(inputs[0])


class FlattenLayer(nn.Module):
    def forward(self, inputs: List[Tensor]) -> Tensor:
        return torch.flatten(inputs[0], 1)


class PoolLayer(nn.Module):
    """Windowed pooling as core.blocks.pool.PoolPlan lays it out.

    Max and average pool with torch's own symmetric padding (max pads with −∞, average divides
    as count_include_pad says). Otherwise a copy is padded in front (max with −∞, the others
    with zeros). Sum and L2 are built on avg_pool2d, because that exports everywhere
    (divisor_override does not): sum = mean · window area, L2 = √(sum of x²). An average over a
    padded copy divides by the pixels each window counts: the same pooling applied to a map of
    ones padded alike (ones where the padding counts, zeros where it does not).
    """

    mode: str
    kernel: List[int]
    stride: List[int]
    pads: List[int]
    padded: bool
    padding: List[int]
    count_include_pad: bool
    divides_by_count: bool
    counted_pads: List[int]
    uncounted_pads: List[int]
    area: float

    def __init__(self, mode: str, kernel: Sequence[int], stride: Sequence[int],
                 pads: Sequence[int], padding: Sequence[int] = (0, 0),
                 count_include_pad: bool = True, counted_pads: Sequence[int] = (0, 0, 0, 0),
                 divides_by_count: bool = False) -> None:
        super().__init__()
        if mode not in ("max", "average", "sum", "l2"):
            raise ValueError(f"unknown windowed pooling mode {mode!r}")
        self.mode = mode
        self.kernel = list(kernel)
        self.stride = list(stride)
        self.pads = list(pads)
        self.padded = any(p != 0 for p in pads)
        self.padding = list(padding)
        self.count_include_pad = count_include_pad
        self.divides_by_count = divides_by_count
        self.counted_pads = list(counted_pads)
        self.uncounted_pads = [p - c for p, c in zip(pads, counted_pads)]
        self.area = float(kernel[0] * kernel[1])

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x = inputs[0]
        if self.mode == "max":
            if self.padded:
                x = F.pad(x, self.pads, value=float("-inf"))
            return F.max_pool2d(x, self.kernel, self.stride, self.padding)
        if self.mode == "average" and not self.padded:
            return F.avg_pool2d(x, self.kernel, self.stride, self.padding,
                                count_include_pad=self.count_include_pad)
        if self.mode == "l2":
            x = x * x
        if self.padded:
            x = F.pad(x, self.pads)
        mean = F.avg_pool2d(x, self.kernel, self.stride)
        if self.mode == "average":
            if self.divides_by_count:
                ones = F.pad(torch.ones_like(inputs[0][:1, :1]), self.counted_pads, value=1.0)
                ones = F.pad(ones, self.uncounted_pads)
                mean = mean / F.avg_pool2d(ones, self.kernel, self.stride)
            return mean
        total = mean * self.area
        if self.mode == "sum":
            return total
        # sqrt(0) has an infinite gradient: an all-zero window (common after ReLU) would turn
        # the backward pass into NaN. The floor keeps it finite and moves the value by 1e-15.
        return torch.sqrt(torch.clamp(total, min=1e-30))


class AdaptivePoolLayer(nn.Module):
    """adaptive_max / adaptive_average: torch's adaptive pooling to a fixed output size.

    ONNX has no adaptive pooling whose output size does not divide the input size, so while
    exporting, such a layer pools window by window instead (the windows of
    core.geometry.adaptive_windows, rows first, then columns: the same values).
    """

    use_max: bool
    output_size: List[int]
    divides: bool

    def __init__(self, mode: str, output_size: Sequence[int], input_size: Sequence[int]) -> None:
        super().__init__()
        if mode not in ("adaptive_max", "adaptive_average"):
            raise ValueError(f"unknown adaptive pooling mode {mode!r}")
        self.use_max = mode == "adaptive_max"
        self.output_size = list(output_size)
        self.divides = all(i % o == 0 for i, o in zip(input_size, output_size))
        self._windows = [adaptive_windows(i, o) for i, o in zip(input_size, output_size)]

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x = inputs[0]
        if not torch.jit.is_scripting() and not self.divides and _exporting_onnx():
            return self._window_by_window(x)
        if self.use_max:
            return F.adaptive_max_pool2d(x, self.output_size)
        return F.adaptive_avg_pool2d(x, self.output_size)

    @torch.jit.unused
    def _window_by_window(self, x: Tensor) -> Tensor:
        for axis, windows in ((2, self._windows[0]), (3, self._windows[1])):
            parts = [x.narrow(axis, start, end - start) for start, end in windows]
            if self.use_max:
                parts = [part.amax(dim=axis, keepdim=True) for part in parts]
            else:
                parts = [part.mean(dim=axis, keepdim=True) for part in parts]
            x = torch.cat(parts, dim=axis)
        return x


@torch.jit.unused
def _exporting_onnx() -> bool:
    return torch.onnx.is_in_onnx_export()


class GlobalPoolLayer(nn.Module):
    """global_max / global_average: one value per channel, returned flat as (N, C)."""

    use_max: bool

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in ("global_max", "global_average"):
            raise ValueError(f"unknown global pooling mode {mode!r}")
        self.use_max = mode == "global_max"

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x = inputs[0]
        if self.use_max:
            return torch.flatten(F.adaptive_max_pool2d(x, 1), 1)
        return torch.mean(x, dim=[2, 3])


class ConcatLayer(nn.Module):
    """Concatenate along channels (dim 1) in input-port order."""

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return torch.cat(inputs, dim=1)


class AddLayer(nn.Module):
    def forward(self, inputs: List[Tensor]) -> Tensor:
        total = inputs[0]
        for other in inputs[1:]:
            total = total + other
        return total


class MultiplyLayer(nn.Module):
    """Multiply two inputs value by value; a vector of channel weights on `vector_port` is
    viewed as (N, C, 1, 1) first so that it scales each channel of the image."""

    vector_port: int

    def __init__(self, vector_port: int = -1) -> None:
        super().__init__()
        self.vector_port = vector_port

    def forward(self, inputs: List[Tensor]) -> Tensor:
        a, b = inputs[0], inputs[1]
        if self.vector_port == 0:
            a = a[:, :, None, None]
        elif self.vector_port == 1:
            b = b[:, :, None, None]
        return a * b


def penalized_weight(layer: nn.Module) -> Tensor | None:
    """The weight tensor that L1/L2 penalties apply to (never the bias), if the layer has one."""
    if isinstance(layer, ConvLayer):
        return layer.conv.weight
    if isinstance(layer, DenseLayer):
        return layer.linear.weight
    return None
