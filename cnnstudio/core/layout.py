"""Automatic layered layout (Sugiyama style) of a network graph. Pure: no Qt.

Positions follow the template convention: x is a block's horizontal centre, y its top edge.
Top to bottom (DOWN, the default), the main chain runs down with a STEP_Y (110 px) step and
parallel branches sit side by side STEP_X (220 px) apart. Left to right (RIGHT), the layers
are columns RIGHT_STEP_X (300 px) apart, room for a wire to curve from a block's bottom port
into the top of the next and for its shape label, and parallel branches sit RIGHT_STEP_Y
(120 px) apart in a column; the ports stay at the top and bottom of the blocks.

1. Layers: the longest path from the inputs, so every wire goes downward.
2. Wires that skip layers get a placeholder in each layer they cross, so a long wire keeps a
   lane of its own and its branch stays in its column.
3. Order within a layer: barycentre heuristic, alternating down and up sweeps; the order with
   the fewest crossings wins. Ties keep the previous order, so the result is deterministic.
4. x: every node wants to sit under (the mean of) its parents; a weighted isotonic regression
   keeps the order and the 220 px spacing at the least squared displacement. Nodes that feed
   much of the network weigh more, so a side head moves aside rather than the main chain.
   Side heads (blocks that do not lead to the main Output, such as auxiliary classifiers)
   weigh almost nothing. x is finally rounded to half a column (110 px), which keeps the
   spacing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnstudio.core.graph import Graph
from cnnstudio.core.grid import STEP_X, STEP_Y  # the canvas grid, also importable from here

SWEEPS = 4
SIDE_WEIGHT = 0.01
DOWN, RIGHT = "down", "right"  # the directions layered_layout knows
RIGHT_STEP_X = 300.0  # a block (190 px) and a 110 px gap between columns
RIGHT_STEP_Y = 120.0  # a block (62 px) and the gap where a wire leaving its bottom turns


@dataclass
class _Node:
    key: str
    row: int
    weight: float = 1.0
    up: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)


def layered_layout(
    graph: Graph, step_x: float | None = None, step_y: float | None = None,
    direction: str = DOWN,
) -> dict[str, tuple[float, float]]:
    """Block id -> (x centre, y top) for every block of the graph, its layers running
    `direction` (DOWN or RIGHT); the steps default to that direction's grid."""
    if direction not in (DOWN, RIGHT):
        raise ValueError(f"unknown layout direction {direction!r}: use {DOWN!r} or {RIGHT!r}")
    down = direction == DOWN
    step_x = step_x if step_x is not None else STEP_X if down else RIGHT_STEP_X
    step_y = step_y if step_y is not None else STEP_Y if down else RIGHT_STEP_Y
    if len(graph) == 0:
        return {}
    rows_of = assign_layers(graph)
    nodes = _layered_nodes(graph, rows_of)
    rows = _initial_rows(graph, nodes)
    rows = _reduce_crossings(rows, nodes)
    across = step_x if down else step_y  # the step between branches of one layer
    xs = _coordinates(rows, nodes, across)
    sources = [key for key in rows[0] if key in rows_of]
    shift = xs[sources[0]] if len(sources) == 1 else sum(xs[k] for k in rows[0]) / len(rows[0])
    half = across / 2
    placed = {block.id: (round((xs[block.id] - shift) / half) * half,
                         rows_of[block.id] * (step_y if down else step_x))
              for block in graph.blocks}
    if down:
        return placed
    return {block_id: (layer, branch) for block_id, (branch, layer) in placed.items()}


def assign_layers(graph: Graph) -> dict[str, int]:
    """Layer of every block: the longest path from a block without inputs. Blocks on a cycle
    go one layer below the deepest of their inputs that has a layer."""
    order, cyclic = graph.topological_order()
    layer: dict[str, int] = {}
    for block_id in order + cyclic:
        above = [layer[src] for src in graph.inputs_of(block_id) if src in layer]
        layer[block_id] = max(above, default=-1) + 1
    return layer


def _layered_nodes(graph: Graph, rows_of: dict[str, int]) -> dict[str, _Node]:
    nodes = {block.id: _Node(block.id, rows_of[block.id]) for block in graph.blocks}
    for index, edge in enumerate(graph.edges):
        top, bottom = rows_of[edge.src], rows_of[edge.dst]
        if bottom <= top:
            continue  # a wire of a cycle: drawn, but it does not shape the layout
        previous = edge.src
        for row in range(top + 1, bottom):
            key = f"\0{index}:{row}"
            nodes[key] = _Node(key, row)
            _link(nodes, previous, key)
            previous = key
        _link(nodes, previous, edge.dst)
    _weigh(nodes, _main_sinks(graph))
    return nodes


