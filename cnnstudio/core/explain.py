"""The texts a block shows and explains: key parameters, counts and the course arithmetic.

Pure functions of a block and its analysis, in the core so that the canvas (its cards and
tooltips), its tests and any other view share them without Qt.
"""

from __future__ import annotations

from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.analysis import BlockInfo
from cnnstudio.core.blocks.base import format_shape
from cnnstudio.core.blocks.conv import conv_groups_filters
from cnnstudio.core.blocks.merge import scale_port
from cnnstudio.core.blocks.pool import ADAPTIVE_MODES, GLOBAL_MODES, pool_stride
from cnnstudio.core.geometry import (
    adaptive_window,
    adaptive_windows,
    explain_window_axis,
    pool_axis,
    resolve_padding,
)
from cnnstudio.core.graph import Block
from cnnstudio.core.params import format_value

SEPARATOR = " · "
WINDOW_FORMULA = "o = ⌊(i + 2p − d·(k − 1) − 1)/s⌋ + 1"
CEIL_FORMULA = "o = ⌈(i + 2p − k)/s⌉ + 1, less 1 if the last window would start past the input"
_NEUTRAL = (None, "none", [1, 1])  # values a block line leaves out (stride 1×1, no activation)
_LABELLED = {"rate": "rate", "size": "size", "loss_weight": "loss weight"}


def key_params_text(block: Block) -> str:
    """'32 · 3×3 · same · relu': the key parameters, neutral values left out."""
    if block.type == "Input":
        p = block.params
        return f"{p['height']}×{p['width']}×{p['channels']} image"
    block_type = registry.get(block.type)
    if block.type == "Pooling" and block.params.get("mode") in GLOBAL_MODES:
        return str(block.params["mode"]).replace("_", " ")
    if block.type == "Pooling" and block.params.get("mode") in ADAPTIVE_MODES:
        size = format_value(block.params.get("output_size", [1, 1]))
        return f"{str(block.params['mode']).replace('_', ' ')} → {size}"
    parts: list[str] = []
    for name in block_type.key_params:
        value = block.params.get(name)
        if value in _NEUTRAL:
            continue
        if name == "filters" and block.params.get("depthwise"):
            parts.append("depthwise")
            continue
        text = format_value(value).replace("_", " ")
        if name == "stride" and parts:  # the papers' notation: 3×3/2 (window 3×3, stride 2)
            parts[-1] += f"/{value[0]}" if value[0] == value[1] else f"/{text}"
            continue
        parts.append(f"{_LABELLED[name]} {text}" if name in _LABELLED else text)
    if block.is_auxiliary_output:
        parts.insert(0, "auxiliary")
    if block.type == "Dense":
        parts[0] = f"{parts[0]} units"
    if block.params.get("trainable") is False:
        parts.append("frozen")
    return SEPARATOR.join(parts)


def counts_text(block_type_id: str, output_shape: tuple[int, ...] | None, params: int) -> str:
    """'256 params' for a block with weights and a known shape; `params` is the total count."""
    if output_shape is None or not registry.get(block_type_id).has_weights:
        return ""
    return f"{params:,} params"


def explain(block: Block, info: BlockInfo | None) -> str:
    """The tooltip of a block's shape line: how its numbers come about, with its numbers."""
    if info is None or info.output_shape is None:
        return f"{block.name}: the output shape cannot be inferred (see the red badge)"
    lines = [f"{block.name} → {format_shape(info.output_shape)}"]
    explainer = EXPLAINERS.get(block.type)
    if explainer is not None:
        lines += explainer(block.params, info)
    if registry.get(block.type).has_weights and block.type not in EXPLAINERS:
        lines.append(f"parameters: {info.total_params:,}")
    if info.macs and block.type not in EXPLAINS_MACS:
        lines.append(f"{info.macs:,} multiply-accumulates per image")
    if info.receptive_field is not None and info.jump is not None:
        (rh, rw), (jh, jw) = info.receptive_field, info.jump
        lines.append(f"receptive field {rh}×{rw}, stride {jh}×{jw} (jump)")
    return "\n".join(lines)


