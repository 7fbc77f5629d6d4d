"""Flatten and Dense (fully connected)."""

from __future__ import annotations

from cnnstudio.core.blocks.base import (
    L1,
    L2,
    SAVES_INPUT,
    TRAINABLE,
    BlockType,
    RFStep,
    Saved,
    ShapeError,
    always,
    describe_shape,
    fused_activation,
    fused_activation_saved,
    prod,
)
from cnnstudio.core.params import ParamSpec


def _infer_flatten(params, inputs):
    return (prod(inputs[0]),)


def _rf_flatten(params, inputs):
    shape = inputs[0]
    if len(shape) == 3:
        return RFStep(shape[1], shape[2], 1, 1)
    return RFStep()


FLATTEN = BlockType(
    type_id="Flatten",
    version=1,
    display_name="Flatten",
    category="Reshape",
    help="Unrolls an H×W×C feature map into a vector of H·W·C values for Dense layers.",
    params=(),
    infer=_infer_flatten,
    rf_step=_rf_flatten,
    aliases_input=always,
    name_prefix="flatten",
    glyph="F",
)


def _infer_dense(params, inputs):
    shape = inputs[0]
    if len(shape) != 1:
        raise ShapeError(
            f"Dense needs a flat input but gets {describe_shape(shape)}",
            "insert Flatten before it",
            {"action": "insert_before", "type": "Flatten"},
        )
    return (params["units"],)


def _count_dense(params, inputs, output):
    units = params["units"]
    return inputs[0][0] * units + (units if params["bias"] else 0), 0


def _macs_dense(params, inputs, output):
    return inputs[0][0] * params["units"]


def _saved_dense(params, inputs, output) -> tuple[Saved, ...]:
    """The input, for the weight gradient only: a frozen Dense layer keeps none."""
    reads = (SAVES_INPUT,) if params["trainable"] else ()
    return (*reads, *fused_activation_saved(params["activation"], output))


DENSE = BlockType(
    type_id="Dense",
    version=1,
    display_name="Dense",
    category="Dense",
    help=(
        "Fully connected layer: every unit sees every input value. Parameters: "
        "(inputs + 1)·units."
    ),
    params=(
        ParamSpec("units", "int", 10, minimum=1, maximum=1_000_000, help="Number of output units."),
        ParamSpec("bias", "bool", True, help="Add a learned bias to each unit."),
        fused_activation("none"),
        L1,
        L2,
        TRAINABLE,
    ),
    infer=_infer_dense,
    count=_count_dense,
    macs=_macs_dense,
    saved=_saved_dense,
    name_prefix="fc",
    glyph="FC",
    key_params=("units", "activation"),
    has_weights=True,
)

BLOCKS = (FLATTEN, DENSE)
