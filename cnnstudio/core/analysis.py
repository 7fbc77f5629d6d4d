"""analyze(graph): every number the canvas, the summary table and the CLI show.

Pure and total: it never raises. Problems become Diagnostics pinned to a block id, each with a
plain-language message naming the numbers involved and a suggested fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from cnnstudio.core import registry
from cnnstudio.core.blocks.base import RFStep, Saved, Shape, ShapeError, prod
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.memory import BlockMemory, SavedBytes, saved_bytes

BYTES_PER_VALUE = 4  # float32
OPTIMIZER_STATE_SLOTS = {"sgd": 1, "rmsprop": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class Diagnostic:
    block_id: str | None
    severity: str  # "error" | "warning"
    code: str
    message: str
    fix: str = ""
    repair: Mapping[str, Any] | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "block_id": self.block_id,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "repair": dict(self.repair) if self.repair else None,
        }


@dataclass
class BlockInfo:
    id: str
    name: str
    type: str
    input_shapes: tuple[Shape, ...] = ()
    output_shape: Shape | None = None
    params: int = 0  # learnable values (nn.Parameter numel), frozen or not: PyTorch's count
    trainable: int = 0
    non_trainable: int = 0  # running statistics plus frozen learnable values
    buffers: int = 0  # running statistics (BatchNorm mean and variance)
    macs: int = 0
    receptive_field: tuple[int, int] | None = None
    jump: tuple[int, int] | None = None  # cumulative stride, in input pixels
    saved: SavedBytes = SavedBytes()  # this block's share of the activations kept for backward

    @property
    def activation_size(self) -> int:
        return prod(self.output_shape) if self.output_shape is not None else 0

    @property
    def total_params(self) -> int:
        """Keras's Param #: trainable + non-trainable (learnable values + running statistics)."""
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of one float32 training step: weights (with running statistics), their gradients,
    the optimiser's state, and the activations autograd keeps for the backward pass."""

    batch_size: int
    weights: int
    gradients: int
    optimizer_state: int
    activations: int  # saved for backward, each tensor once

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations


@dataclass
class Analysis:
    order: list[str]
    blocks: dict[str, BlockInfo]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def diagnostics_for(self, block_id: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.block_id == block_id]

    @property
    def total_params(self) -> int:
        """Trainable + non-trainable, as Keras reports it: BatchNorm running statistics count."""
        return self.trainable_params + self.non_trainable

    @property
    def learnable_params(self) -> int:
        """Learnable values, as PyTorch counts sum(p.numel() for p in model.parameters())."""
        return sum(b.params for b in self.blocks.values())

    @property
    def trainable_params(self) -> int:
        return sum(b.trainable for b in self.blocks.values())

    @property
    def non_trainable(self) -> int:
        return sum(b.non_trainable for b in self.blocks.values())

    @property
    def macs(self) -> int:
        return sum(b.macs for b in self.blocks.values())

    def memory(self, batch_size: int, optimizer: str = "adam") -> TrainingMemory:
        """Bytes one float32 training step needs at this batch size (PyTorch's workspace and
        temporaries aside); the saved activations are what autograd keeps on the CPU."""
        slots = OPTIMIZER_STATE_SLOTS.get(optimizer, 2)
        return TrainingMemory(
            batch_size=batch_size,
            weights=BYTES_PER_VALUE * self.total_params,
            gradients=BYTES_PER_VALUE * self.trainable_params,
            optimizer_state=BYTES_PER_VALUE * slots * self.trainable_params,
            activations=sum(b.saved.at(batch_size) for b in self.blocks.values()),
        )


def analyze(graph: Graph) -> Analysis:
    """Shapes, counts, receptive fields and diagnostics for every block. Never raises."""
    try:
        return _Analyzer(graph).run()
    except Exception as err:  # a bug must not take the editor down: report it instead
        return Analysis(
            order=[],
            blocks={},
            diagnostics=[
                Diagnostic(None, "error", "internal", f"analysis failed: {err!r}",
                           "please report this network as a bug")
            ],
        )


