"""What an Output block gives: class scores (logits) or class probabilities.

CNN Studio's loss and its predictions turn plain class scores into probabilities with softmax.
Networks written the Keras way end in a softmax of their own (Dense 10 → Activation softmax →
Output): their values are probabilities already, and a second softmax would flatten them (the
top class of a confident 10-class network shown at 23 %, every other at 8.5 %). A single sigmoid
unit (Keras' binary classifier) gives the probability p of the second of two classes, [1 − p, p].
This module is the one place that decides which an Output holds; the training loss, the
inspection views, every export and the generated Python file ask it (through
`cnnstudio.nn.probabilities` on the torch side), so softmax is applied exactly once.

    kind = output_kind(graph, "output")      # OutputKind(kind="probabilities", ...)
    kind.problem                              # "" or why training it would be unsound
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnstudio.core import registry
from cnnstudio.core.analysis import Analysis, BlockInfo, analyze
from cnnstudio.core.graph import Graph

LOGITS = "logits"  # class scores: softmax gives the probabilities
PROBABILITIES = "probabilities"  # a softmax feeds the Output: the values are probabilities
BINARY = "binary"  # one sigmoid unit: P(second class) of a two-class problem
KINDS = (LOGITS, PROBABILITIES, BINARY)

# Blocks that leave a flat vector unchanged at prediction: a softmax before them still gives
# the Output its probabilities. Dropout changes the values while training (see `problem`).
_LOOK_THROUGH = frozenset({"Flatten", "Dropout"})


@dataclass(frozen=True)
class OutputKind:
    """What an Output block's values are, and which block decides it.

    `problem` is "" when the output can be trained; otherwise it says what is wrong and how to
    fix it (the trainer refuses to start). The kind stays what prediction sees, so a run
    trained before the refusal existed is still shown and exported correctly."""

    kind: str = LOGITS
    block_id: str | None = None  # the softmax (or sigmoid) block; None for plain scores
    problem: str = ""


def output_kind(graph: Graph, output_id: str, analysis: Analysis | None = None) -> OutputKind:
    """What the Output block `output_id` gives. Never raises for a graph with errors: an output
    that cannot be followed back counts as plain scores."""
    if output_id not in graph:
        return OutputKind()
    info = (analysis or analyze(graph)).blocks
    dropouts: list[str] = []
    source = _only_source(graph, output_id)
    while source is not None and graph.block(source).type in _LOOK_THROUGH:
        inputs = info[source].input_shapes if source in info else ()
        if len(inputs) != 1 or len(inputs[0]) != 1:
            source = None  # e.g. a softmax over channels per pixel, flattened: not per class
            break
        if graph.block(source).type == "Dropout":
            dropouts.append(source)
        source = _only_source(graph, source)
    kind, decider = _kind_of(graph, source, info)
    output = graph.block(output_id)
    width = info[output_id].output_shape if output_id in info else None
    problem = ""
    if kind != LOGITS and dropouts:
        problem = (f"{graph.block(dropouts[0]).label} comes after the {_kind_word(kind)} of "
                   f"{graph.block(decider).label}: while training it zeroes and rescales the "
                   f"probabilities that {output.label} gives, so the loss is wrong; move the "
                   "Dropout before the last Dense layer")
    elif width == (1,) and kind != BINARY:
        problem = (f"{output.label} gets a single value without a sigmoid: softmax over one "
                   "value is always 1, so nothing can be learned; for two classes end with a "
                   "sigmoid (Dense activation sigmoid) or give the last Dense layer one unit per "
                   "class")
    return OutputKind(kind, decider, problem)


def _kind_word(kind: str) -> str:
    """The function that makes an output of this kind a probability, for messages."""
    return {PROBABILITIES: "softmax", BINARY: "sigmoid"}.get(kind, "scores")


def _kind_of(graph: Graph, block_id: str | None,
             info: dict[str, BlockInfo]) -> tuple[str, str | None]:
    """(kind, deciding block) for the block whose values reach the Output."""
    if block_id is None or block_id not in info:
        return LOGITS, None
    block = graph.block(block_id)
    try:
        params = registry.get(block.type).normalize(block.params)[0]
    except registry.UnknownBlockType:
        return LOGITS, None
    function = params.get("function") if block.type == "Activation" else params.get("activation")
    shape = info[block_id].output_shape
    if function == "softmax" and shape is not None and len(shape) == 1:
        return PROBABILITIES, block.id
    if function == "sigmoid" and shape == (1,):
        return BINARY, block.id
    return LOGITS, None


def output_kinds(graph: Graph, analysis: Analysis | None = None) -> dict[str, OutputKind]:
    """The kind of every Output block (auxiliary ones included), by block id."""
    analysis = analysis or analyze(graph)
    return {block.id: output_kind(graph, block.id, analysis)
            for block in graph.output_blocks()}


def _only_source(graph: Graph, block_id: str) -> str | None:
    sources = graph.inputs_of(block_id)
    return sources[0] if len(sources) == 1 else None


__all__ = ["BINARY", "KINDS", "LOGITS", "PROBABILITIES", "OutputKind", "output_kind",
           "output_kinds"]
