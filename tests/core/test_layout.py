"""Automatic layered layout: layers, columns, crossings, determinism."""

from __future__ import annotations

import pytest

from cnnstudio.core.graph import Edge, Graph
from cnnstudio.core.layout import (
    RIGHT,
    RIGHT_STEP_X,
    RIGHT_STEP_Y,
    STEP_X,
    STEP_Y,
    Group,
    assign_layers,
    layered_layout,
    spaced,
)
from cnnstudio.core.templates import TEMPLATES, build_template

BLOCK_W, BLOCK_H = 190.0, 62.0  # the size the canvas draws a block


def overlapping(positions: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    items = sorted(positions.items(), key=lambda kv: (kv[1][1], kv[1][0]))
    found = []
    for i, (a, (ax, ay)) in enumerate(items):
        for b, (bx, by) in items[i + 1:]:
            if by >= ay + BLOCK_H:
                break
            if abs(ax - bx) < BLOCK_W:
                found.append((a, b))
    return found


def crossings(graph: Graph, pos: dict[str, tuple[float, float]]) -> int:
    """Crossings among wires between adjacent rows (the ones the heuristic orders)."""
    edges = [(pos[e.src], pos[e.dst]) for e in graph.edges
             if pos[e.dst][1] - pos[e.src][1] == STEP_Y]
    count = 0
    for i, (a0, a1) in enumerate(edges):
        for b0, b1 in edges[i + 1:]:
            if a0[1] == b0[1] and (a0[0] - b0[0]) * (a1[0] - b1[0]) < 0:
                count += 1
    return count


@pytest.mark.parametrize("template_id", list(TEMPLATES))
def test_templates_lay_out_without_overlaps_and_with_every_wire_going_down(template_id):
    graph = build_template(template_id)
    pos = layered_layout(graph)
    assert set(pos) == {b.id for b in graph.blocks}
    assert overlapping(pos) == []
    for edge in graph.edges:
        assert pos[edge.dst][1] > pos[edge.src][1]
    for x, y in pos.values():
        assert y % STEP_Y == 0 and x % (STEP_X / 2) == 0
    assert pos[graph.blocks[0].id] == (0.0, 0.0)  # the Input on top, centred
    assert crossings(graph, pos) == 0


def test_googlenet_inception_branches_sit_side_by_side_and_the_main_chain_is_straight():
    graph = build_template("googlenet")
    pos = layered_layout(graph)
    assert overlapping(pos) == []
    for module in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        tops = [f"inception_{module}_{b}" for b in ("1x1", "3x3_reduce", "5x5_reduce", "pool")]
        rows = {pos[t][1] for t in tops}
        xs = sorted(pos[t][0] for t in tops)
        assert len(rows) == 1, module
        assert all(b - a >= STEP_X for a, b in zip(xs, xs[1:])), module
        assert sum(xs) / 4 == pytest.approx(pos[f"inception_{module}_output"][0])
        assert pos[f"inception_{module}_output"][0] == 0.0
        # each branch stays in its column
        assert pos[f"inception_{module}_3x3"][0] == pos[f"inception_{module}_3x3_reduce"][0]
    for name in ("input", "pool3_3x3_s2", "pool4_3x3_s2", "output"):
        assert pos[name][0] == 0.0
    # the auxiliary heads run in their own column, beside the modules
    aux = {pos[b.id][0] for b in graph.blocks if b.id.startswith("loss1")}
    assert len(aux) == 1 and abs(aux.pop()) > 3 * STEP_X / 2


def test_layers_are_the_longest_path_and_the_layout_is_deterministic():
    g = Graph()
    a = g.add_block("Input").id
    b = g.add_block("Conv2D", {"padding": "same"}).id
    c = g.add_block("Conv2D", {"padding": "same"}).id
    add = g.add_block("Add").id
    g.connect(a, b)
    g.connect(b, c)
    g.connect(a, add)
    g.connect(c, add)
    assert assign_layers(g) == {a: 0, b: 1, c: 2, add: 3}
    first = layered_layout(g)
    assert first == layered_layout(g) == layered_layout(g.copy())
    assert first[add] == (0.0, 3 * STEP_Y)
    # the skip wire keeps a lane of its own beside the body
    assert first[b][0] == first[c][0] != 0.0


def test_disconnected_blocks_and_cycles_get_places_too():
    g = Graph()
    blocks = [g.add_block("Dense").id for _ in range(3)]
    g.connect(blocks[0], blocks[1])
    g.connect(blocks[1], blocks[2])
    g._add_edge(Edge(blocks[2], blocks[0]))  # a cycle, as only a damaged file could hold
    lone = g.add_block("Input").id
    pos = layered_layout(g)
    assert set(pos) == set(blocks) | {lone}
    assert overlapping(pos) == []
    assert layered_layout(Graph()) == {}


def test_spaced_keeps_order_and_gap_at_the_least_weighted_displacement():
    assert spaced([0, 0, 0], [1, 1, 1], 10) == [-10, 0, 10]
    assert spaced([0, 100], [1, 1], 10) == [0, 100]
    heavy_left = spaced([0, 0], [100, 1], 10)
    assert heavy_left[1] - heavy_left[0] == 10 and abs(heavy_left[0]) < 0.2


@pytest.mark.parametrize("template_id", ["googlenet", "resnet18", "inception-v3-module"])
def test_left_to_right_puts_layers_in_columns_without_overlaps(template_id):
    graph = build_template(template_id)
    down = layered_layout(graph)
    right = layered_layout(graph, direction=RIGHT)
    assert right == layered_layout(graph, direction=RIGHT)  # deterministic
    for block_id, (x, y) in right.items():  # the same layers, now columns
        assert x == down[block_id][1] / STEP_Y * RIGHT_STEP_X
    for edge in graph.edges:  # every wire goes right, into the next column or further
        assert right[edge.dst][0] - right[edge.src][0] >= RIGHT_STEP_X
    placed = sorted(right.values())
    for (ax, ay), (bx, by) in zip(placed, placed[1:]):
        if ax == bx:  # one column: stacked with a gap for the wires leaving the blocks
            assert by - ay >= RIGHT_STEP_Y / 2 and by - ay >= BLOCK_H + 40
    assert RIGHT_STEP_X - BLOCK_W >= 100  # room between columns for a curve and its label


def test_an_unknown_direction_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="'down' or 'right'"):
        layered_layout(build_template("lenet5"), direction="up")


