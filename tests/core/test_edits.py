"""The canvas's edits as functions of the graph, without Qt: placement, wiring, repairs, undo."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnstudio.core import edits
from cnnstudio.core.analysis import Diagnostic, analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.history import record
from cnnstudio.core.layout import STEP_Y
from cnnstudio.core.project import Project, project_to_dict


def snapshot(graph: Graph) -> dict:
    return project_to_dict(Project.new(graph))


def named(graph: Graph, name: str) -> str:
    block = graph.find(name)
    assert block is not None, name
    return block.id


def test_the_edits_the_canvas_and_the_lab_share_load_without_qt():
    code = ("import sys\n"
            "import cnnstudio.core.edits, cnnstudio.core.explain, cnnstudio.lab.network\n"
            "heavy = [m for m in ('PySide6', 'torch', 'pyqtgraph') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_snap_and_insertable_types():
    assert (edits.snap(14.9), edits.snap(15.1), edits.snap(-26.0)) == (10.0, 20.0, -30.0)
    assert edits.can_insert("Dropout") and edits.can_insert("Add")
    assert not edits.can_insert("Input")  # no input port
    assert not edits.can_insert("Output")  # no output port


def test_insert_on_a_wire_makes_room_below_and_undoes_exactly(course):
    conv1, pool1 = named(course, "CONV1"), named(course, "POOL1")
    (edge,) = [e for e in course.edges if (e.src, e.dst) == (conv1, pool1)]
    pool_y = course.block(pool1).y
    below = {b.id: b.y for b in course.blocks if b.y >= pool_y}
    before = snapshot(course)
    edit, block = record(course, lambda g: edits.insert_on_edge(g, edge, "Dropout", None))
    assert course.inputs_of(block.id) == [conv1] and course.inputs_of(pool1) == [block.id]
    assert course.block(block.id).y == pool_y
    assert all(course.block(b).y == y + STEP_Y for b, y in below.items())
    assert analyze(course).ok
    edit.undo(course)
    assert snapshot(course) == before


def test_insert_goes_to_the_preferred_spot_when_it_is_free(course):
    conv1, pool1 = named(course, "CONV1"), named(course, "POOL1")
    (edge,) = [e for e in course.edges if (e.src, e.dst) == (conv1, pool1)]
    moved = {b.id: (b.x, b.y) for b in course.blocks}
    block = edits.insert_on_edge(course, edge, "Dropout", None, preferred=(600.0, 0.0))
    assert (block.x, block.y) == (600.0, 0.0)
    assert all((b.x, b.y) == moved[b.id] for b in course.blocks if b.id in moved)


def test_deleting_a_block_of_a_chain_keeps_the_chain_connected(course):
    pool2, flatten, fc3 = (named(course, n) for n in ("POOL2", "FLATTEN", "FC3"))
    edits.delete(course, [flatten])
    assert flatten not in course and course.inputs_of(fc3) == [pool2]
    edits.delete(course, [flatten])  # already gone: nothing happens


def test_a_repair_inserts_the_missing_block_and_is_one_undo_step(course):
    flatten, fc3 = named(course, "FLATTEN"), named(course, "FC3")
    edits.delete(course, [flatten])
    (diagnostic,) = analyze(course).diagnostics_for(fc3)
    broken = snapshot(course)
    edit, block = record(course, lambda g: edits.repair(g, diagnostic))
    assert block is not None and block.type == "Flatten"
    assert analyze(course).ok
    edit.undo(course)
    assert snapshot(course) == broken


def test_a_set_param_repair_and_a_diagnostic_without_one(course):
    conv2 = named(course, "CONV2")
    course.set_params(conv2, {"kernel": [20, 20], "padding": "valid"})
    (diagnostic,) = analyze(course).diagnostics_for(conv2)
    assert edits.repair(course, diagnostic) is None
    assert course.block(conv2).params["padding"] == "same" and analyze(course).ok
    bare = Diagnostic(conv2, "error", "x", "a problem without a fix")
    with pytest.raises(GraphError, match="no automatic fix"):
        edits.repair(course, bare)


def test_add_block_stacks_under_a_block_with_an_output_port_only(course):
    output = course.block(named(course, "output"))
    after_output = edits.add_block(course, "Dropout", None, edits.place_below(output), output.id)
    assert course.inputs_of(after_output.id) == [] and course.output_edges(output.id) == []
    fc3 = course.block(named(course, "FC3"))
    stacked = edits.add_block(course, "Dropout", None, edits.place_below(fc3), fc3.id)
    assert course.inputs_of(stacked.id) == [fc3.id]
    assert (stacked.x, stacked.y) == (fc3.x, fc3.y + STEP_Y)
