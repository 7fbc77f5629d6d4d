"""One small torch module per block type.

Every layer takes the list of its input tensors (ordered by input port) and returns one tensor.
The uniform signature lets GraphModel run any block the same way, which keeps the model
scriptable with torch.jit.script and traceable for ONNX: all branching below depends on values
fixed at build time (padding, mode), never on tensor values.
"""

# No `from __future__ import annotations` here: TorchScript reads the class-level annotations
# (List[int], Dict[str, ...]) and cannot resolve them as strings.
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
    """Windowed pooling with Keras-style padding, done explicitly in front of the pool.

    Every non-max mode is built on avg_pool2d over a zero-padded input, because that exports
    everywhere (divisor_override does not): sum = mean · window area, L2 = √(sum of x²), and
    'same' average divides the sum by the number of real pixels in each window (the same pooling
    applied to a padded tensor of ones), as Keras does.
    """

    mode: str
    kernel: List[int]
    stride: List[int]
    pads: List[int]
    padded: bool
    area: float

    def __init__(self, mode: str, kernel: List[int], stride: List[int], pads: List[int]) -> None:
        super().__init__()
        if mode not in ("max", "average", "sum", "l2"):
            raise ValueError(f"unknown windowed pooling mode {mode!r}")
        self.mode = mode
        self.kernel = list(kernel)
        self.stride = list(stride)
        self.pads = list(pads)
        self.padded = any(p != 0 for p in pads)
        self.area = float(kernel[0] * kernel[1])

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x = inputs[0]
        if self.mode == "max":
            if self.padded:
                x = F.pad(x, self.pads, value=float("-inf"))
            return F.max_pool2d(x, self.kernel, self.stride)
        if self.mode == "l2":
            x = x * x
        if self.padded:
            x = F.pad(x, self.pads)
        mean = F.avg_pool2d(x, self.kernel, self.stride)
        if self.mode == "average":
            if self.padded:
                ones = F.pad(torch.ones_like(inputs[0][:1, :1]), self.pads)
                mean = mean / F.avg_pool2d(ones, self.kernel, self.stride)
            return mean
        total = mean * self.area
        if self.mode == "sum":
            return total
        # sqrt(0) has an infinite gradient: an all-zero window (common after ReLU) would turn
        # the backward pass into NaN. The floor keeps it finite and moves the value by 1e-15.
        return torch.sqrt(torch.clamp(total, min=1e-30))


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


def penalized_weight(layer: nn.Module) -> Tensor | None:
    """The weight tensor that L1/L2 penalties apply to (never the bias), if the layer has one."""
    if isinstance(layer, ConvLayer):
        return layer.conv.weight
    if isinstance(layer, DenseLayer):
        return layer.linear.weight
    return None
