"""One-click repairs in words, and Fix all (core/repairs.py), without Qt."""

from __future__ import annotations

import pytest

from cnnstudio.core import edits, repairs
from cnnstudio.core.analysis import Diagnostic, analyze, training_diagnostics
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.history import record
from cnnstudio.core.project import Project, project_to_dict
from cnnstudio.core.templates import new_project


@pytest.fixture
def course() -> Graph:
    return new_project("course-example").graph


def only_problem(graph: Graph) -> Diagnostic:
    (diagnostic,) = analyze(graph).diagnostics
    return diagnostic


def test_describe_names_the_block_and_the_value_it_sets(course):
    course.set_params("conv2", {"kernel": [20, 20], "padding": "valid"})
    text = repairs.describe(course, only_problem(course))
    assert text == repairs.RepairText("Set padding of 'CONV2' to same",
                                      "Set padding of 'CONV2' to same")


def test_describe_names_the_inserted_block_and_the_input_of_a_merge(course):
    edits.delete(course, ["flatten"])
    assert repairs.describe(course, only_problem(course)) == repairs.RepairText(
        "Insert Flatten before 'FC3'", "Inserted Flatten before 'FC3'")
    graph = new_project("course-example").graph
    add = graph.add_block("Add", name="add")
    graph.disconnect(graph.input_edges("pool2")[0])
    graph.connect("conv2", add.id)
    graph.connect("pool1", add.id)
    graph.connect(add.id, "pool2")
    diagnostic = only_problem(graph)
    text = repairs.describe(graph, diagnostic)
    assert text.done == "Inserted Conv2D before input 2 of 'add'"
    record(graph, lambda g: edits.repair(g, diagnostic))
    assert analyze(graph).diagnostics == []


def test_only_graph_repairs_are_offered(course):
    course.set_params("conv2", {"kernel": [20, 20], "padding": "valid"})
    assert repairs.can_repair(only_problem(course))
    course.add_block("BatchNorm", name="bn")
    (setting,) = training_diagnostics(course, batch_size=1)
    assert setting.repair and not repairs.can_repair(setting)  # the Training page's
    assert not repairs.can_repair(Diagnostic("conv2", "error", "x", "message", "fix", None))
    assert not repairs.can_repair(Diagnostic(None, "error", "x", "message", "fix",
                                             {"action": "set_param", "param": "p", "value": 1}))


def test_repair_all_analyses_again_after_each_repair(course):
    """CONV2's error hides FC3's (it has no input shape yet): both get fixed, in order."""
    edits.delete(course, ["flatten"])
    course.set_params("conv2", {"kernel": [20, 20], "padding": "valid"})
    assert [d.block_id for d in analyze(course).diagnostics] == ["conv2"]
    edit, done = record(course, repairs.repair_all)
    assert [t.done for t in done] == ["Set padding of 'CONV2' to same",
                                      "Inserted Flatten before 'FC3'"]
    assert analyze(course).diagnostics == []
    assert repairs.summary(done) == (
        "Fixed 2 problems: Set padding of 'CONV2' to same; Inserted Flatten before 'FC3'")
    edit.undo(course)
    assert [d.block_id for d in analyze(course).diagnostics] == ["conv2"]


def test_a_failing_repair_leaves_nothing_behind_and_is_tried_once(course, monkeypatch):
    edits.delete(course, ["flatten"])
    before = project_to_dict(Project.new(course))
    calls = []

    def half_done_then_refused(graph: Graph, diagnostic: Diagnostic) -> None:
        calls.append(diagnostic)
        graph.rename("fc3", "renamed")
        raise GraphError("refused")

    monkeypatch.setattr(edits, "repair", half_done_then_refused)
    assert repairs.repair_all(course) == []
    assert len(calls) == 1 and project_to_dict(Project.new(course)) == before


def test_the_summary_of_fix_all():
    texts = [repairs.RepairText(f"Do {i}", f"Did {i}") for i in range(5)]
    assert repairs.summary([]) == "No problem has a one-click fix"
    assert repairs.summary(texts[:1]) == "Did 0"
    assert repairs.summary(texts) == "Fixed 5 problems: Did 0; Did 1; Did 2; and 2 more"
