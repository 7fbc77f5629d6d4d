"""Activation: an element-wise non-linearity (softmax: across channels or features)."""

from __future__ import annotations

from cnnstudio.core.blocks.base import (
    KEEPS_RESULT,
    SAVES_INPUT,
    SAVES_OUTPUT,
    BlockType,
    Saved,
    single_input,
)
from cnnstudio.core.params import ParamSpec

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", "softmax",
               "relu6", "silu", "hardswish", "hardsigmoid")


def _infer_activation(params, inputs):
    return single_input(inputs)


def _saved_activation(params, inputs, output) -> tuple[Saved, ...]:
    return (SAVES_OUTPUT if params["function"] in KEEPS_RESULT else SAVES_INPUT,)


ACTIVATION = BlockType(
    type_id="Activation",
    version=1,
    display_name="Activation",
    category="Activation",
    help=(
        "Applies a non-linearity to every value: ReLU max(0, x), Leaky ReLU (slope ε for x < 0), "
        "ELU, SELU, GELU, tanh, sigmoid, softmax across channels, ReLU6 min(max(0, x), 6), "
        "SiLU (Swish) x·sigmoid(x), Hardswish x·ReLU6(x + 3)/6 or Hardsigmoid ReLU6(x + 3)/6 "
        "(MobileNet). No parameters."
    ),
    params=(
        ParamSpec("function", "choice", "relu", choices=ACTIVATIONS,
                  help="The non-linearity to apply."),
        ParamSpec("negative_slope", "float", 0.01, label="Leaky slope ε", minimum=0.0, maximum=1.0,
                  help="Leaky ReLU: f(x) = ε·x for x < 0."),
        ParamSpec("alpha", "float", 1.0, label="ELU α", minimum=0.0, maximum=10.0,
                  help="ELU: f(x) = α·(eˣ − 1) for x < 0."),
    ),
    infer=_infer_activation,
    saved=_saved_activation,
    name_prefix="act",
    glyph="ƒ",
    key_params=("function",),
)

BLOCKS = (ACTIVATION,)
