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

`groups` lays blocks out as one node each (a collapsed module as its card, an expanded one as
its frame): a `Group` gives the box its blocks take and each block's offset from the box's top
centre, so the blocks keep their places relative to one another. Wires into or out of a group
become wires of the node; a box wider or taller than a block moves its neighbours, and the
layers after it, apart by whole steps, so the rest stays on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from cnnstudio.core.graph import Graph
from cnnstudio.core.grid import BLOCK_H, BLOCK_W, GRID, STEP_X, STEP_Y  # also importable here

SWEEPS = 4
SIDE_WEIGHT = 0.01
DOWN, RIGHT = "down", "right"  # the directions layered_layout knows
RIGHT_STEP_X = 300.0  # a block (190 px) and a 110 px gap between columns
RIGHT_STEP_Y = 120.0  # a block (62 px) and the gap where a wire leaving its bottom turns
GROUP = "\1"  # the first character of a group's node key (a wire's placeholder: "\0")
NO_EXTENT = (0.0, 0.0)


@dataclass(frozen=True)
class Group:
    """Blocks laid out as one node: the box they take, `size` (width, height), and each
    block's offset from the box's top centre (x to the block's centre, y to its top)."""

    members: Mapping[str, tuple[float, float]]
    size: tuple[float, float] = (BLOCK_W, BLOCK_H)


@dataclass
class _Node:
    key: str
    row: int
    weight: float = 1.0
    up: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)


@dataclass
class _Net:
    """The graph as the layout sees it: nodes (blocks, or groups of them) in block order and
    the wires among them, each once."""

    keys: list[str]
    links: list[tuple[str, str]]
    key_of: dict[str, str]
    sinks: set[str]
    extents: dict[str, tuple[float, float]]  # a group's (across, along) beyond a block's


def layered_layout(
    graph: Graph, step_x: float | None = None, step_y: float | None = None,
    direction: str = DOWN, groups: Sequence[Group] = (),
) -> dict[str, tuple[float, float]]:
    """Block id -> (x centre, y top) for every block of the graph, its layers running
    `direction` (DOWN or RIGHT); the steps default to that direction's grid. The blocks of
    each of `groups` move as one node (see the module docstring)."""
    if direction not in (DOWN, RIGHT):
        raise ValueError(f"unknown layout direction {direction!r}: use {DOWN!r} or {RIGHT!r}")
    down = direction == DOWN
    step_x = step_x if step_x is not None else STEP_X if down else RIGHT_STEP_X
    step_y = step_y if step_y is not None else STEP_Y if down else RIGHT_STEP_Y
    if len(graph) == 0:
        return {}
    across, along = (step_x, step_y) if down else (step_y, step_x)
    net = _net(graph, groups, down, across)
    rows_of = _layers(net.keys, net.links)
    nodes = _layered_nodes(net, rows_of)
    rows = _initial_rows(net, nodes)
    rows = _reduce_crossings(rows, nodes)
    extra = {key: net.extents.get(key, NO_EXTENT)[0] for key in nodes}
    # across, x (DOWN) is a box's centre and y (RIGHT) its top: a box pushes its neighbours
    # by half its extra width on either side, or by all its extra height below it
    xs = _coordinates(rows, nodes, across, extra, centred=down)
    sources = [key for key in rows[0] if key in rows_of]
    shift = xs[sources[0]] if len(sources) == 1 else sum(xs[k] for k in rows[0]) / len(rows[0])
    half = across / 2
    layers = _layer_offsets(rows, net.extents, along, centred=not down)
    placed: dict[str, tuple[float, float]] = {}
    for block in graph.blocks:
        key = net.key_of[block.id]
        branch, layer = round((xs[key] - shift) / half) * half, layers[rows_of[key]]
        placed[block.id] = (branch, layer) if down else (layer, branch)
    for group in groups:
        for block_id, (dx, dy) in group.members.items():
            if block_id in placed:
                x, y = placed[block_id]
                placed[block_id] = (x + dx, y + dy)
    return placed


def assign_layers(graph: Graph) -> dict[str, int]:
    """Layer of every block: the longest path from a block without inputs. Blocks on a cycle
    go one layer below the deepest of their inputs that has a layer."""
    return _layers([b.id for b in graph.blocks], [(e.src, e.dst) for e in graph.edges])


def _layers(keys: Sequence[str], links: Sequence[tuple[str, str]]) -> dict[str, int]:
    """`assign_layers` for any nodes and wires, visiting them in Graph.topological_order's
    order (stable: the nodes' order)."""
    position = {key: i for i, key in enumerate(keys)}
    ups: dict[str, list[str]] = {key: [] for key in keys}
    downs: dict[str, list[str]] = {key: [] for key in keys}
    for src, dst in links:
        ups[dst].append(src)
        downs[src].append(dst)
    indegree = {key: len(ups[key]) for key in keys}
    ready = [key for key in keys if indegree[key] == 0]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__, reverse=True)
        current = ready.pop()
        order.append(current)
        for child in downs[current]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    placed = set(order)
    layer: dict[str, int] = {}
    for key in order + [k for k in keys if k not in placed]:
        above = [layer[src] for src in ups[key] if src in layer]
        layer[key] = max(above, default=-1) + 1
    return layer


