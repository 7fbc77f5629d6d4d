"""Dropout, BatchNorm and LocalResponseNorm."""

from __future__ import annotations

from cnnstudio.core.blocks.base import (
    SAVES_INPUT,
    TRAINABLE,
    BlockType,
    Saved,
    own,
    prod,
    require_image,
    single_input,
)
from cnnstudio.core.params import ParamSpec


def _infer_dropout(params, inputs):
    if params["mode"] == "channel":
        require_image("Channel-wise dropout", inputs[0])
    return single_input(inputs)


def _saved_dropout(params, inputs, output) -> tuple[Saved, ...]:
    """The float mask the input was multiplied by (PyTorch on the CPU; CUDA keeps one byte a
    value): one value per input value, or per channel in channel mode. Rate 0 passes the input
    through unchanged and keeps nothing."""
    if params["rate"] == 0:
        return ()
    return (own(inputs[0][0] if params["mode"] == "channel" else prod(inputs[0])),)


def _dropout_passes_input(params) -> bool:
    return params["rate"] == 0


DROPOUT = BlockType(
    type_id="Dropout",
    version=1,
    display_name="Dropout",
    category="Regularisation",
    help=(
        "During training, sets a random fraction of values to zero (and scales the rest by "
        "1/(1−rate)); does nothing at prediction. Channel mode drops whole feature maps."
    ),
    params=(
        ParamSpec("rate", "float", 0.5, minimum=0.0, maximum=0.99,
                  help="Fraction of values dropped during training."),
        ParamSpec("mode", "choice", "element", choices=("element", "channel"),
                  help="element: each value on its own. channel: whole channels (spatial dropout)."),
    ),
    infer=_infer_dropout,
    saved=_saved_dropout,
    aliases_input=_dropout_passes_input,
    name_prefix="dropout",
    glyph="D",
    key_params=("rate",),
)


def _infer_norm(params, inputs):
    return single_input(inputs)


def _count_batchnorm(params, inputs, output):
    channels = inputs[0][0]
    return 2 * channels, 2 * channels


def _saved_batchnorm(params, inputs, output) -> tuple[Saved, ...]:
    """The input and the batch mean and inverse spread of each channel (two values a channel,
    for the whole batch)."""
    return (SAVES_INPUT, own(2 * inputs[0][0], per_sample=False))


BATCHNORM = BlockType(
    type_id="BatchNorm",
    version=1,
    display_name="BatchNorm",
    category="Regularisation",
    help=(
        "Normalises each channel over the batch, then scales by γ and shifts by β (2 learned "
        "values per channel). Running mean and variance (2 more) are kept for prediction and "
        "counted apart as non-trainable, as Keras reports them."
    ),
    params=(
        ParamSpec("momentum", "float", 0.1, minimum=0.0, maximum=1.0,
                  help="PyTorch convention: running = (1 − m)·running + m·batch (Keras 0.99 = 0.01)."),
        ParamSpec("eps", "float", 1e-5, label="ε", minimum=1e-12, maximum=1.0,
                  help="Added to the variance to avoid dividing by zero."),
        TRAINABLE,
    ),
    infer=_infer_norm,
    count=_count_batchnorm,
    saved=_saved_batchnorm,
    name_prefix="bn",
    glyph="N",
    key_params=(),
    has_weights=True,
)


def _infer_lrn(params, inputs):
    return require_image("LocalResponseNorm", inputs[0])


def _saved_lrn(params, inputs, output) -> tuple[Saved, ...]:
    """As torch.nn.LocalResponseNorm computes it: the input, x² padded by size − 1 channels
    (for the sliding channel average), k + α·avg and its power β (the divisor)."""
    c, h, w = inputs[0]
    return (SAVES_INPUT, own((c + params["size"] - 1) * h * w), own(2 * c * h * w))


LRN = BlockType(
    type_id="LocalResponseNorm",
    version=1,
    display_name="Local response norm",
    category="Regularisation",
    help=(
        "Divides each value by (k + α/n·Σ x²)^β over n neighbouring channels, as AlexNet and "
        "GoogLeNet were published. No parameters."
    ),
    params=(
        ParamSpec("size", "int", 5, minimum=1, maximum=255, help="Neighbouring channels n."),
        ParamSpec("alpha", "float", 1e-4, label="α", minimum=0.0, maximum=10.0),
        ParamSpec("beta", "float", 0.75, label="β", minimum=0.0, maximum=10.0),
        ParamSpec("k", "float", 2.0, minimum=0.0, maximum=100.0),
    ),
    infer=_infer_lrn,
    saved=_saved_lrn,
    name_prefix="lrn",
    glyph="L",
    key_params=("size",),
)

BLOCKS = (DROPOUT, BATCHNORM, LRN)
