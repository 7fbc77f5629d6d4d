"""Concatenate (along channels), Add and Multiply: Inception modules, residual connections and
squeeze-and-excitation."""

from __future__ import annotations

from cnnstudio.core.blocks.base import BlockType, Saved, ShapeError, describe_shape


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

def scale_port(inputs) -> int | None:
    """The port of the per-channel scale when Multiply scales an image (C, H, W) by a vector
    (C,) or a (C, 1, 1) map; None when no input is such a scale of the other."""
    for port in (0, 1):
        scale, image = inputs[port], inputs[1 - port]
        if len(image) == 3 and scale != image and scale in ((image[0],), (image[0], 1, 1)):
            return port
    return None


def _infer_multiply(params, inputs):
    first, second = inputs
    if first == second:
        return first
    port = scale_port(inputs)
    if port is not None:
        return inputs[1 - port]
    message = f"input shapes {describe_shape(first)} and {describe_shape(second)} do not match"
    images = [s for s in inputs if len(s) == 3 and s[1:] != (1, 1)]
    if len(images) == 1:
        image = images[0]
        scale = second if image is first else first
        raise ShapeError(
            f"{message}: an image of {image[0]} channels needs {image[0]} channel weights, "
            f"not {describe_shape(scale)}",
            f"give the scale branch {image[0]} values (its last Dense layer {image[0]} units)",
        )
    raise ShapeError(
        message,
        "multiply two inputs of the same shape, or an image H×W×C by C channel weights "
        "(a vector of C values or a 1×1×C map)",
    )


def _saved_multiply(params, inputs, output) -> tuple[Saved, ...]:
    """Each factor, for the gradient of the other one (when that one needs a gradient)."""
    return (Saved("input", port=0, for_port=1), Saved("input", port=1, for_port=0))


MULTIPLY = BlockType(
    type_id="Multiply",
    version=1,
    display_name="Multiply",
    category="Merge",
    help=(
        "Multiplies its two inputs value by value. An image H×W×C times C channel weights (a "
        "vector, or 1×1×C) scales each channel: squeeze-and-excitation, where the weights come "
        "from the image itself (global average → Dense → Dense sigmoid). No parameters."
    ),
    params=(),
    infer=_infer_multiply,
    saved=_saved_multiply,
    min_inputs=2,
    max_inputs=2,
    name_prefix="mul",
    glyph="×",
)

BLOCKS = (CONCATENATE, ADD, MULTIPLY)
