"""Pooling: max, average, sum, L2 (power-2 norm) and global max / global average."""

from __future__ import annotations

from cnnstudio.core.blocks.base import (
    SAVES_INPUT,
    SAVES_OUTPUT,
    BlockType,
    RFStep,
    Saved,
    ShapeError,
    own,
    prod,
    require_image,
)
from cnnstudio.core.geometry import resolve_padding, window_axis
from cnnstudio.core.params import ParamSpec

POOL_MODES = ("max", "average", "sum", "l2", "global_max", "global_average")
GLOBAL_MODES = ("global_max", "global_average")


def pool_stride(params) -> list[int]:
    """The stride in effect: the pool size when no stride is given."""
    return params["stride"] if params["stride"] is not None else params["pool_size"]


def _infer_pool(params, inputs):
    c, h, w = require_image("Pooling", inputs[0])
    if params["mode"] in GLOBAL_MODES:
        return (c,)
    (kh, kw), (sh, sw) = params["pool_size"], pool_stride(params)
    oh = window_axis(params["padding"], h, kh, sh, 1, 0)[0]
    ow = window_axis(params["padding"], w, kw, sw, 1, 1)[0]
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"the {kh}×{kw} pooling window does not fit the {h}×{w} input",
            "use padding 'same' or remove this pooling layer",
            {"action": "set_param", "param": "padding", "value": "same"},
        )
    return (c, oh, ow)


def _rf_pool(params, inputs):
    if params["mode"] in GLOBAL_MODES:
        _, h, w = inputs[0]
        return RFStep(h, w, 1, 1)
    (kh, kw), (sh, sw) = params["pool_size"], pool_stride(params)
    return RFStep(kh, kw, sh, sw)


INDEX_BYTES = 8  # max pooling keeps the int64 position of every maximum


def _saved_pool(params, inputs, output) -> tuple[Saved, ...]:
    """What each pooling mode keeps, as nn/layers.py PoolLayer computes it.

    Padding is applied to a copy in front of the pooling, so a padded window reads (and keeps)
    the copy instead of the input. Average with padding also keeps the per-position divisor
    (the number of real pixels, one map for the whole batch); L2 keeps x², Σx² and √Σx².
    """
    mode = params["mode"]
    if mode == "global_average":
        return ()
    if mode == "global_max":
        return (SAVES_INPUT, own(prod(output), INDEX_BYTES))
    c, h, w = inputs[0]
    (kh, kw), (sh, sw) = params["pool_size"], pool_stride(params)
    pad_h = resolve_padding(params["padding"], h, kh, sh, 1, 0)
    pad_w = resolve_padding(params["padding"], w, kw, sw, 1, 1)
    padded_values = c * (h + sum(pad_h)) * (w + sum(pad_w))
    padded = padded_values != c * h * w
    reads = own(padded_values) if padded else SAVES_INPUT
    if mode == "max":
        return (reads, own(prod(output), INDEX_BYTES))
    if mode == "average":
        return (reads, own(output[1] * output[2], per_sample=False)) if padded else (reads,)
    if mode == "sum":
        return (reads,)
    squares = own(padded_values)  # x², or its padded copy
    return (SAVES_INPUT, squares, own(prod(output)), SAVES_OUTPUT)


POOLING = BlockType(
    type_id="Pooling",
    version=1,
    display_name="Pooling",
    category="Pooling",
    help=(
        "Summarises each window of every channel: max, average, sum or L2 norm √Σx². Global "
        "pooling reduces each channel to one value. No parameters."
    ),
    params=(
        ParamSpec("mode", "choice", "max", choices=POOL_MODES, help="How a window is summarised."),
        ParamSpec("pool_size", "pair", [2, 2], minimum=1, maximum=255,
                  help="Window height × width."),
        ParamSpec("stride", "optional_pair", None, minimum=1, maximum=255,
                  help="Step of the window; empty means the pool size (non-overlapping)."),
        ParamSpec("padding", "choice", "valid", choices=("valid", "same"),
                  help="valid: windows stay inside the image. same: output = ⌈input/stride⌉."),
    ),
    infer=_infer_pool,
    rf_step=_rf_pool,
    saved=_saved_pool,
    name_prefix="pool",
    glyph="↓",
    key_params=("mode", "pool_size", "stride"),
)

BLOCKS = (POOLING,)
