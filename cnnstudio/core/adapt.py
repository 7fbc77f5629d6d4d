"""Fit a network to a dataset: set the Input block's size and the number of classes.

Used by the command line (--input, --classes on a project file) and by the window's one-click
fixes when a dataset and the network disagree.
"""

from __future__ import annotations

from cnnstudio.core.graph import Graph, GraphError


def input_block_id(graph: Graph) -> str:
    for block in graph.blocks:
        if block.type == "Input":
            return block.id
    raise GraphError("the network has no Input block")


def classifier_block_ids(graph: Graph) -> list[str]:
    """The Dense layers that produce the class scores of every Output block."""
    ids = []
    for block in graph.blocks:
        if block.type != "Output":
            continue
        sources = graph.inputs_of(block.id)
        if len(sources) != 1 or graph.block(sources[0]).type != "Dense":
            raise GraphError(
                f"{block.label} is not fed directly by a Dense layer, so the number of classes "
                "cannot be set; connect the last Dense layer to it"
            )
        ids.append(sources[0])
    if not ids:
        raise GraphError("the network has no Output block, so it has no number of classes")
    return ids


def planned_changes(
    graph: Graph, input_shape: tuple[int, int, int] | None = None, classes: int | None = None
) -> dict[str, dict[str, int]]:
    """{block id: {param: value}} that fit the graph to this input shape and class count."""
    changes: dict[str, dict[str, int]] = {}
    if input_shape is not None:
        channels, height, width = input_shape
        changes[input_block_id(graph)] = {"channels": channels, "height": height, "width": width}
    if classes is not None:
        for block_id in classifier_block_ids(graph):
            changes[block_id] = {"units": classes}
    return changes


def adapt(
    graph: Graph, input_shape: tuple[int, int, int] | None = None, classes: int | None = None
) -> None:
    """Apply planned_changes to the graph (raises GraphError with a plain message)."""
    for block_id, params in planned_changes(graph, input_shape, classes).items():
        graph.set_params(block_id, params)