def _window_lines(info: BlockInfo, kernel: list[int], stride: list[int], dilation: list[int],
                  padding: Any) -> list[str]:
    c, h, w = info.input_shapes[0]
    lines = [f"input {format_shape(info.input_shapes[0])}; {WINDOW_FORMULA}"]
    for axis, (label, size) in enumerate((("height", h), ("width", w))):
        k, s, d = kernel[axis], stride[axis], dilation[axis]
        before, after = resolve_padding(padding, size, k, s, d, axis)
        pad = f"{before}+{after}" if before != after else f"{before + after}"
        dilated = f", d = {d}" if d != 1 else ""
        lines.append(
            f"  {label}: {explain_window_axis(size, k, s, d, before, after)}"
            f"   (i = {size}, 2p = {pad}, k = {k}, s = {s}{dilated})"
        )
    return lines


def _explain_conv(p: dict[str, Any], info: BlockInfo) -> list[str]:
    lines = _window_lines(info, p["kernel"], p["stride"], p["dilation"], p["padding"])
    c_in = info.input_shapes[0][0]
    kh, kw = p["kernel"]
    groups, filters = conv_groups_filters(p, c_in)
    if p["depthwise"]:
        lines.append(f"  channels: depthwise, one {kh}×{kw} filter per input channel: "
                     f"groups = filters = C_in = {c_in}")
    else:
        lines.append(f"  channels: {filters} filters")
    inner = f"{kh}·{kw}·{c_in}" + (f"/{groups}" if groups != 1 else "")
    if p["bias"]:
        lines.append(f"parameters: ((kh·kw·C_in/groups) + 1)·filters = (({inner}) + 1)·{filters}"
                     f" = {info.params:,}")
    else:
        lines.append(f"parameters: (kh·kw·C_in/groups)·filters = ({inner})·{filters}"
                     f" = {info.params:,} (no bias)")
    _, oh, ow = info.output_shape  # type: ignore[misc]
    lines.append(f"multiply-accumulates: H_out·W_out·filters·(kh·kw·C_in/groups) = "
                 f"{oh}·{ow}·{filters}·({inner}) = {info.macs:,} per image")
    return lines


def _explain_pool(p: dict[str, Any], info: BlockInfo) -> list[str]:
    c, h, w = info.input_shapes[0]
    if p["mode"] in GLOBAL_MODES:
        return [f"global pooling: one value per channel, {h}×{w}×{c} → ({c})",
                "no parameters"]
    if p["mode"] in ADAPTIVE_MODES:
        oh, ow = p["output_size"]
        kh, kw = (max(end - start for start, end in adaptive_windows(size, out))
                  for size, out in ((h, oh), (w, ow)))
        (_, sh), (_, sw) = adaptive_window(h, oh), adaptive_window(w, ow)
        return [f"adaptive pooling: {h}×{w} → {oh}×{ow} whatever the input size; output i "
                "summarises pixels ⌊i·in/out⌋ to ⌈(i + 1)·in/out⌉ − 1",
                f"  windows up to {kh}×{kw}, about {sh}×{sw} apart",
                f"  channels: {c}, unchanged", "no parameters"]
    kernel, stride = p["pool_size"], pool_stride(p)
    if p["ceil_mode"] and p["padding"] != "same":
        lines = _ceil_lines(info, kernel, stride, p["padding"])
    else:
        lines = _window_lines(info, kernel, stride, [1, 1], p["padding"])
    lines.append(f"  channels: {c}, unchanged")
    if p["mode"] == "average" and p["padding"] != "valid":
        lines.append("  the average divides by the whole window, padding included"
                     if p["count_padding"] else
                     "  the average divides by the real pixels of each window, not the padding")
    lines.append("no parameters")
    return lines


