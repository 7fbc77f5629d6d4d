"""Input and Output blocks."""

from __future__ import annotations

from cnnstudio.core.blocks.base import BlockType, ShapeError, always, describe_shape
from cnnstudio.core.params import ParamSpec

MAX_IMAGE_SIDE = 8192


def _infer_input(params, inputs):
    return (params["channels"], params["height"], params["width"])


INPUT = BlockType(
    type_id="Input",
    version=1,
    display_name="Input",
    category="Input",
    help="The image the network sees: channels (1 grey, 3 colour), height and width in pixels.",
    params=(
        ParamSpec("channels", "int", 1, minimum=1, maximum=64,
                  help="Colour channels of the image: 1 for grey, 3 for RGB."),
        ParamSpec("height", "int", 28, minimum=1, maximum=MAX_IMAGE_SIDE,
                  help="Image height in pixels."),
        ParamSpec("width", "int", 28, minimum=1, maximum=MAX_IMAGE_SIDE,
                  help="Image width in pixels."),
    ),
    infer=_infer_input,
    min_inputs=0,
    max_inputs=0,
    name_prefix="input",
    glyph="x",
    key_params=("channels", "height", "width"),
)


def _infer_output(params, inputs):
    (shape,) = inputs
    if len(shape) != 1:
        raise ShapeError(
            f"Output needs one score per class (a flat vector) but gets {describe_shape(shape)}",
            "end the branch with Flatten (or global pooling) and a Dense layer "
            "with one unit per class",
            {"action": "insert_before", "type": "Flatten"},
        )
    return shape


OUTPUT = BlockType(
    type_id="Output",
    version=1,
    display_name="Output",
    category="Output",
    help=(
        "Marks a classification head. The number of classes is the size of its input (the last "
        "Dense layer). What its values are depends on what feeds it: after an Activation softmax "
        "(Dense → Activation softmax → Output, as Keras writes it) they are probabilities "
        "already, and no second softmax is applied; a single sigmoid unit (Dense with 1 unit and "
        "sigmoid activation) is a two-class (binary) classifier, its value the probability of "
        "the second class; otherwise they are class scores (logits), and softmax turns them into "
        "probabilities in the loss and at prediction. A network may have auxiliary outputs: the "
        "training loss is Σ loss_weight·loss, e.g. 0.7·Loss_end + 0.3·Loss_aux as Inception v1 "
        "trains."
    ),
    params=(
        ParamSpec("loss_weight", "float", 1.0, minimum=0.0, maximum=100.0,
                  help="Weight of this output's loss in the total training loss."),
        ParamSpec("auxiliary", "bool", False,
                  help="An auxiliary classifier: trained, but not used for prediction or export."),
    ),
    infer=_infer_output,
    aliases_input=always,
    has_output_port=False,
    name_prefix="output",
    glyph="ŷ",
    key_params=("loss_weight",),
)

BLOCKS = (INPUT, OUTPUT)
