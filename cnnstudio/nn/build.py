"""Compile a core Graph into a torch nn.Module whose shapes and counts match analyze(graph).

The analysis is the single source of truth for shapes: each layer is built from the input shape
the analysis computed for it, so padding (Keras-style 'same' included) is resolved once, here,
with the same geometry functions the canvas uses.
"""

# No `from __future__ import annotations` here: TorchScript reads the class-level annotations
# (List[int], Dict[str, ...]) and cannot resolve them as strings.
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor, nn

from cnnstudio.core import registry
from cnnstudio.core.analysis import BlockInfo, Diagnostic, analyze
from cnnstudio.core.blocks.conv import conv_groups_filters
from cnnstudio.core.blocks.merge import scale_port
from cnnstudio.core.blocks.pool import ADAPTIVE_MODES, GLOBAL_MODES, pool_plan, pool_stride
from cnnstudio.core.geometry import resolve_padding
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.outputs import LOGITS, output_kind
from cnnstudio.nn.layers import (
    ActivationLayer,
    AdaptivePoolLayer,
    AddLayer,
    BatchNormLayer,
    ConcatLayer,
    ConvLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    GlobalPoolLayer,
    IdentityLayer,
    LRNLayer,
    MultiplyLayer,
    PoolLayer,
    activation_module,
    pad_list,
    penalized_weight,
)

Params = Mapping[str, Any]


class ModelBuildError(ValueError):
    """The graph has analysis errors, so no model can be built. One error per message line."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        count = len(self.diagnostics)
        lines = [f"cannot build the network: {count} error{'s' if count != 1 else ''}"]
        for diagnostic in self.diagnostics:
            line = f"- {diagnostic.message}"
            if diagnostic.fix:
                line += f" (fix: {diagnostic.fix})"
            lines.append(line)
        super().__init__("\n".join(lines))


class GraphModel(nn.Module):
    """Runs the blocks of a graph in topological order.

    forward(x) returns the main Output's tensor (logits, no softmax) and computes only the blocks
    the main output depends on, so auxiliary heads cost nothing at prediction and do not appear in
    a traced or exported model.
    """

    input_id: str
    main_output_id: str
    output_kind: str  # what forward() gives: core.outputs LOGITS, PROBABILITIES or BINARY
    output_ids: List[str]
    order: List[str]
    sources: Dict[str, List[str]]
    main_path: List[str]
    outputs_path: List[str]

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        sources: Mapping[str, Sequence[str]],
        input_id: str,
        main_output_id: str,
        output_ids: Sequence[str],
        penalties: Mapping[str, Tuple[float, float]],
        output_kind: str = LOGITS,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(dict(layers))
        self.order = list(layers)
        self.sources = {k: list(v) for k, v in sources.items()}
        self.input_id = input_id
        self.main_output_id = main_output_id
        self.output_kind = output_kind
        self.output_ids = list(output_ids)
        self.main_path = self._needed([main_output_id])
        self.outputs_path = self._needed(self.output_ids)
        self._penalties = dict(penalties)

    def _needed(self, targets: Iterable[str]) -> List[str]:
        """The targets and every block they depend on, in topological order."""
        seen: set[str] = set()
        stack = list(targets)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.sources[current])
        return [block_id for block_id in self.order if block_id in seen]

    def _run(self, x: Tensor, needed: List[str]) -> Dict[str, Tensor]:
        values: Dict[str, Tensor] = {}
        for block_id, layer in self.blocks.items():
            if block_id in needed:
                if block_id == self.input_id:
                    inputs = [x]
                else:
                    inputs = [values[source] for source in self.sources[block_id]]
                values[block_id] = layer(inputs)
        return values

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x, self.main_path)[self.main_output_id]

    @torch.jit.export
    def forward_outputs(self, x: Tensor) -> Dict[str, Tensor]:
        """Every Output block's tensor by block id, auxiliary outputs included (for training)."""
        values = self._run(x, self.outputs_path)
        return {output_id: values[output_id] for output_id in self.output_ids}

    @torch.jit.unused
    def activations(self, x: Tensor, block_ids: Iterable[str]) -> dict[str, Tensor]:
        """The output of each requested block (feature maps), computing only what they need."""
        wanted = list(block_ids)
        unknown = [block_id for block_id in wanted if block_id not in self.sources]
        if unknown:
            raise KeyError(f"no block with id {', '.join(map(repr, unknown))} in this model")
        values = self._run(x, self._needed(wanted))
        return {block_id: values[block_id] for block_id in wanted}

    @torch.jit.unused
    def penalty(self) -> Tensor:
        """Σ l1·Σ|w| + l2·Σw² over the weight tensor of every block with a penalty."""
        total: Tensor | None = None
        for block_id, (l1, l2) in self._penalties.items():
            weight = penalized_weight(self.blocks[block_id])
            if weight is None:
                continue
            term = weight.new_zeros(())
            if l1 > 0:
                term = term + l1 * weight.abs().sum()
            if l2 > 0:
                term = term + l2 * weight.pow(2).sum()
            total = term if total is None else total + term
        if total is None:
            reference = next(self.parameters(), None)
            return torch.zeros((), device=reference.device if reference is not None else None)
        return total