def _ceil_lines(info: BlockInfo, kernel: list[int], stride: list[int], padding: Any) -> list[str]:
    """The window formula rounded up (ceil_mode), as PyTorch sizes its pooling."""
    c, h, w = info.input_shapes[0]
    lines = [f"input {format_shape(info.input_shapes[0])}; {CEIL_FORMULA}"]
    for axis, (label, size) in enumerate((("height", h), ("width", w))):
        k, s = kernel[axis], stride[axis]
        before = resolve_padding(padding, size, k, s, 1, axis)[0]
        out = pool_axis(padding, size, k, s, True, axis)[0]
        rounded = -(-(size + 2 * before - k) // s) + 1
        dropped = f" − 1 = {out}" if rounded != out else ""
        lines.append(f"  {label}: ⌈({size} + {2 * before} − {k})/{s}⌉ + 1 = {rounded}{dropped}"
                     f"   (i = {size}, 2p = {2 * before}, k = {k}, s = {s})")
    return lines


def _explain_dense(p: dict[str, Any], info: BlockInfo) -> list[str]:
    inputs, units = info.input_shapes[0][0], p["units"]
    if p["bias"]:
        count = f"parameters: (inputs + 1)·units = ({inputs} + 1)·{units} = {info.params:,}"
    else:
        count = f"parameters: inputs·units = {inputs}·{units} = {info.params:,} (no bias)"
    return [count, f"multiply-accumulates: inputs·units = {inputs}·{units} = {info.macs:,} "
                   "per image"]


def _explain_flatten(p: dict[str, Any], info: BlockInfo) -> list[str]:
    shape = info.input_shapes[0]
    if len(shape) == 3:
        c, h, w = shape
        return [f"H·W·C = {h}·{w}·{c} = {h * w * c:,} values"]
    return ["already flat: the vector passes unchanged"]


def _explain_concat(p: dict[str, Any], info: BlockInfo) -> list[str]:
    channels = " + ".join(str(s[0]) for s in info.input_shapes)
    return [f"channels: {channels} = {info.output_shape[0]:,}"]  # type: ignore[index]


def _explain_add(p: dict[str, Any], info: BlockInfo) -> list[str]:
    return [f"element-wise sum of {len(info.input_shapes)} inputs of the same shape"]


def _explain_multiply(p: dict[str, Any], info: BlockInfo) -> list[str]:
    port = scale_port(info.input_shapes)
    if port is None:
        return ["value-by-value product of two inputs of the same shape"]
    c = info.output_shape[0]  # type: ignore[index]
    return [f"each of the {c} channels of input {2 - port} is scaled by one value of input "
            f"{port + 1} (squeeze-and-excitation)"]


def _explain_batchnorm(p: dict[str, Any], info: BlockInfo) -> list[str]:
    c = info.input_shapes[0][0]
    learned = "trainable" if info.trainable else "frozen"
    return [f"parameters: 2·C = 2·{c} = {info.params:,} {learned} (γ, β)"
            f" + {info.buffers:,} running statistics (mean, variance) = {info.total_params:,}",
            f"  (PyTorch's parameters() counts only the {info.params:,} γ and β)"]


# block type -> the lines of its arithmetic. Every block type is either here or in
# NO_ARITHMETIC, so a new type is a choice, not an omission (tests/test_block_tables.py).
EXPLAINERS = {
    "Conv2D": _explain_conv,
    "Pooling": _explain_pool,
    "Dense": _explain_dense,
    "Flatten": _explain_flatten,
    "Concatenate": _explain_concat,
    "Add": _explain_add,
    "Multiply": _explain_multiply,
    "BatchNorm": _explain_batchnorm,
}
# block types whose tooltip needs nothing beyond the shape, MACs and receptive field lines
NO_ARITHMETIC = frozenset({"Input", "Output", "Activation", "Dropout", "LocalResponseNorm"})
# block types whose explainer writes out the arithmetic of their multiply-accumulates; the
# others get the bare count (tests/core/test_explain.py: every block with MACs is here)
EXPLAINS_MACS = frozenset({"Conv2D", "Dense"})
