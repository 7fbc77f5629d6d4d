"""Conv2D: a 2-D convolution with Keras-style padding modes."""

from __future__ import annotations

from cnnstudio.core.blocks.base import (
    L1,
    L2,
    TRAINABLE,
    BlockType,
    SAVES_INPUT,
    RFStep,
    Saved,
    ShapeError,
    fused_activation,
    fused_activation_saved,
    own,
    require_image,
)
from cnnstudio.core.geometry import effective_kernel, resolve_padding, window_axis
from cnnstudio.core.params import ParamSpec

MAX_KERNEL = 255


def conv_groups_filters(params, c_in: int) -> tuple[int, int]:
    """(groups, filters) in effect: depthwise takes both from the input channels."""
    if params["depthwise"]:
        return c_in, c_in
    return params["groups"], params["filters"]


DEPTHWISE_UNUSED = "Depthwise is on: this follows the input channels (one filter per channel)."


def _unused_conv(params) -> dict[str, str]:
    return {"filters": DEPTHWISE_UNUSED, "groups": DEPTHWISE_UNUSED} if params["depthwise"] else {}


def _conv_axes(params, shape):
    c, h, w = shape
    kh, kw = params["kernel"]
    sh, sw = params["stride"]
    dh, dw = params["dilation"]
    pad = params["padding"]
    return (
        window_axis(pad, h, kh, sh, dh, 0),
        window_axis(pad, w, kw, sw, dw, 1),
    )


def _kernel_text(params) -> str:
    kh, kw = params["kernel"]
    dh, dw = params["dilation"]
    text = f"{kh}×{kw} kernel"
    if (dh, dw) != (1, 1):
        text += f" with dilation {dh}×{dw} ({effective_kernel(kh, dh)}×{effective_kernel(kw, dw)} wide)"
    return text


def _infer_conv(params, inputs):
    c, h, w = require_image("Conv2D", inputs[0])
    groups, filters = conv_groups_filters(params, c)
    if c % groups or filters % groups:
        raise ShapeError(
            f"groups = {groups} must divide both the {c} input channels and the {filters} filters",
            f"choose groups among the common divisors of {c} and {filters}",
        )
    _check_initial_kernel(params)
    (oh, _, _), (ow, _, _) = _conv_axes(params, (c, h, w))
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"the {_kernel_text(params)} does not fit the {h}×{w} input",
            "use padding 'same' or remove a pooling layer",
            {"action": "set_param", "param": "padding", "value": "same"},
        )
    return (filters, oh, ow)


def _check_initial_kernel(params) -> None:
    """A fixed initial kernel (from the convolution lab) must have the kernel's size."""
    kernel = params.get("initial_kernel")
    if kernel is None:
        return
    rows, cols = len(kernel), len(kernel[0])
    kh, kw = params["kernel"]
    if (rows, cols) != (kh, kw):
        raise ShapeError(
            f"the initial kernel is {rows}×{cols} but the kernel size is {kh}×{kw}",
            f"set the kernel size to {rows}×{cols}, or clear the initial kernel",
            {"action": "set_param", "param": "kernel", "value": [rows, cols]},
        )


def _count_conv(params, inputs, output):
    c = inputs[0][0]
    groups, filters = conv_groups_filters(params, c)
    kh, kw = params["kernel"]
    weights = kh * kw * (c // groups) * filters
    return weights + (filters if params["bias"] else 0), 0


def _macs_conv(params, inputs, output):
    filters, oh, ow = output
    kh, kw = params["kernel"]
    groups, _ = conv_groups_filters(params, inputs[0][0])
    return oh * ow * filters * kh * kw * (inputs[0][0] // groups)


def _saved_conv(params, inputs, output) -> tuple[Saved, ...]:
    """The input (for the weight gradient), or the padded copy the convolution then reads:
    uneven Keras-'same' padding is applied in front of the convolution (nn/build.py)."""
    c, h, w = inputs[0]
    (kh, kw), (sh, sw), (dh, dw) = params["kernel"], params["stride"], params["dilation"]
    pad_h = resolve_padding(params["padding"], h, kh, sh, dh, 0)
    pad_w = resolve_padding(params["padding"], w, kw, sw, dw, 1)
    if pad_h[0] == pad_h[1] and pad_w[0] == pad_w[1]:
        reads = SAVES_INPUT
    else:
        reads = own(c * (h + sum(pad_h)) * (w + sum(pad_w)))
    return (reads, *fused_activation_saved(params["activation"], output))


def _rf_conv(params, inputs):
    kh, kw = params["kernel"]
    dh, dw = params["dilation"]
    sh, sw = params["stride"]
    return RFStep(effective_kernel(kh, dh), effective_kernel(kw, dw), sh, sw)


CONV2D = BlockType(
    type_id="Conv2D",
    version=1,
    display_name="Conv2D",
    category="Convolution",
    help=(
        "Slides each of its filters over the image and sums kernel × window: one output channel "
        "per filter. Parameters: ((kh·kw·C_in/groups) + 1)·filters."
    ),
    params=(
        ParamSpec("filters", "int", 32, minimum=1, maximum=65536,
                  help="Number of filters = output channels."),
        ParamSpec("kernel", "pair", [3, 3], minimum=1, maximum=MAX_KERNEL,
                  help="Kernel height × width; non-square kernels (1×7, 7×1) are allowed."),
        ParamSpec("stride", "pair", [1, 1], minimum=1, maximum=MAX_KERNEL,
                  help="Step of the kernel, vertical × horizontal."),
        ParamSpec("padding", "padding", "valid", maximum=MAX_KERNEL,
                  help=(
                      "valid: no padding. same: output = ⌈input/stride⌉ (as Keras). full: the "
                      "kernel sees the input edge to edge (pad k−1). Or explicit ph×pw."
                  )),
        ParamSpec("dilation", "pair", [1, 1], minimum=1, maximum=64,
                  help="Spacing between kernel taps (atrous convolution)."),
        ParamSpec("groups", "int", 1, minimum=1, maximum=65536,
                  help="Split channels into groups convolved separately (groups = C_in: depthwise)."),
        ParamSpec("depthwise", "bool", False,
                  help=(
                      "Depthwise convolution: one kh×kw filter per input channel (groups = "
                      "filters = C_in; the Filters and Groups values are not used)."
                  )),
        ParamSpec("bias", "bool", True, help="Add a learned bias to each output channel."),
        fused_activation("none"),
        L1,
        L2,
        ParamSpec("initial_kernel", "matrix", None, maximum=MAX_KERNEL,
                  help=(
                      "A fixed kh×kw kernel (from the convolution lab) that starts every filter "
                      "on every input channel, bias 0; empty: random initialisation. Untick "
                      "trainable to keep it frozen."
                  )),
        TRAINABLE,
    ),
    infer=_infer_conv,
    count=_count_conv,
    macs=_macs_conv,
    rf_step=_rf_conv,
    saved=_saved_conv,
    unused=_unused_conv,
    added_params=frozenset({"depthwise"}),
    name_prefix="conv",
    glyph="∗",
    key_params=("filters", "kernel", "stride", "padding", "activation"),
    has_weights=True,
)

BLOCKS = (CONV2D,)