class _Analyzer:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.diagnostics: list[Diagnostic] = []
        self.infos: dict[str, BlockInfo] = {}
        self.rf: dict[str, tuple[int, int, int, int]] = {}
        self.memory: dict[str, BlockMemory] = {}

    def error(self, block: Block | None, code: str, message: str, fix: str = "",
              repair: Mapping[str, Any] | None = None, severity: str = "error") -> None:
        self.diagnostics.append(
            Diagnostic(block.id if block else None, severity, code, message, fix, repair)
        )

    def run(self) -> Analysis:
        graph = self.graph
        order, cyclic = graph.topological_order()
        self._check_graph_level(cyclic)
        for block_id in order:
            self._analyze_block(graph.block(block_id))
        for block_id in cyclic:
            block = graph.block(block_id)
            self.infos[block_id] = BlockInfo(block.id, block.name, block.type)
        self._check_unused()
        self._saved_activations()
        return Analysis(order=order + cyclic, blocks=self.infos, diagnostics=self.diagnostics)

    def _check_graph_level(self, cyclic: list[str]) -> None:
        inputs = self.graph.input_blocks()
        outputs = self.graph.output_blocks()
        if not inputs:
            self.error(None, "no_input", "The network has no Input block",
                       "add an Input block (category Input) at the top of the network")
        for extra in inputs[1:]:
            self.error(extra, "extra_input",
                       f"{extra.label}: only one Input block is supported "
                       f"('{inputs[0].name}' is the first)", "delete this Input block")
        if not outputs:
            self.error(None, "no_output", "The network has no Output block",
                       "add an Output block after the last Dense layer")
        main = self.graph.main_outputs()
        if outputs and not main:
            self.error(outputs[0], "no_main_output",
                       "Every Output block is auxiliary: prediction needs one main output",
                       f"untick 'auxiliary' on {outputs[0].label}")
        for extra in main[1:]:
            self.error(extra, "extra_main_output",
                       f"{extra.label}: more than one main Output ('{main[0].name}' is the first)",
                       "tick 'auxiliary' on this Output or delete it")
        for block_id in cyclic:
            block = self.graph.block(block_id)
            self.error(block, "cycle", f"{block.label} is part of a cycle, or fed by one",
                       "remove the wire that leads back to an earlier block")

    def _analyze_block(self, block: Block) -> None:
        graph = self.graph
        block_type = registry.get(block.type)
        info = BlockInfo(block.id, block.name, block.type)
        self.infos[block.id] = info
        sources = graph.inputs_of(block.id)
        upstream = [self.infos.get(s) for s in sources]
        shapes = tuple(u.output_shape if u is not None else None for u in upstream)
        result = _evaluate(block_type, block.params, shapes)
        for param, message in result.problems:
            self.error(block, "invalid_param", f"{block.label}, {param}: {message}",
                       "enter a valid value in the inspector")
        n = len(sources)
        if n < block_type.min_inputs:
            if block_type.min_inputs == 1:
                self.error(block, "missing_input", f"{block.label} has no input",
                           "connect the output of another block to it")
            else:
                self.error(block, "missing_input",
                           f"{block.label} needs at least {block_type.min_inputs} inputs "
                           f"but has {n}", "connect another branch to it")
            return
        if block_type.max_inputs is not None and n > block_type.max_inputs:
            self.error(block, "too_many_inputs",
                       f"{block.label} takes {block_type.max_inputs} input(s) but has {n}",
                       "remove the extra wires, or merge the branches with Concatenate or Add")
            return
        if result.problems or None in shapes:
            return  # an upstream block without a shape has its own diagnostic
        info.input_shapes = shapes  # type: ignore[assignment]
        if result.error is not None:
            err = result.error
            self.error(block, "shape", f"{block.label}: {err.message}", err.fix, err.repair)
            return
        info.output_shape = result.output
        info.params, info.buffers, info.macs = result.learnable, result.buffers, result.macs
        info.trainable = 0 if result.frozen else result.learnable
        info.non_trainable = result.buffers + (result.learnable if result.frozen else 0)
        self.memory[block.id] = BlockMemory(block.type, sources, shapes, result.output,
                                            result.saved, result.aliases, info.trainable > 0)
        self._receptive_field(block, info, sources, result.step)  # type: ignore[arg-type]

    def _saved_activations(self) -> None:
        outputs = [b.id for b in self.graph.output_blocks()]
        order = [block_id for block_id in self.infos if block_id in self.memory]
        for block_id, saved in saved_bytes(order, self.memory, outputs).items():
            self.infos[block_id].saved = saved

    def _receptive_field(self, block: Block, info: BlockInfo, sources: list[str],
                         step: RFStep) -> None:
        if not sources:
            rf = (1, 1, 1, 1)
        else:
            ups = [self.rf[s] for s in sources if s in self.rf]
            if not ups:
                return
            if len(ups) == 1:
                rh, rw, jh, jw = ups[0]
            else:
                rh, rw, jh, jw = (max(u[i] for u in ups) for i in range(4))
            rf = (
                rh + (step.kernel_h - 1) * jh,
                rw + (step.kernel_w - 1) * jw,
                jh * step.stride_h,
                jw * step.stride_w,
            )
        self.rf[block.id] = rf
        info.receptive_field = (rf[0], rf[1])
        info.jump = (rf[2], rf[3])

    def _check_unused(self) -> None:
        for block in self.graph.blocks:
            block_type = registry.get(block.type)
            if block_type.has_output_port and not self.graph.output_edges(block.id):
                self.error(block, "unused_output", f"The output of {block.label} is not used",
                           "connect it to a following block, or delete it", severity="warning")