def _net(graph: Graph, groups: Sequence[Group], down: bool, across: float) -> _Net:
    key_of = {block.id: block.id for block in graph.blocks}
    extents: dict[str, tuple[float, float]] = {}
    for index, group in enumerate(groups):
        key = f"{GROUP}{index}"
        inside = [block_id for block_id in group.members if block_id in key_of]
        for block_id in inside:
            key_of[block_id] = key
        if inside:
            width, height = group.size
            wide, tall = max(0.0, width - BLOCK_W), max(0.0, height - BLOCK_H)
            # whole pairs of steps across keep the rounding to half a step exact
            extents[key] = (_whole(wide if down else tall, 2 * across),
                            _whole(tall if down else wide, 2 * GRID))
    keys = list(dict.fromkeys(key_of[block.id] for block in graph.blocks))
    links = list(dict.fromkeys((key_of[e.src], key_of[e.dst]) for e in graph.edges
                               if key_of[e.src] != key_of[e.dst]))
    sinks = {key_of[b.id] for b in graph.main_outputs()}
    if not sinks:  # without a main Output: the blocks feeding nothing
        feeding = {src for src, _ in links}
        sinks = {key for key in keys if key not in feeding}
    return _Net(keys, links, key_of, sinks, extents)


def _whole(value: float, unit: float) -> float:
    """`value` rounded up to whole `unit`s."""
    return -(-value // unit) * unit


def _layered_nodes(net: _Net, rows_of: dict[str, int]) -> dict[str, _Node]:
    nodes = {key: _Node(key, rows_of[key]) for key in net.keys}
    for index, (src, dst) in enumerate(net.links):
        top, bottom = rows_of[src], rows_of[dst]
        if bottom <= top:
            continue  # a wire of a cycle: drawn, but it does not shape the layout
        previous = src
        for row in range(top + 1, bottom):
            key = f"\0{index}:{row}"
            nodes[key] = _Node(key, row)
            _link(nodes, previous, key)
            previous = key
        _link(nodes, previous, dst)
    _weigh(nodes, net.sinks)
    return nodes


def _layer_offsets(rows: list[list[str]], extents: Mapping[str, tuple[float, float]],
                   step: float, centred: bool) -> list[float]:
    """Where each layer stands along the layout: `step` apart, plus the extra length of the
    longest box of a layer (all of it below a layer of tops; half each side of centres)."""
    longest = [max((extents.get(key, NO_EXTENT)[1] for key in row), default=0.0)
               for row in rows]
    offsets = [0.0]
    for row in range(1, len(rows)):
        extra = (longest[row - 1] + longest[row]) / 2 if centred else longest[row - 1]
        offsets.append(offsets[-1] + step + extra)
    return offsets


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


def _initial_rows(net: _Net, nodes: dict[str, _Node]) -> list[list[str]]:
    rank = {key: i for i, key in enumerate(net.keys)}
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
    rows: list[list[str]], nodes: dict[str, _Node], step: float,
    extra: Mapping[str, float], centred: bool,
) -> dict[str, float]:
    xs: dict[str, float] = {}
    for row in rows:
        for i, key in enumerate(row):
            xs[key] = (i - (len(row) - 1) / 2) * step
    for row in rows:
        wanted = [_mean(xs[u] for u in nodes[key].up) if nodes[key].up else xs[key]
                  for key in row]
        weights = [nodes[key].weight for key in row]
        gaps = [step + ((extra[a] + extra[b]) / 2 if centred else extra[a])
                for a, b in zip(row, row[1:])]
        for key, x in zip(row, spaced(wanted, weights, gaps)):
            xs[key] = x
    return xs


def spaced(wanted: list[float], weights: list[float],
           gap: float | Iterable[float]) -> list[float]:
    """Positions in the given order, at least `gap` apart (one gap, or one per neighbouring
    pair), nearest to `wanted` in the weighted least-squares sense (pool-adjacent-violators on
    x_i − c_i, c_i the sum of the gaps before i)."""
    gaps = [float(gap)] * max(len(wanted) - 1, 0) if isinstance(gap, (int, float)) \
        else list(gap)
    before = [0.0]
    for width in gaps:
        before.append(before[-1] + width)
    blocks: list[list[float]] = []  # [weighted sum, total weight, count]
    for i, (x, w) in enumerate(zip(wanted, weights)):
        blocks.append([(x - before[i]) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight
            blocks[-1][2] += count
    result: list[float] = []
    for total, weight, count in blocks:
        level = total / weight
        for _ in range(int(count)):
            result.append(level + before[len(result)])
    return result
