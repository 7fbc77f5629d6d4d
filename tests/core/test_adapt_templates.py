"""A network made from a template, fitted to a new input size, is refitted the way File → New
builds the template (issue 14: "Set Input to 1×28×28" broke LeNet-5's C5)."""

from __future__ import annotations

from cnnstudio.core.adapt import adapt, template_changes
from cnnstudio.core.analysis import analyze
from cnnstudio.core.templates import build_template, new_project


def test_lenet5_made_at_32_and_set_to_28_pads_c1_as_file_new_does():
    graph = new_project("lenet5").graph  # the paper's 1×32×32
    assert template_changes(graph, "lenet5", (1, 28, 28)) == {"c1": {"padding": "same"}}
    adapt(graph, (1, 28, 28), None, "lenet5")
    analysis = analyze(graph)
    fresh = analyze(build_template("lenet5", (1, 28, 28)))
    assert analysis.errors == [] and analysis.total_params == fresh.total_params == 61_706
    assert graph.block("c1").params == build_template("lenet5", (1, 28, 28)).block("c1").params
    adapt(graph, (1, 32, 32), None, "lenet5")  # and back
    assert graph.block("c1").params["padding"] == "valid" and analyze(graph).errors == []


def test_without_the_template_only_the_input_changes():
    graph = new_project("lenet5").graph
    adapt(graph, (1, 28, 28))
    assert graph.block("c1").params["padding"] == "valid"
    assert "does not fit the 4×4 input" in analyze(graph).errors[0].message


def test_a_block_the_user_edited_keeps_the_users_values():
    graph = new_project("lenet5").graph
    graph.set_params("c1", {"padding": [1, 1]})
    assert template_changes(graph, "lenet5", (1, 28, 28)) == {}
    adapt(graph, (1, 28, 28), None, "lenet5")
    assert graph.block("c1").params["padding"] == [1, 1]


def test_no_template_or_an_unknown_one_changes_nothing_more_and_classes_still_fit():
    graph = new_project("lenet5").graph
    assert template_changes(graph, None, (1, 28, 28)) == {}
    assert template_changes(graph, "no-such-template", (1, 28, 28)) == {}
    adapt(graph, (1, 28, 28), 5, "lenet5")
    assert graph.block("f7").params["units"] == 5 and analyze(graph).errors == []
