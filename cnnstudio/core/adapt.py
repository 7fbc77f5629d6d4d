"""Fit a network to a dataset: set the Input block's size and the number of classes.

Used by the command line (--input, --classes on a project file) and by the window's one-click
fixes when a dataset and the network disagree. A network made from a template is refitted the
way File → New builds it: the parameters the template derives from the input size (LeNet-5's C1
padding) follow the new size too, on the blocks the user left as the template made them.
`class_mismatches` is the one check of a network's outputs against a dataset's classes: the
engine, the command line, the Training page and export all ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.graph import Block, Graph, GraphError
from cnnstudio.core.templates import TEMPLATES


def input_block_id(graph: Graph) -> str:
    """The id of the Input block (Graph.input_block); raises GraphError without one."""
    block = graph.input_block()
    if block is None:
        raise GraphError("the network has no Input block")
    return block.id


def classifier_block_ids(graph: Graph) -> list[str]:
    """The blocks that produce the class scores of every Output block (Dense layers, or a
    Conv2D pooled to one value a channel)."""
    ids = []
    for block in graph.output_blocks():
        dense_id = _classifier_of(graph, block.id)
        if dense_id is None:
            raise GraphError(
                f"{block.label} is not fed by a Dense layer (or a convolution pooled to one "
                "value a channel), so the number of classes cannot be set; connect the last "
                "Dense layer to it"
            )
        ids.append(dense_id)
    if not ids:
        raise GraphError("the network has no Output block, so it has no number of classes")
    return ids


def template_changes(graph: Graph, template_id: str | None,
                     input_shape: tuple[int, int, int]) -> dict[str, dict[str, Any]]:
    """{block id: {param: value}}: what the template sets differently at `input_shape` than
    at the graph's present input size, for each block still as the template made it there.

    Empty when the graph came from no known template, or the template cannot be built at
    either size; a block the user edited keeps the user's values.
    """
    template = TEMPLATES.get(template_id or "")
    input_block = graph.input_block()
    if template is None or input_block is None:
        return {}
    params = input_block.params
    present = (int(params["channels"]), int(params["height"]), int(params["width"]))
    channels, height, width = input_shape
    try:
        before = template.build(present, template.default_classes)
        after = template.build((channels, height, width), template.default_classes)
    except ValueError:  # too small for the template (GraphError, ParamError included)
        return {}
    changes: dict[str, dict[str, Any]] = {}
    for block in after.blocks:
        if block.id == input_block.id or block.id not in before or block.id not in graph:
            continue
        made, current = before.block(block.id).params, graph.block(block.id)
        if current.type != block.type or before.block(block.id).type != block.type:
            continue
        differ = {name: value for name, value in block.params.items()
                  if made.get(name) != value}
        if differ and all(current.params.get(name) == made.get(name) for name in differ):
            changes[block.id] = differ
    return changes


def planned_changes(
    graph: Graph, input_shape: tuple[int, int, int] | None = None, classes: int | None = None,
    template_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """{block id: {param: value}} that fit the graph to this input shape and class count;
    with the id of the template the graph came from, its size-dependent parameters too."""
    changes: dict[str, dict[str, Any]] = {}
    if input_shape is not None:
        changes.update(template_changes(graph, template_id, input_shape))
        channels, height, width = input_shape
        changes[input_block_id(graph)] = {"channels": channels, "height": height, "width": width}
    if classes is not None:
        for block_id in classifier_block_ids(graph):
            changes[block_id] = {_class_param(graph.block(block_id)): classes}
    return changes


def adapt(
    graph: Graph, input_shape: tuple[int, int, int] | None = None, classes: int | None = None,
    template_id: str | None = None,
) -> None:
    """Apply planned_changes to the graph (raises GraphError with a plain message)."""
    for block_id, params in planned_changes(graph, input_shape, classes, template_id).items():
        graph.set_params(block_id, params)


# -- does the network's class count match the dataset's? ------------------------------------

# Blocks that hand a vector on unchanged in length: the classifier Dense may sit behind them
# (a Keras-style softmax Activation, a Dropout) and still decide how many classes come out.
_LENGTH_KEEPING = frozenset({"Activation", "Dropout", "BatchNorm"})


def outputs_fit_classes(units: int, classes: int) -> bool:
    """The one rule for whether an output of `units` values can classify `classes` classes.

    N units fit N classes, and a single unit fits two classes: binary classification with one
    sigmoid score (the probability of the second class), as Keras builds it.
    """
    return units == classes or (units == 1 and classes == 2)


@dataclass(frozen=True)
class ClassMismatch:
    """An Output block whose number of values does not fit the dataset's classes.

    block_id is the block whose units decide that number (the classifier Dense) or, when no
    Dense can be found, the block that feeds the Output; repair ({param: value} for block_id)
    is None then.
    """

    output_id: str
    auxiliary: bool
    block_id: str
    units: int
    classes: int
    message: str
    repair: dict[str, int] | None


def _classifier_of(graph: Graph, output_id: str) -> str | None:
    """The block whose units set how many values the Output gives, or None: the Dense before
    it, or a Conv2D whose maps a pooling reduces to one value each (SqueezeNet's classifier)."""
    sources = graph.inputs_of(output_id)
    pooled = False  # passed a pooling to one value per channel: a convolution may classify
    while len(sources) == 1:
        block = graph.block(sources[0])
        if block.type == "Dense":
            return block.id
        if block.type == "Conv2D" and pooled and not block.params.get("depthwise"):
            return block.id
        if _pools_to_one_value(block):
            pooled = True
        elif block.type not in _LENGTH_KEEPING and block.type != "Flatten":
            return None
        sources = graph.inputs_of(block.id)
    return None


def _pools_to_one_value(block: Block) -> bool:
    if block.type != "Pooling":
        return False
    mode = block.params.get("mode", "")
    return mode.startswith("global") or (mode.startswith("adaptive")
                                         and list(block.params.get("output_size", [])) == [1, 1])


def _class_param(block: Block) -> str:
    """The parameter that sets a classifier's number of class scores."""
    return "filters" if block.type == "Conv2D" else "units"


def _named(block: Block) -> str:
    """A block as messages name it here: display name, name, and the id when it differs."""
    display = registry.get(block.type).display_name
    text = f"the {display} block '{block.name}'"
    return text if block.name == block.id else f"{text} (id {block.id})"


def class_mismatches(graph: Graph, classes: int, dataset: str = "",
                     analysis: Analysis | None = None) -> list[ClassMismatch]:
    """Every Output (the main one first, then the auxiliary ones) whose number of values does
    not fit `classes`, with the block to change and the repair. Outputs without a known shape
    are left to the analysis, which already reports why."""
    analysis = analysis if analysis is not None else analyze(graph)
    outputs = sorted(graph.output_blocks(), key=lambda b: b.is_auxiliary_output)
    where = f"the dataset '{dataset}'" if dataset else "the dataset"
    found = []
    for output in outputs:
        info = analysis.blocks.get(output.id)
        shape = info.output_shape if info is not None else None
        if shape is None or len(shape) != 1 or outputs_fit_classes(shape[0], classes):
            continue
        units = shape[0]
        auxiliary = output.is_auxiliary_output
        dense_id = _classifier_of(graph, output.id)
        sources = graph.inputs_of(output.id)
        block = graph.block(dense_id or sources[0])
        role = f"feeds the auxiliary output '{output.name}' and " if auxiliary else ""
        if dense_id is not None:
            param = _class_param(block)
            fix, repair = f"set its {param} to {classes}", {param: classes}
        else:
            fix, repair = (f"end the network with a Dense layer of {classes} units before "
                           f"'{output.name}'"), None
        scores = "1 class score" if units == 1 else f"{units} class scores"
        message = (f"{_named(block)} {role}gives {scores} but {where} has {classes} classes: "
                   f"{fix}")
        found.append(ClassMismatch(output.id, auxiliary, block.id, units, classes, message,
                                   repair))
    return found


def class_mismatch_message(mismatches: list[ClassMismatch]) -> str:
    """One message for all of them (the main output's first)."""
    return "; ".join(m.message for m in mismatches)


def repair_class_mismatches(graph: Graph, mismatches: list[ClassMismatch]) -> None:
    """Set every mismatched classifier to the dataset's classes (one undoable edit when run
    inside history.record); raises GraphError when one has no automatic repair."""
    for mismatch in mismatches:
        if mismatch.repair is None:
            raise GraphError(mismatch.message)
    for mismatch in mismatches:
        graph.set_params(mismatch.block_id, mismatch.repair)  # type: ignore[arg-type]
