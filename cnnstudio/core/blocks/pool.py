"""Pooling: windowed (max, average, sum, L2), global and adaptive (max, average)."""

from __future__ import annotations

from dataclasses import dataclass

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
from cnnstudio.core.geometry import adaptive_window, pool_axis
from cnnstudio.core.params import ParamSpec

POOL_MODES = ("max", "average", "sum", "l2", "global_max", "global_average",
              "adaptive_max", "adaptive_average")
WINDOWED_MODES = ("max", "average", "sum", "l2")
GLOBAL_MODES = ("global_max", "global_average")
ADAPTIVE_MODES = ("adaptive_max", "adaptive_average")
MAX_POOL = 255


def pool_stride(params) -> list[int]:
    """The stride in effect: the pool size when no stride is given."""
    return params["stride"] if params["stride"] is not None else params["pool_size"]


@dataclass(frozen=True)
class PoolPlan:
    """How a windowed pooling runs in torch, decided once for the analysis (what it keeps for
    backward), nn/build.py (the layer) and nn/codegen.py (the exported file).

    Max and average pool with torch's own symmetric padding `native` (max pads with −∞;
    average divides as count_include_pad says) whenever the padding is even on both sides.
    Otherwise, and for every sum or L2 pooling, a copy is padded in front, by pad_h and pad_w
    (before, after): uneven 'same' padding, or ceil_mode's partial last window, which torch's
    ceil_mode would give but ONNX cuts differently. An average over such a copy divides each
    window by the pixels it counts: the real ones plus the `counted` part of the padding
    (count_padding: the explicit padding, not ceil_mode's extra), found by pooling a map of
    ones padded alike.
    """

    out_h: int
    out_w: int
    pad_h: tuple[int, int] = (0, 0)
    pad_w: tuple[int, int] = (0, 0)
    counted_h: tuple[int, int] = (0, 0)
    counted_w: tuple[int, int] = (0, 0)
    native: tuple[int, int] = (0, 0)
    count_include_pad: bool = True
    divides_by_count: bool = False

    @property
    def pre_padded(self) -> bool:
        return any(self.pad_h) or any(self.pad_w)


def pool_plan(params, shape) -> PoolPlan:
    """The plan of a windowed pooling on a (C, H, W) input; may have an output size <= 0."""
    _, h, w = shape
    (kh, kw), (sh, sw) = params["pool_size"], pool_stride(params)
    padding, mode, counts = params["padding"], params["mode"], params["count_padding"]
    ceil = params["ceil_mode"] and padding != "same"
    oh, top, bottom = pool_axis(padding, h, kh, sh, ceil, 0)
    ow, left, right = pool_axis(padding, w, kw, sw, ceil, 1)
    if mode in ("max", "average") and top == bottom and left == right:
        return PoolPlan(oh, ow, native=(top, left), count_include_pad=counts)
    if padding == "same":
        counted_h, counted_w = ((top, bottom), (left, right)) if counts else ((0, 0), (0, 0))
    else:  # explicit or valid: the symmetric padding counts, ceil_mode's extra never does
        counted_h, counted_w = ((top, top), (left, left)) if counts else ((0, 0), (0, 0))
    divides = mode == "average" and (counted_h, counted_w) != ((top, bottom), (left, right))
    return PoolPlan(oh, ow, (top, bottom), (left, right), counted_h, counted_w,
                    divides_by_count=divides)


