"""The canvas's edits as functions of the graph, each run inside one `Document.edit`.

They call graph methods only, so undo and redo come for free (`core.history.record` keeps the
graph events). Placement uses the template convention: x is a block's centre, y its top edge,
rows `layout.STEP_Y` apart. The canvas and the lab (`lab/network.py`) use them; the block size
and grid here are the canvas card's, in scene units.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from cnnstudio.core import registry
from cnnstudio.core.analysis import Diagnostic
from cnnstudio.core.graph import Block, Edge, Graph, GraphError
from cnnstudio.core.grid import BLOCK_H, BLOCK_W, GRID
from cnnstudio.core.layout import STEP_Y


def snap(value: float) -> float:
    return round(value / GRID) * GRID


def can_insert(type_id: str) -> bool:
    """Whether a block of this type can sit in the middle of a wire."""
    block_type = registry.get(type_id)
    return block_type.max_inputs != 0 and block_type.has_output_port


def add_block(graph: Graph, type_id: str, params: Mapping[str, Any] | None,
              position: tuple[float, float], after: str | None = None) -> Block:
    """A new block; fed by `after` when given (stacking under the end of a chain)."""
    block = graph.add_block(type_id, params, position=position)
    if after is not None and graph.connection_problem(after, block.id) is None:
        graph.connect(after, block.id)
    return block


def occupied(graph: Graph, x: float, y: float, ignore: Iterable[str] = ()) -> bool:
    skip = set(ignore)
    return any(
        abs(b.x - x) < BLOCK_W + 10 and abs(b.y - y) < BLOCK_H + 20
        for b in graph.blocks if b.id not in skip
    )


def make_row(graph: Graph, y: float) -> None:
    """Move every block at or below y one row down, to make room for an inserted block."""
    for block in graph.blocks:
        if block.y >= y - 1:
            graph.move(block.id, block.x, block.y + STEP_Y)


def insert_on_edge(graph: Graph, edge: Edge, type_id: str, params: Mapping[str, Any] | None,
                   preferred: tuple[float, float] | None = None) -> Block:
    """Put a new block in the middle of a wire: src → new → dst, at the wire's input port.

    The block goes to `preferred` when that spot is free, else where dst was, with dst and
    every block below it one row further down."""
    dst = graph.block(edge.dst)
    if preferred is not None and not occupied(graph, *preferred):
        position = preferred
    else:
        position = (dst.x, dst.y)
        make_row(graph, dst.y)
    graph.disconnect(edge)
    block = graph.add_block(type_id, params, position=position)
    graph.connect(edge.src, block.id)
    graph.connect(block.id, edge.dst, edge.port)
    return block


def delete(graph: Graph, block_ids: Iterable[str], edges: Iterable[Edge] = ()) -> None:
    """Remove wires and blocks. A removed block with one input hands it on to the blocks it
    fed (at the same ports), so taking a block out of a chain keeps the chain connected."""
    for edge in edges:
        if edge in set(graph.edges):
            graph.disconnect(edge)
    for block_id in block_ids:
        if block_id not in graph:
            continue
        inputs, outputs = graph.input_edges(block_id), graph.output_edges(block_id)
        graph.remove_block(block_id)
        if len(inputs) != 1:
            continue
        for out in outputs:
            if graph.connection_problem(inputs[0].src, out.dst, out.port) is None:
                graph.connect(inputs[0].src, out.dst, out.port)


def move(graph: Graph, positions: Mapping[str, tuple[float, float]]) -> None:
    for block_id, (x, y) in positions.items():
        block = graph.block(block_id)
        if (block.x, block.y) != (x, y):
            graph.move(block_id, x, y)


def repair(graph: Graph, diagnostic: Diagnostic) -> Block | None:
    """Carry out a diagnostic's one-click repair."""
    action = dict(diagnostic.repair or {})
    block_id = diagnostic.block_id
    if block_id is None or not action:
        raise GraphError("this problem has no automatic fix")
    if action.get("action") == "set_param":
        graph.set_params(block_id, {action["param"]: action["value"]})
        return None
    if action.get("action") == "insert_before":
        edges = graph.input_edges(block_id)
        index = int(action.get("input_index", 0))
        if not 0 <= index < len(edges):
            raise GraphError(f"{graph.block(block_id).label} has no input {index + 1}")
        edge = edges[index]
        dst, src = graph.block(block_id), graph.block(edge.src)
        x = src.x if len(edges) > 1 else dst.x
        preferred = (x, dst.y - STEP_Y) if dst.y - src.y >= 2 * STEP_Y else None
        return insert_on_edge(graph, edge, action["type"], action.get("params"), preferred)
    raise GraphError(f"unknown repair {action.get('action')!r}")


def place_below(block: Block) -> tuple[float, float]:
    """Where a block stacked under `block` goes: one row down, same column."""
    return block.x, block.y + STEP_Y