def _main_sinks(graph: Graph) -> set[str]:
    """The main Output blocks; without one, the deepest blocks without outgoing wires."""
    main = {b.id for b in graph.main_outputs()}
    if main:
        return main
    return {b.id for b in graph.blocks if not graph.output_edges(b.id)}


def _link(nodes: dict[str, _Node], upper: str, lower: str) -> None:
    nodes[upper].down.append(lower)
    nodes[lower].up.append(upper)


def _weigh(nodes: dict[str, _Node], main: set[str]) -> None:
    """Weight = 1 + the number of real blocks below a node (bit sets, bottom-up); a node that
    does not lead to a main sink weighs almost nothing."""
    real = [key for key in nodes if not key.startswith("\0")]
    bit = {key: 1 << i for i, key in enumerate(real)}
    main_bits = 0
    for key in main:
        main_bits |= bit[key]
    below: dict[str, int] = {}
    for key in sorted(nodes, key=lambda k: -nodes[k].row):
        reach = 0
        for child in nodes[key].down:
            reach |= below[child] | bit.get(child, 0)
        below[key] = reach
        leads = key in main or reach & main_bits
        nodes[key].weight = 1.0 + bin(reach).count("1") if leads else SIDE_WEIGHT


def _initial_rows(graph: Graph, nodes: dict[str, _Node]) -> list[list[str]]:
    rank = {block.id: i for i, block in enumerate(graph.blocks)}
    depth = max(node.row for node in nodes.values()) + 1
    rows: list[list[str]] = [[] for _ in range(depth)]
    for key in nodes:
        rows[nodes[key].row].append(key)
    rows[0].sort(key=lambda k: rank.get(k, 0))
    for row in range(1, depth):
        position = {key: i for i, key in enumerate(rows[row - 1])}
        rows[row].sort(key=lambda k: (_mean(position[u] for u in nodes[k].up), rank.get(k, 0)))
    return rows


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("inf")


def _reduce_crossings(rows: list[list[str]], nodes: dict[str, _Node]) -> list[list[str]]:
    best, best_crossings = [list(r) for r in rows], _crossings(rows, nodes)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 1
        indices = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        for row in indices:
            fixed = rows[row - 1] if downward else rows[row + 1]
            position = {key: i for i, key in enumerate(fixed)}
            current = {key: i for i, key in enumerate(rows[row])}

            def barycentre(key: str) -> tuple[float, int]:
                links = nodes[key].up if downward else nodes[key].down
                centre = _mean(position[k] for k in links)
                return (centre if links else current[key], current[key])

            rows[row].sort(key=barycentre)
        crossings = _crossings(rows, nodes)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in rows], crossings
    return best


def _crossings(rows: list[list[str]], nodes: dict[str, _Node]) -> int:
    total = 0
    for upper, lower in zip(rows, rows[1:]):
        position = {key: i for i, key in enumerate(lower)}
        ends = [
            (i, position[child]) for i, key in enumerate(upper) for child in nodes[key].down
        ]
        ends.sort()
        for a in range(len(ends)):
            for b in range(a + 1, len(ends)):
                if ends[a][0] < ends[b][0] and ends[a][1] > ends[b][1]:
                    total += 1
    return total


def _coordinates(
    rows: list[list[str]], nodes: dict[str, _Node], step_x: float
) -> dict[str, float]:
    xs: dict[str, float] = {}
    for row in rows:
        for i, key in enumerate(row):
            xs[key] = (i - (len(row) - 1) / 2) * step_x
    for row in rows:
        wanted = [_mean(xs[u] for u in nodes[key].up) if nodes[key].up else xs[key]
                  for key in row]
        weights = [nodes[key].weight for key in row]
        for key, x in zip(row, spaced(wanted, weights, step_x)):
            xs[key] = x
    return xs


def spaced(wanted: list[float], weights: list[float], gap: float) -> list[float]:
    """Positions in the given order, at least `gap` apart, nearest to `wanted` in the weighted
    least-squares sense (pool-adjacent-violators on x_i − i·gap)."""
    blocks: list[list[float]] = []  # [weighted sum, total weight, count]
    for i, (x, w) in enumerate(zip(wanted, weights)):
        blocks.append([(x - i * gap) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight
            blocks[-1][2] += count
    result: list[float] = []
    for total, weight, count in blocks:
        level = total / weight
        for _ in range(int(count)):
            result.append(level + len(result) * gap)
    return result