@dataclass(frozen=True)
class _BlockResult:
    """What one block computes from its own parameters and input shapes alone."""

    problems: tuple[tuple[str, str], ...]
    output: Shape | None = None
    error: ShapeError | None = None
    learnable: int = 0
    buffers: int = 0
    macs: int = 0
    step: RFStep | None = None
    frozen: bool = False
    saved: tuple[Saved, ...] = ()
    aliases: bool = False


_MEMO: dict[tuple, _BlockResult] = {}
_MEMO_LIMIT = 20_000


def _freeze(params: Mapping[str, Any]) -> tuple:
    return tuple((k, _frozen(v)) for k, v in params.items())


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a parameter value: lists (pairs, matrices) become tuples."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _evaluate(block_type, params: Mapping[str, Any], shapes: tuple) -> _BlockResult:
    """Validate, infer, count: memoised, because an edit leaves most blocks unchanged."""
    try:
        key = (block_type.type_id, _freeze(params), shapes)
        cached = _MEMO.get(key)
    except TypeError:  # an unhashable value from a damaged file: compute without the memo
        key, cached = None, None
    if cached is not None:
        return cached
    values, problems = block_type.normalize(params)
    result = _BlockResult(tuple(problems))
    if not problems and None not in shapes and block_type.accepts_inputs(len(shapes)):
        result = _infer(block_type, values, shapes)
    if key is not None:
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[key] = result
    return result


def _infer(block_type, values: Mapping[str, Any], shapes: tuple) -> _BlockResult:
    try:
        output = tuple(block_type.infer(values, shapes))
        learnable, buffers = block_type.count(values, shapes, output)
        macs = block_type.macs(values, shapes, output)
        step = block_type.rf_step(values, shapes)
        saved = tuple(block_type.saved(values, shapes, output))
    except ShapeError as err:
        return _BlockResult((), error=err)
    frozen = block_type.has_weights and not values.get("trainable", True)
    return _BlockResult((), output, None, learnable, buffers, macs, step, frozen, saved,
                        block_type.aliases_input(values))


# -- the training settings against the graph -------------------------------------------------

# BatchNorm in training normalises each channel by its mean and spread over the batch: one image
# gives a vector nothing to compare (PyTorch refuses), and a feature map only its own pixels.
MIN_NORM_BATCH = 2


def training_diagnostics(graph: Graph, *, batch_size: int) -> list[Diagnostic]:
    """Problems of training settings with this network (the graph's own come from analyze).

    A repair here changes a training setting: {"action": "set_setting", "group": "training",
    "param": name, "value": value}.
    """
    diagnostics: list[Diagnostic] = []
    norms = [b for b in graph.blocks
             if b.type == "BatchNorm" and b.params.get("trainable", True)]  # frozen: eval mode
    if norms and batch_size < MIN_NORM_BATCH:
        others = f" (and {len(norms) - 1} more)" if len(norms) > 1 else ""
        diagnostics.append(Diagnostic(
            norms[0].id, "error", "batchnorm_batch",
            f"BatchNorm needs batches of at least {MIN_NORM_BATCH}: {norms[0].label}{others} "
            f"normalises each channel over the batch, and the batch size is {batch_size}",
            f"set the batch size to {MIN_NORM_BATCH} or more (16 or more gives steadier "
            "statistics), or remove the BatchNorm blocks",
            {"action": "set_setting", "group": "training", "param": "batch_size",
             "value": MIN_NORM_BATCH},
        ))
    return diagnostics