def build_model(graph: Graph) -> GraphModel:
    """A fresh, randomly initialised torch model for the graph; raises ModelBuildError."""
    analysis = analyze(graph)
    if not analysis.ok:
        raise ModelBuildError(analysis.errors)
    layers: dict[str, nn.Module] = {}
    penalties: dict[str, Tuple[float, float]] = {}
    for block_id in analysis.order:
        block = graph.block(block_id)
        params = registry.get(block.type).normalize(block.params)[0]
        layer = _build_layer(block, params, analysis.blocks[block_id])
        if params.get("trainable", True) is False:
            for parameter in layer.parameters():
                parameter.requires_grad_(False)
        l1, l2 = float(params.get("l1", 0.0)), float(params.get("l2", 0.0))
        if l1 > 0 or l2 > 0:
            penalties[block_id] = (l1, l2)
        layers[block_id] = layer
    main, source = graph.main_output(), graph.input_block()
    assert main is not None and source is not None  # the analysis has no error
    sources = {block_id: graph.inputs_of(block_id) for block_id in analysis.order}
    return GraphModel(
        layers,
        sources,
        input_id=source.id,
        main_output_id=main.id,
        output_ids=[b.id for b in graph.output_blocks()],
        penalties=penalties,
        output_kind=output_kind(graph, main.id, analysis).kind,
    )


def _build_layer(block: Block, params: Params, info: BlockInfo) -> nn.Module:
    builder = _BUILDERS.get(block.type)
    if builder is None:
        raise ModelBuildError(
            [Diagnostic(block.id, "error", "unsupported",
                        f"{block.label}: no torch layer for block type {block.type!r}",
                        "replace it with a supported block")]
        )
    return builder(params, info)


def _build_conv(params: Params, info: BlockInfo) -> nn.Module:
    c_in, h, w = info.input_shapes[0]
    (kh, kw), (sh, sw), (dh, dw) = params["kernel"], params["stride"], params["dilation"]
    pad_h = resolve_padding(params["padding"], h, kh, sh, dh, 0)
    pad_w = resolve_padding(params["padding"], w, kw, sw, dw, 1)
    symmetric = pad_h[0] == pad_h[1] and pad_w[0] == pad_w[1]
    groups, filters = conv_groups_filters(params, c_in)
    conv = nn.Conv2d(
        c_in,
        filters,
        (kh, kw),
        stride=(sh, sw),
        padding=(pad_h[0], pad_w[0]) if symmetric else 0,
        dilation=(dh, dw),
        groups=groups,
        bias=params["bias"],
    )
    if params.get("initial_kernel") is not None:
        set_initial_kernel(conv, params["initial_kernel"])
    pads = [0, 0, 0, 0] if symmetric else pad_list(pad_h, pad_w)
    return ConvLayer(conv, pads, activation_module(params["activation"]))


def set_initial_kernel(conv: nn.Conv2d, kernel: Sequence[Sequence[float]]) -> None:
    """Every filter × input channel starts as the same kh×kw kernel, and the bias at 0."""
    with torch.no_grad():
        values = torch.tensor(kernel, dtype=conv.weight.dtype, device=conv.weight.device)
        conv.weight.copy_(values.expand_as(conv.weight))
        if conv.bias is not None:
            conv.bias.zero_()


def _build_dense(params: Params, info: BlockInfo) -> nn.Module:
    (features,) = info.input_shapes[0]
    linear = nn.Linear(features, params["units"], bias=params["bias"])
    return DenseLayer(linear, activation_module(params["activation"]))


def _build_activation(params: Params, info: BlockInfo) -> nn.Module:
    return ActivationLayer(
        activation_module(params["function"], params["negative_slope"], params["alpha"])
    )


def _build_pool(params: Params, info: BlockInfo) -> nn.Module:
    if params["mode"] in GLOBAL_MODES:
        return GlobalPoolLayer(params["mode"])
    if params["mode"] in ADAPTIVE_MODES:
        return AdaptivePoolLayer(params["mode"], params["output_size"], info.input_shapes[0][1:])
    plan = pool_plan(params, info.input_shapes[0])
    return PoolLayer(params["mode"], params["pool_size"], pool_stride(params),
                     pad_list(plan.pad_h, plan.pad_w), plan.native, plan.count_include_pad,
                     pad_list(plan.counted_h, plan.counted_w), plan.divides_by_count)


