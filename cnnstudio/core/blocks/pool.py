"""Pooling: max, average, sum, L2 (power-2 norm) and global max / global average."""

from __future__ import annotations

from cnnstudio.core.blocks.base import BlockType, RFStep, ShapeError, require_image
from cnnstudio.core.geometry import window_axis
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
    name_prefix="pool",
    key_params=("mode", "pool_size", "stride"),
)

BLOCKS = (POOLING,)
