"""Sliding-window arithmetic shared by convolution and pooling, in one place.

o = floor((i + p_before + p_after - d·(k - 1) - 1) / s) + 1, per spatial axis.
'same' follows Keras/TensorFlow: o = ceil(i / s) for any stride, the padding split with the
odd pixel at the bottom/right. 'full' pads d·(k - 1) on both sides, so the kernel meets the input
edge to edge. Explicit padding p pads p on both sides.
"""

from __future__ import annotations

from typing import Sequence


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    return dilation * (kernel - 1) + 1


def resolve_padding(
    mode: str | Sequence[int], size: int, kernel: int, stride: int, dilation: int, axis: int
) -> tuple[int, int]:
    """Padding (before, after) along one axis (0 = height, 1 = width) for a padding value."""
    k_eff = effective_kernel(kernel, dilation)
    if mode == "valid":
        return 0, 0
    if mode == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + k_eff - size, 0)
        return total // 2, total - total // 2
    if mode == "full":
        return k_eff - 1, k_eff - 1
    p = int(mode[axis])  # type: ignore[index]
    return p, p


def window_output_size(
    size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int
) -> int:
    """Output length of a sliding window; may be <= 0 when the window does not fit."""
    return (size + pad_before + pad_after - effective_kernel(kernel, dilation)) // stride + 1


def window_axis(
    mode: str | Sequence[int], size: int, kernel: int, stride: int, dilation: int, axis: int
) -> tuple[int, int, int]:
    """(output size, pad before, pad after) along one axis."""
    before, after = resolve_padding(mode, size, kernel, stride, dilation, axis)
    return window_output_size(size, kernel, stride, dilation, before, after), before, after


def pool_axis(
    mode: str | Sequence[int], size: int, kernel: int, stride: int, ceil_mode: bool, axis: int
) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of a pooling window along one axis.

    'same' as for convolution (ceil_mode changes nothing). Otherwise PyTorch's rule: ceil_mode
    rounds the output up, but the last window must start inside the input or its left padding;
    pad after then grows so that this last window ends inside the padded input (the positions
    past the end count as padding), even when the window is wider than the padded input. The
    output may be <= 0 when the window does not fit.
    """
    before, after = resolve_padding(mode, size, kernel, stride, 1, axis)
    if mode == "same" or not ceil_mode:
        return window_output_size(size, kernel, stride, 1, before, after), before, after
    out = -(-(size + before + after - kernel) // stride) + 1  # a window may overhang the end
    if (out - 1) * stride >= size + before:
        out -= 1
    return out, before, max(after, (out - 1) * stride + kernel - size - before)


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """[start, end) of each of the `out` windows of adaptive pooling over `size` pixels, as
    PyTorch cuts them: from ⌊i·size/out⌋ to ⌈(i + 1)·size/out⌉."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_window(size: int, out: int) -> tuple[int, int]:
    """(window, stride) that stand for adaptive pooling from size to out in the receptive
    field: windows ⌈size/out⌉ wide, ⌊size/out⌋ apart (at least 1)."""
    return -(-size // out), max(1, size // out)


def explain_window_axis(
    size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int
) -> str:
    """o = ⌊(i + 2p − d·(k − 1) − 1)/s⌋ + 1 filled in, e.g. '⌊(28 + 4 − 4 − 1)/1⌋ + 1 = 28'."""
    out = window_output_size(size, kernel, stride, dilation, pad_before, pad_after)
    return (
        f"⌊({size} + {pad_before + pad_after} − {dilation * (kernel - 1)} − 1)/{stride}⌋ + 1"
        f" = {out}"
    )