def _check_padding(params) -> None:
    padding = params["padding"]
    if padding == "full":
        raise ShapeError(
            "pooling has no 'full' padding (only convolution pads a whole window)",
            "use padding 'same', 'valid' or an explicit ph×pw",
            {"action": "set_param", "param": "padding", "value": "same"},
        )
    if isinstance(padding, list):
        (kh, kw), (ph, pw) = params["pool_size"], padding
        if 2 * ph > kh or 2 * pw > kw:
            half = [kh // 2, kw // 2]
            raise ShapeError(
                f"padding {ph}×{pw} is more than half the {kh}×{kw} pooling window "
                "(a window could then see padding only)",
                f"pad at most {half[0]}×{half[1]}",
                {"action": "set_param", "param": "padding", "value": half},
            )


_WINDOW_PARAMS = ("pool_size", "stride", "padding", "ceil_mode", "count_padding")


def _unused_pool(params) -> dict[str, str]:
    mode = params["mode"]
    if mode in GLOBAL_MODES or mode in ADAPTIVE_MODES:
        why = ("Adaptive pooling: the output size sets the windows." if mode in ADAPTIVE_MODES
               else "Global pooling: one window covers each whole channel.")
        unused = dict.fromkeys(_WINDOW_PARAMS, why)
        if mode in GLOBAL_MODES:
            unused["output_size"] = why
        return unused
    unused = {"output_size": "Only adaptive pooling has an output size."}
    if mode != "average":
        unused["count_padding"] = "Only average pooling divides by a window size."
    return unused


def _infer_pool(params, inputs):
    c, h, w = require_image("Pooling", inputs[0])
    mode = params["mode"]
    if mode in GLOBAL_MODES:
        return (c,)
    if mode in ADAPTIVE_MODES:
        oh, ow = params["output_size"]
        return (c, oh, ow)
    _check_padding(params)
    plan = pool_plan(params, (c, h, w))
    if plan.out_h <= 0 or plan.out_w <= 0:
        kh, kw = params["pool_size"]
        raise ShapeError(
            f"the {kh}×{kw} pooling window does not fit the {h}×{w} input",
            "use padding 'same' or remove this pooling layer",
            {"action": "set_param", "param": "padding", "value": "same"},
        )
    return (c, plan.out_h, plan.out_w)


def _rf_pool(params, inputs):
    _, h, w = inputs[0]
    if params["mode"] in GLOBAL_MODES:
        return RFStep(h, w, 1, 1)
    if params["mode"] in ADAPTIVE_MODES:
        oh, ow = params["output_size"]
        (kh, sh), (kw, sw) = adaptive_window(h, oh), adaptive_window(w, ow)
        return RFStep(kh, kw, sh, sw)
    (kh, kw), (sh, sw) = params["pool_size"], pool_stride(params)
    return RFStep(kh, kw, sh, sw)


INDEX_BYTES = 8  # max pooling keeps the int64 position of every maximum


def _saved_pool(params, inputs, output) -> tuple[Saved, ...]:
    """What each pooling mode keeps, as nn/layers.py PoolLayer computes it (see PoolPlan).

    A window over a padded copy reads (and keeps) the copy instead of the input. Average over a
    padded copy dividing by the real pixels also keeps the per-position divisor (one map for
    the whole batch); L2 keeps x², Σx² and √Σx².
    """
    mode = params["mode"]
    if mode == "global_average" or (mode == "adaptive_average" and output[1:] == (1, 1)):
        return ()  # a mean over each channel (torch's adaptive pooling to 1×1 takes it too)
    if mode in ("global_max", "adaptive_max"):
        return (SAVES_INPUT, own(prod(output), INDEX_BYTES))
    if mode == "adaptive_average":
        return (SAVES_INPUT,)
    c, h, w = inputs[0]
    plan = pool_plan(params, inputs[0])
    padded_values = c * (h + sum(plan.pad_h)) * (w + sum(plan.pad_w))
    reads = own(padded_values) if plan.pre_padded else SAVES_INPUT
    if mode == "max":
        return (reads, own(prod(output), INDEX_BYTES))
    if mode == "average":
        if plan.divides_by_count:
            return (reads, own(output[1] * output[2], per_sample=False))
        return (reads,)
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
        "pooling reduces each channel to one value; adaptive pooling to an output size you "
        "choose (windows ⌈in/out⌉ wide, as PyTorch's AdaptiveAvgPool2d). No parameters."
    ),
    params=(
        ParamSpec("mode", "choice", "max", choices=POOL_MODES, help="How a window is summarised."),
        ParamSpec("pool_size", "pair", [2, 2], minimum=1, maximum=MAX_POOL,
                  help="Window height × width."),
        ParamSpec("stride", "optional_pair", None, minimum=1, maximum=MAX_POOL,
                  help="Step of the window; empty means the pool size (non-overlapping)."),
        ParamSpec("padding", "padding", "valid", maximum=MAX_POOL,
                  help=(
                      "valid: windows stay inside the image. same: output = ⌈input/stride⌉. Or "
                      "explicit ph×pw on both sides (at most half the window); max pooling "
                      "pads with −∞."
                  )),
        ParamSpec("ceil_mode", "bool", False, label="Round output up",
                  help=(
                      "Round the output size up (PyTorch ceil_mode): a last, partial window "
                      "counts if it starts inside the input. Ignored for 'same'."
                  )),
        ParamSpec("count_padding", "bool", False, label="Average counts padding",
                  help=(
                      "Average over a padded window: on, divide by the whole window (PyTorch "
                      "count_include_pad); off, by the real pixels only (Keras, ONNX)."
                  )),
        ParamSpec("output_size", "pair", [1, 1], minimum=1, maximum=4096,
                  help="Adaptive pooling: output height × width, whatever the input size."),
    ),
    infer=_infer_pool,
    rf_step=_rf_pool,
    saved=_saved_pool,
    unused=_unused_pool,
    added_params=frozenset({"ceil_mode", "count_padding", "output_size"}),
    name_prefix="pool",
    glyph="↓",
    key_params=("mode", "pool_size", "stride"),
)

BLOCKS = (POOLING,)
