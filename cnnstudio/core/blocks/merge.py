"""Concatenate (along channels) and Add, for Inception modules and residual connections."""

from __future__ import annotations

from cnnstudio.core.blocks.base import BlockType, ShapeError, describe_shape


def _ranks_agree(inputs) -> None:
    if len({len(s) for s in inputs}) > 1:
        kinds = " and ".join(describe_shape(s) for s in inputs[:2])
        raise ShapeError(
            f"cannot merge an image with a vector ({kinds})",
            "flatten every branch, or none of them",
        )


def _infer_concat(params, inputs):
    _ranks_agree(inputs)
    first = inputs[0]
    if len(first) == 3:
        for other in inputs[1:]:
            if other[1:] != first[1:]:
                raise ShapeError(
                    f"spatial sizes {first[1]}×{first[2]} and {other[1]}×{other[2]} differ",
                    "give every branch the same height and width (check strides, padding and "
                    "pooling)",
                )
        return (sum(s[0] for s in inputs), first[1], first[2])
    return (sum(s[0] for s in inputs),)


CONCATENATE = BlockType(
    type_id="Concatenate",
    version=1,
    display_name="Concatenate",
    category="Merge",
    help=(
        "Stacks its inputs along the channel axis: H×W×C₁ and H×W×C₂ give H×W×(C₁+C₂). All "
        "spatial sizes must agree. The order of the channels follows the input ports."
    ),
    params=(),
    infer=_infer_concat,
    min_inputs=2,
    max_inputs=None,
    name_prefix="concat",
    glyph="≡",
)


def _infer_add(params, inputs):
    _ranks_agree(inputs)
    first = inputs[0]
    for index, other in enumerate(inputs[1:], start=1):
        if other == first:
            continue
        message = f"input shapes {describe_shape(first)} and {describe_shape(other)} differ"
        if len(first) == 3 and other[1:] == first[1:]:
            raise ShapeError(
                message,
                f"insert a 1×1 Conv2D with {first[0]} filters before input {index + 1} to match "
                "channels",
                {
                    "action": "insert_before",
                    "type": "Conv2D",
                    "params": {"filters": first[0], "kernel": [1, 1]},
                    "input_index": index,
                },
            )
        raise ShapeError(message, "every input of Add must have exactly the same shape")
    return first


ADD = BlockType(
    type_id="Add",
    version=1,
    display_name="Add",
    category="Merge",
    help="Adds its inputs value by value (a residual connection). All shapes must agree.",
    params=(),
    infer=_infer_add,
    min_inputs=2,
    max_inputs=None,
    name_prefix="add",
    glyph="+",
)

BLOCKS = (CONCATENATE, ADD)
