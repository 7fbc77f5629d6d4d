"""core.outputs: what an Output block gives (class scores or probabilities), the one rule that the
loss, the inspection views and every export follow so that softmax is applied exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from cnnstudio.core import registry
from cnnstudio.core.graph import Graph
from cnnstudio.core.outputs import BINARY, LOGITS, PROBABILITIES, output_kind, output_kinds
from cnnstudio.core.templates import build_template


def head(units: int = 10, activation: str = "none",
         after: list[tuple[str, dict[str, Any]]] | None = None) -> tuple[Graph, str]:
    """Input 1×8×8 → Flatten → Dense(units, activation) → blocks `after` → Output; (graph,
    output id)."""
    graph = Graph()
    blocks = graph.chain([
        ("Input", {"channels": 1, "height": 8, "width": 8}),
        ("Flatten", {}),
        ("Dense", {"units": units, "activation": activation}, "fc"),
        *[(type_id, params) for type_id, params in (after or [])],
        ("Output", {}),
    ])
    return graph, blocks[-1].id


def test_a_plain_dense_head_gives_class_scores():
    graph, output = head()
    kind = output_kind(graph, output)
    assert (kind.kind, kind.block_id, kind.problem) == (LOGITS, None, "")
    course = build_template("course-example")
    assert {k.kind for k in output_kinds(course).values()} == {LOGITS}


def test_a_softmax_activation_before_the_output_gives_probabilities():
    graph, output = head(after=[("Activation", {"function": "softmax"})])
    kind = output_kind(graph, output)
    assert kind.kind == PROBABILITIES and kind.problem == ""
    assert graph.block(kind.block_id).type == "Activation"


def test_a_flatten_after_the_softmax_is_looked_through():
    graph, output = head(after=[("Activation", {"function": "softmax"}), ("Flatten", {})])
    assert output_kind(graph, output).kind == PROBABILITIES


def test_a_softmax_over_the_channels_of_a_map_is_not_one_probability_per_class():
    graph = Graph()
    blocks = graph.chain([("Input", {"channels": 2, "height": 2, "width": 2}),
                          ("Activation", {"function": "softmax"}), ("Flatten", {}),
                          ("Output", {})])
    assert output_kind(graph, blocks[-1].id).kind == LOGITS  # 8 values summing to 4


def test_dropout_after_the_softmax_is_probabilities_at_prediction_but_refused_for_training():
    graph, output = head(after=[("Activation", {"function": "softmax"}),
                                ("Dropout", {"rate": 0.5})])
    kind = output_kind(graph, output)
    assert kind.kind == PROBABILITIES
    assert "comes after the softmax" in kind.problem
    assert "move the Dropout before the last Dense layer" in kind.problem


def test_one_sigmoid_unit_is_binary_classification():
    for graph, output in (head(1, "sigmoid"),
                          head(1, after=[("Activation", {"function": "sigmoid"})])):
        kind = output_kind(graph, output)
        assert kind.kind == BINARY and kind.problem == ""


@pytest.mark.parametrize("activation, after", [
    ("sigmoid", []),  # ten independent yes/no values: bounded scores, softmax still applies
    ("none", [("Activation", {"function": "tanh"})]),
    ("none", [("Activation", {"function": "softmax"}), ("BatchNorm", {})]),  # values changed
])
def test_other_endings_give_class_scores(activation, after):
    graph, output = head(10, activation, after)
    assert output_kind(graph, output).kind == LOGITS


def test_a_single_value_without_a_sigmoid_cannot_learn():
    for graph, output in (head(1), head(1, after=[("Activation", {"function": "softmax"})])):
        problem = output_kind(graph, output).problem
        assert "softmax over one value is always 1" in problem


def test_a_graph_with_errors_or_unknown_ids_never_raises():
    graph = Graph()
    output = graph.add_block("Output", {})
    assert output_kind(graph, output.id).kind == LOGITS  # not connected
    assert output_kind(graph, "nowhere").kind == LOGITS
    broken, out = head(after=[("Activation", {"function": "softmax"})])
    softmax = broken.inputs_of(out)[0]
    broken.remove_block(broken.inputs_of(softmax)[0])  # the Dense: the softmax gets no input
    assert output_kind(broken, out).kind == LOGITS


def test_every_output_is_described_auxiliary_heads_included():
    graph, output = head(after=[("Activation", {"function": "softmax"})])
    aux = graph.chain([("Dense", {"units": 10}), ("Output", {"auxiliary": True})],
                      after=graph.inputs_of(graph.inputs_of(output)[0])[0])
    kinds = output_kinds(graph)
    assert kinds[output].kind == PROBABILITIES and kinds[aux[-1].id].kind == LOGITS


@pytest.mark.parametrize("units, activation, after, kind, sentence", [
    (10, "none", [("Activation", {"function": "softmax"})], PROBABILITIES,
     "after an Activation softmax (Dense → Activation softmax → Output, as Keras writes it) they "
     "are probabilities already, and no second softmax is applied"),
    (1, "sigmoid", [], BINARY, "a single sigmoid unit (Dense with 1 unit and sigmoid activation) "
     "is a two-class (binary) classifier"),
    (10, "relu", [], LOGITS, "otherwise they are class scores (logits), and softmax turns them "
     "into probabilities in the loss and at prediction"),
])
def test_the_output_help_says_what_each_ending_gives(units, activation, after, kind, sentence):
    """The Output block's help (inspector, palette tooltip) follows core.outputs: it no longer
    claims that softmax is always applied."""
    graph, output = head(units, activation, after)
    assert output_kind(graph, output).kind == kind
    help_text = " ".join(registry.get("Output").help.split())
    assert sentence in help_text
    assert "Softmax is applied by the loss in training and at prediction" not in help_text
