"""The block declaration: one frozen record per block type, data plus pure functions.

The palette, the inspector form, validation, analysis, compilation, code generation and export
all read these records; nothing else describes a block type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from cnnstudio.core.params import ParamError, ParamSpec

Shape = tuple[int, ...]
Params = Mapping[str, Any]

CATEGORIES = (
    "Input",
    "Convolution",
    "Activation",
    "Pooling",
    "Regularisation",
    "Reshape",
    "Dense",
    "Merge",
    "Output",
)


class ShapeError(Exception):
    """A block cannot produce an output from these inputs.

    message: plain language naming the numbers involved; fix: what to do about it;
    repair: an optional machine-readable one-click repair (see analysis.Diagnostic).
    """

    def __init__(self, message: str, fix: str = "", repair: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.repair = repair


@dataclass(frozen=True)
class RFStep:
    """How a block grows the receptive field: effective kernel and stride per axis."""

    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1


IDENTITY_RF = RFStep()


def _no_params(params: Params, inputs: Sequence[Shape], output: Shape) -> tuple[int, int]:
    return 0, 0


def _no_macs(params: Params, inputs: Sequence[Shape], output: Shape) -> int:
    return 0


def _identity_rf(params: Params, inputs: Sequence[Shape]) -> RFStep:
    return IDENTITY_RF


@dataclass(frozen=True)
class Saved:
    """One tensor that a block's backward pass keeps from the forward pass in training.

    tensor: "input" (the tensor on input port `port`), "output" (the block's result) or "own"
    (a tensor only this block holds: pooling indices, a dropout mask, a padded copy, statistics).
    Inputs and outputs are activations other blocks may keep too; the analysis counts each one
    once, as autograd stores it once. Their size comes from the shape; an own tensor has
    `values` values per sample, or per batch when `per_sample` is False. A tensor kept only for
    the gradient of one input (a factor of a product, for the other's gradient) names that
    input's port as `for_port`: it is not kept when that input needs no gradient.
    """

    tensor: str
    values: int = 0
    itemsize: int = 4  # bytes per value: float32 4, int64 indices 8
    per_sample: bool = True
    port: int = 0
    for_port: int | None = None


SAVES_INPUT = Saved("input")
SAVES_OUTPUT = Saved("output")


def own(values: int, itemsize: int = 4, per_sample: bool = True) -> Saved:
    return Saved("own", values, itemsize, per_sample)


def _saves_nothing(params: Params, inputs: Sequence[Shape], output: Shape) -> tuple[Saved, ...]:
    return ()


def _never(params: Params) -> bool:
    return False


def _all_used(params: Params) -> Mapping[str, str]:
    return {}


def always(params: Params) -> bool:
    return True


@dataclass(frozen=True)
class BlockType:
    """Declaration of one block type.

    infer(params, input_shapes) -> output shape, or raise ShapeError.
    count(params, input_shapes, output) -> (learnable parameters, running-statistics values).
    macs(params, input_shapes, output) -> multiply-accumulates for one sample.
    rf_step(params, input_shapes) -> RFStep.
    saved(params, input_shapes, output) -> the tensors its backward pass keeps (Saved), as
    PyTorch autograd does on the CPU; the training-memory estimate adds them up.
    aliases_input(params) -> True when the output is the first input itself or a view of it
    (Flatten, Output), so that a tensor kept through either is counted once.
    glyph: the short text on the block's icon (palette, inspector, summary); empty: the first
    letter of the display name.
    unused(params) -> {parameter name: why} for the parameters that these values leave unused
    (a depthwise Conv2D's filters and groups); the inspector greys them out.
    added_params: parameters added after files with this block type were first saved, each
    with the default that keeps what such a file meant (a Pooling without ceil_mode rounds
    down): a file that lacks one is complete, so loading needs no note about filling it in.
    Shapes are PyTorch-ordered without the batch axis: (C, H, W) for images, (N,) for vectors.
    """

    type_id: str
    version: int
    display_name: str
    category: str
    help: str
    params: tuple[ParamSpec, ...]
    infer: Callable[[Params, Sequence[Shape]], Shape]
    count: Callable[[Params, Sequence[Shape], Shape], tuple[int, int]] = _no_params
    macs: Callable[[Params, Sequence[Shape], Shape], int] = _no_macs
    rf_step: Callable[[Params, Sequence[Shape]], RFStep] = _identity_rf
    saved: Callable[[Params, Sequence[Shape], Shape], tuple[Saved, ...]] = _saves_nothing
    aliases_input: Callable[[Params], bool] = _never
    unused: Callable[[Params], Mapping[str, str]] = _all_used
    added_params: frozenset[str] = frozenset()
    min_inputs: int = 1
    max_inputs: int | None = 1  # None: any number (Concatenate, Add)
    has_output_port: bool = True
    name_prefix: str = "block"
    key_params: tuple[str, ...] = ()
    has_weights: bool = False
    glyph: str = ""
    _by_name: dict[str, ParamSpec] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.type_id}: unknown category {self.category!r}")
        if not self.glyph:
            object.__setattr__(self, "glyph", self.display_name[:1].upper())
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        if len(self._by_name) != len(self.params):
            raise ValueError(f"{self.type_id}: duplicate parameter names")
        if not self.added_params <= set(self._by_name):
            raise ValueError(f"{self.type_id}: added_params names an unknown parameter")

    def param(self, name: str) -> ParamSpec:
        return self._by_name[name]

    def has_param(self, name: str) -> bool:
        return name in self._by_name

    def defaults(self) -> dict[str, Any]:
        return {p.name: _copy(p.default) for p in self.params}

    def normalize(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Defaults filled in and every value checked.

        Returns (normalised params, [(param name, problem)]). Invalid values keep their default
        in the returned dict so that analysis can go on; unknown names are reported.
        """
        values = self.defaults()
        problems: list[tuple[str, str]] = []
        for name, value in params.items():
            spec = self._by_name.get(name)
            if spec is None:
                problems.append((name, f"unknown parameter for {self.display_name}"))
                continue
            try:
                values[name] = spec.coerce(value)
            except ParamError as err:
                problems.append((name, str(err)))
        return values, problems

    def accepts_inputs(self, count: int) -> bool:
        return count >= self.min_inputs and (self.max_inputs is None or count <= self.max_inputs)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# -- small shared helpers for declarations -------------------------------------------------


def format_shape(shape: Shape | None) -> str:
    """Course-style text: (28,28,16) for an image (H, W, C), (576) for a vector."""
    if shape is None:
        return "?"
    if len(shape) == 3:
        c, h, w = shape
        return f"({h},{w},{c})"
    return "(" + ",".join(str(d) for d in shape) + ")"


def describe_shape(shape: Shape) -> str:
    """Prose text for messages: 28×28×16, or 'a vector of 576 values'."""
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}×{w}×{c}"
    if len(shape) == 1:
        return f"a vector of {shape[0]:,} values"
    return "×".join(str(d) for d in shape)


def prod(shape: Sequence[int]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


def require_image(label: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(
            f"{label} needs an image-shaped input (H×W×C) but gets {describe_shape(shape)}",
            "move it before the Flatten or global pooling block",
        )
    return shape  # type: ignore[return-value]


def single_input(inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


TRAINABLE = ParamSpec(
    "trainable",
    "bool",
    True,
    help="Learn this block's weights. Off: they are frozen (fine-tuning keeps them as loaded).",
)
L1 = ParamSpec("l1", "float", 0.0, label="L1 penalty", minimum=0.0, maximum=10.0,
               help="Weight of the L1 penalty λ₁·Σ|w| on this block's weights, added to the loss.")
L2 = ParamSpec("l2", "float", 0.0, label="L2 penalty", minimum=0.0, maximum=10.0,
               help="Weight of the L2 penalty λ₂·Σw² on this block's weights, added to the loss.")

FUSED_ACTIVATIONS = ("none", "relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid",
                     "relu6", "silu", "hardswish", "hardsigmoid")

# What the backward pass of each non-linearity needs: its result (ReLU: where it is positive;
# tanh, sigmoid, softmax: derivatives written in the output) or its argument.
KEEPS_RESULT = frozenset({"relu", "tanh", "sigmoid", "softmax"})
KEEPS_ARGUMENT = frozenset({"leaky_relu", "elu", "selu", "gelu", "relu6", "silu", "hardswish",
                            "hardsigmoid"})


def fused_activation_saved(name: str, output: Shape) -> tuple[Saved, ...]:
    """What an activation applied inside a block keeps: the block's output, or the values
    before the activation (a tensor of the output's size that only this block holds)."""
    if name in KEEPS_RESULT:
        return (SAVES_OUTPUT,)
    if name in KEEPS_ARGUMENT:
        return (own(prod(output)),)
    return ()


def fused_activation(default: str = "none") -> ParamSpec:
    return ParamSpec(
        "activation",
        "choice",
        default,
        choices=FUSED_ACTIVATIONS,
        help="Activation applied right after this block (Leaky ReLU slope 0.01, ELU α 1).",
    )
