"""Graph editing: ids, names, wiring rules with reasons, events and copies."""

from __future__ import annotations

import pytest

from cnnstudio.core import registry
from cnnstudio.core.graph import Edge, Graph, GraphError


def test_ids_are_stable_strings_and_names_course_like():
    g = Graph()
    a = g.add_block("Input")
    b = g.add_block("Conv2D")
    c = g.add_block("Conv2D")
    assert (a.id, b.id, c.id) == ("input_1", "conv2d_1", "conv2d_2")
    assert (a.name, b.name, c.name) == ("input", "conv1", "conv2")
    g.remove_block(b.id)
    assert g.add_block("Conv2D").id == "conv2d_1"


def test_defaults_are_filled_and_bad_params_refused():
    g = Graph()
    conv = g.add_block("Conv2D", {"filters": 8})
    assert conv.params == {**registry.get("Conv2D").defaults(), "filters": 8}
    with pytest.raises(GraphError, match="kernel: expected two positive integers"):
        g.add_block("Conv2D", {"kernel": [0, 3]})
    with pytest.raises(KeyError, match="unknown block type 'Conv3D'"):
        g.add_block("Conv3D")


def test_connection_rules_give_reasons():
    g = Graph()
    inp, conv, dense, out = g.chain([("Input", {}), ("Conv2D", {}), ("Dense", {}), ("Output", {})])
    other = g.add_block("Conv2D")
    assert "already has its input" in g.connection_problem(other.id, dense.id)
    assert "nothing can follow it" in g.connection_problem(out.id, other.id)
    assert "takes no input" in g.connection_problem(conv.id, inp.id)
    assert "cannot feed itself" in g.connection_problem(other.id, other.id)
    assert "already feeds" in g.connection_problem(inp.id, conv.id)
    with pytest.raises(GraphError):
        g.connect(out.id, other.id)


def test_merge_ports_keep_order_and_restore_exactly():
    g = Graph()
    inp = g.add_block("Input")
    branches = [g.add_block("Conv2D", {"padding": "same"}) for _ in range(3)]
    cat = g.add_block("Concatenate")
    for b in branches:
        g.connect(inp.id, b.id)
        g.connect(b.id, cat.id)
    assert g.inputs_of(cat.id) == [b.id for b in branches]
    middle = g.input_edges(cat.id)[1]
    g.disconnect(middle)
    g.connect(branches[1].id, cat.id)  # a new wire goes to the end
    assert g.inputs_of(cat.id) == [branches[0].id, branches[2].id, branches[1].id]
    g.disconnect(g.input_edges(cat.id)[2])
    g.restore_edge(middle)  # undo puts it back in its slot
    assert g.inputs_of(cat.id) == [b.id for b in branches]


def test_remove_returns_block_and_edges_for_undo():
    g = Graph()
    inp, conv, act = g.chain([("Input", {}), ("Conv2D", {}), ("Activation", {})])
    block, edges = g.remove_block(conv.id)
    assert block is conv and set(edges) == {Edge(inp.id, conv.id, 0), Edge(conv.id, act.id, 0)}
    g.insert(block)
    for e in edges:
        g.restore_edge(e)
    assert g.inputs_of(act.id) == [conv.id] and g.inputs_of(conv.id) == [inp.id]


def test_events_and_revision():
    g = Graph()
    seen = []
    unsubscribe = g.subscribe(lambda e: seen.append((e.kind, e.block_id)))
    conv = g.add_block("Conv2D")
    g.set_params(conv.id, {"filters": 3})
    g.rename(conv.id, "edge detector")
    g.move(conv.id, 10, 20)
    g.remove_block(conv.id)
    unsubscribe()
    g.add_block("Dense")
    assert [k for k, _ in seen] == ["block_added", "params_changed", "block_renamed",
                                    "block_moved", "block_removed"]
    assert g.revision == 6


def test_set_params_is_all_or_nothing():
    g = Graph()
    conv = g.add_block("Conv2D")
    with pytest.raises(GraphError, match="stride"):
        g.set_params(conv.id, {"filters": 5, "stride": 0})
    assert conv.params["filters"] == 32


def test_copy_is_deep_and_quiet():
    g = Graph()
    g.chain([("Input", {}), ("Conv2D", {"kernel": [3, 1]})])
    g.subscribe(lambda e: pytest.fail("copy must not notify the original's listeners"))
    other = g.copy()
    other.blocks[1].params["kernel"][0] = 9
    assert g.blocks[1].params["kernel"] == [3, 1]
    assert other.edges == g.edges


def test_topological_order_is_stable():
    g = Graph()
    inp = g.add_block("Input")
    a = g.add_block("Conv2D", {"padding": "same"})
    b = g.add_block("Conv2D", {"padding": "same"})
    add = g.add_block("Add")
    g.connect(inp.id, b.id)
    g.connect(inp.id, a.id)
    g.connect(b.id, add.id)
    g.connect(a.id, add.id)
    order, cyclic = g.topological_order()
    assert order == [inp.id, a.id, b.id, add.id] and cyclic == []
