"""Recorded edits undo and redo back to exactly the same model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstudio.core.graph import EventKind, Graph, GraphError, GraphEvent
from cnnstudio.core.history import REPLAY, Edit, record
from cnnstudio.core.project import project_to_dict, Project
from cnnstudio.core.templates import build_template


def snapshot(graph: Graph) -> dict:
    return project_to_dict(Project.new(graph))


def insert_on_wire(g: Graph) -> None:
    edge = g.input_edges("fc2")[0] if "fc2" in g else g.edges[3]
    g.disconnect(edge)
    block = g.add_block("Dropout", {"rate": 0.25})
    g.connect(edge.src, block.id)
    g.connect(block.id, edge.dst, edge.port)


ACTIONS = {
    "add": lambda g: g.add_block("Conv2D", {"filters": 3}, position=(5, 5)),
    "remove": lambda g: g.remove_block(g.blocks[2].id),
    "remove_many": lambda g: [g.remove_block(b.id) for b in g.blocks[1:4]],
    "params": lambda g: g.set_params(g.blocks[1].id, {"filters": 7, "kernel": [5, 1]}),
    "rename": lambda g: g.rename(g.blocks[1].id, "edges"),
    "move": lambda g: g.move(g.blocks[1].id, 300, 40),
    "collapse": lambda g: g.set_collapsed(g.blocks[1].id, True),
    "insert_on_wire": insert_on_wire,
    "disconnect": lambda g: g.disconnect(g.edges[0]),
}


@pytest.mark.parametrize("name", ACTIONS)
def test_undo_restores_and_redo_repeats_exactly(name):
    g = build_template("keras-mnist")
    before = snapshot(g)
    edit, _ = record(g, ACTIONS[name])
    after = snapshot(g)
    assert after != before and not edit.empty
    edit.undo(g)
    assert snapshot(g) == before
    edit.redo(g)
    assert snapshot(g) == after
    edit.undo(g)
    assert snapshot(g) == before


def test_failing_action_leaves_the_graph_untouched():
    g = build_template("keras-mnist")
    before = snapshot(g)

    def half_done(graph: Graph) -> None:
        graph.add_block("Conv2D")
        graph.set_params(graph.blocks[1].id, {"filters": 3})
        graph.connect(graph.blocks[-1].id, graph.blocks[0].id)  # Input takes no input

    with pytest.raises(GraphError):
        record(g, half_done)
    assert snapshot(g) == before


def test_merged_edits_undo_together():
    g = build_template("keras-mnist")
    before = snapshot(g)
    conv = g.blocks[1].id
    first, _ = record(g, lambda gr: gr.set_params(conv, {"filters": 8}))
    second, _ = record(g, lambda gr: gr.set_params(conv, {"filters": 9}))
    first.extend(second)
    first.undo(g)
    assert snapshot(g) == before


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(ACTIONS)), min_size=1, max_size=6))
def test_any_sequence_of_edits_unwinds(names):
    g = build_template("course-example")
    states, edits = [snapshot(g)], []
    for name in names:
        try:
            edit, _ = record(g, ACTIONS[name])
        except (GraphError, IndexError, KeyError):
            continue
        edits.append(edit)
        states.append(snapshot(g))
    for edit, state in zip(reversed(edits), reversed(states[:-1])):
        edit.undo(g)
        assert snapshot(g) == state
    for edit, state in zip(edits, states[1:]):
        edit.redo(g)
        assert snapshot(g) == state


def test_edit_block_ids():
    g = build_template("keras-mnist")
    edit, _ = record(g, ACTIONS["params"])
    assert edit.block_ids() == {g.blocks[1].id}
    assert Edit().empty


def test_every_event_kind_is_replayed_and_a_kind_that_is_not_one_is_refused():
    assert set(REPLAY) == set(EventKind) and all(REPLAY.values())
    g = build_template("keras-mnist")
    conv = g.blocks[1].id
    stray = Edit([GraphEvent("block_moved", conv,  # type: ignore[arg-type]
                             changes={"position": ((0.0, 0.0), (9.0, 9.0))})])
    with pytest.raises(ValueError, match="cannot replay graph event 'block_moved'"):
        stray.redo(g)
    assert (g.block(conv).x, g.block(conv).y) != (9.0, 9.0)


def test_each_kind_undoes_to_the_exact_value_before():
    g = build_template("keras-mnist")
    conv = g.blocks[1]
    x, y, name = conv.x, conv.y, conv.name
    edit, _ = record(g, lambda gr: (gr.move(conv.id, x + 40, y + 20), gr.rename(conv.id, "c"),
                                    gr.set_collapsed(conv.id, True)))
    assert [e.kind for e in edit.events] == [EventKind.BLOCK_MOVED, EventKind.BLOCK_RENAMED,
                                             EventKind.BLOCK_COLLAPSED]
    edit.undo(g)
    assert (conv.x, conv.y, conv.name, conv.collapsed) == (x, y, name, False)
    edit.redo(g)
    assert (conv.x, conv.y, conv.name, conv.collapsed) == (x + 40, y + 20, "c", True)