# -- groups: several blocks laid out as one node ---------------------------------------------


def chain(count: int) -> tuple[Graph, list[str]]:
    g = Graph()
    ids = [g.add_block("Input").id] + [g.add_block("Dense").id for _ in range(count - 1)]
    for a, b in zip(ids, ids[1:]):
        g.connect(a, b)
    return g, ids


def test_a_group_is_one_node_and_its_blocks_keep_their_offsets():
    g, (a, b, c, d, e) = chain(5)
    offsets = {b: (-110.0, 0.0), c: (110.0, 0.0), d: (0.0, 110.0)}  # side by side, then under
    pos = layered_layout(g, groups=[Group(offsets)])  # a card's size: one row for three blocks
    assert pos[a] == (0.0, 0.0)
    assert pos[b] == (-110.0, STEP_Y) and pos[c] == (110.0, STEP_Y) and pos[d] == (0.0, 2 * STEP_Y)
    assert pos[e] == (0.0, 2 * STEP_Y)  # the row after the group's: it covers d, shown as one
    assert layered_layout(g) != pos
    right = layered_layout(g, direction=RIGHT, groups=[Group(offsets)])
    assert right[b] == (RIGHT_STEP_X - 110.0, 0.0) and right[e] == (2 * RIGHT_STEP_X, 0.0)


def test_a_large_group_pushes_the_next_layer_and_its_neighbours_by_whole_steps():
    g, (a, b, c) = chain(3)
    side, add = g.add_block("Dense").id, g.add_block("Add").id  # a branch beside the group
    for src, dst in ((a, side), (c, add), (side, add)):
        g.connect(src, dst)
    tall = Group({b: (0.0, 40.0), c: (0.0, 150.0)}, size=(BLOCK_W + 20, 300.0))
    pos = layered_layout(g, groups=[tall])
    assert pos[b][1] - 40.0 == STEP_Y == pos[side][1]  # the box's top, in its layer
    # the next layer: a step after the box's extra height (238, rounded up to 20s)
    assert pos[add][1] == 2 * STEP_Y + 240.0
    # beside it: a step plus half its extra width, rounded up to two steps (on the grid)
    assert abs(pos[b][0] - pos[side][0]) == STEP_X + STEP_X
    for x, y in pos.values():
        assert x % (STEP_X / 2) == 0 and y % 10 == 0


def test_groups_lay_out_googlenet_collapsed_as_compactly_as_a_chain():
    graph = build_template("googlenet")
    flat = layered_layout(graph)
    groups = [Group({b: (0.0, 0.0) for b in m.members.values()}) for m in graph.modules]
    grouped = layered_layout(graph, groups=groups)
    output = graph.find("output").id
    assert grouped[output][1] < flat[output][1] / 1.5
    for module in graph.modules:  # each module one node, one row under what feeds it
        inside = set(module.members.values())
        (source,) = {e.src for i in inside for e in graph.input_edges(i) if e.src not in inside}
        assert {grouped[b][1] - grouped[source][1] for b in inside} == {STEP_Y}


def test_spaced_takes_a_gap_for_each_pair():
    assert spaced([0, 0, 0], [1, 1, 1], [10, 30]) == pytest.approx([-50 / 3, -20 / 3, 70 / 3])
    assert spaced([0, 100, 200], [1, 1, 1], [10, 30]) == [0, 100, 200]