def _build_multiply(params: Params, info: BlockInfo) -> nn.Module:
    port = scale_port(info.input_shapes)
    vector = port is not None and len(info.input_shapes[port]) == 1
    return MultiplyLayer(port if vector else -1)


def _build_dropout(params: Params, info: BlockInfo) -> nn.Module:
    rate = params["rate"]
    return DropoutLayer(nn.Dropout2d(rate) if params["mode"] == "channel" else nn.Dropout(rate))


def _build_batchnorm(params: Params, info: BlockInfo) -> nn.Module:
    shape = info.input_shapes[0]
    norm_type = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return BatchNormLayer(norm_type(shape[0], eps=params["eps"], momentum=params["momentum"]))


def _build_lrn(params: Params, info: BlockInfo) -> nn.Module:
    return LRNLayer(
        nn.LocalResponseNorm(params["size"], alpha=params["alpha"], beta=params["beta"],
                             k=params["k"])
    )


# one entry per registered block type (tests/test_block_tables.py checks it)
_BUILDERS = {
    "Input": lambda params, info: IdentityLayer(),
    "Output": lambda params, info: IdentityLayer(),
    "Conv2D": _build_conv,
    "Dense": _build_dense,
    "Activation": _build_activation,
    "Pooling": _build_pool,
    "Dropout": _build_dropout,
    "BatchNorm": _build_batchnorm,
    "LocalResponseNorm": _build_lrn,
    "Flatten": lambda params, info: FlattenLayer(),
    "Concatenate": lambda params, info: ConcatLayer(),
    "Add": lambda params, info: AddLayer(),
    "Multiply": _build_multiply,
}


class PoolThenReLU(nn.Module):
    """A max pooling followed by the ReLU that came before it (see pool_before_relu)."""

    def __init__(self, pool: PoolLayer) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return torch.relu(self.pool(inputs))


def _reorderable_pool(layer: nn.Module) -> bool:
    """A max pooling in which every window holds at least one real pixel: each pad is smaller
    than the window (a window of padding alone would give -inf before the ReLU, 0 after)."""
    if not isinstance(layer, PoolLayer) or layer.mode != "max":
        return False
    kh, kw = layer.kernel
    ph, pw = layer.padding
    left, right, top, bottom = layer.pads
    return max(left, right) + pw < kw and max(top, bottom) + ph < kh


def pool_before_relu(model: GraphModel) -> List[Tuple[str, str]]:
    """Move each ReLU that feeds only a max pooling behind that pooling, in place; returns the
    (ReLU block, pooling block) pairs moved.

    max(relu(x)) == relu(max(x)) exactly, since ReLU never changes the order of two values, and
    the gradients match too (the same winner in each window, zero where the maximum is <= 0);
    the ReLU then runs on a quarter of the values (2x2 pooling). A ReLU is moved only when the
    pooling is the only block that reads it (nor is it an Output), fused into a Conv2D or an
    Activation block of its own. Meant for the training-time model: afterwards the ReLU block's
    own value (activations()) is the one before the ReLU, so inspection builds its own model.
    State-dict keys are unchanged (neither ReLU nor pooling has parameters or buffers).
    """
    readers: Dict[str, List[str]] = {block_id: [] for block_id in model.order}
    for block_id, sources in model.sources.items():
        for source in sources:
            readers[source].append(block_id)
    moved: List[Tuple[str, str]] = []
    for relu_id in model.order:
        layer = model.blocks[relu_id]
        if not isinstance(layer, (ConvLayer, ActivationLayer)) or type(layer.act) is not nn.ReLU:
            continue
        if len(readers[relu_id]) != 1 or relu_id in model.output_ids:
            continue
        pool_id = readers[relu_id][0]
        if not _reorderable_pool(model.blocks[pool_id]):
            continue
        layer.act = nn.Identity()
        model.blocks[pool_id] = PoolThenReLU(model.blocks[pool_id])
        moved.append((relu_id, pool_id))
    return moved


def running_stat_count(layer: nn.Module) -> int:
    """Running mean and variance values of a layer (num_batches_tracked excluded)."""
    return sum(
        buffer.numel()
        for name, buffer in layer.named_buffers()
        if name.rsplit(".", 1)[-1] in ("running_mean", "running_var")
    )


__all__ = ["GraphModel", "ModelBuildError", "build_model", "pool_before_relu",
           "running_stat_count", "set_initial_kernel"]
