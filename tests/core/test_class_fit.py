"""The number of classes of a network whose classifier is a convolution pooled to one value a
channel (SqueezeNet) is found, checked and set like a Dense layer's."""

from __future__ import annotations

import pytest

from cnnstudio.core.adapt import adapt, class_mismatches, classifier_block_ids
from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.templates import build_template


def test_squeezenet_classifier_is_its_last_convolution_and_can_be_refitted():
    graph = build_template("squeezenet1.1", (3, 64, 64))
    (classifier,) = classifier_block_ids(graph)
    assert graph.block(classifier).name == "classifier.1"
    (mismatch,) = class_mismatches(graph, 3, "folder:digits")
    assert mismatch.block_id == classifier and mismatch.repair == {"filters": 3}
    assert "set its filters to 3" in mismatch.message and "1000 class scores" in mismatch.message
    adapt(graph, classes=3)
    assert analyze(graph).blocks[graph.main_output().id].output_shape == (3,)
    assert class_mismatches(graph, 3) == []


def _conv_head(pool: dict) -> Graph:
    graph = Graph()
    graph.chain([("Input", {"channels": 3, "height": 8, "width": 8}),
                 ("Conv2D", {"filters": 5, "kernel": [1, 1]}, "head"),
                 ("Pooling", pool), *([("Flatten", {})] if pool["mode"] != "global_average"
                                      else []),
                 ("Output", {})])
    return graph


@pytest.mark.parametrize("pool", [{"mode": "global_average"},
                                  {"mode": "adaptive_average", "output_size": [1, 1]}])
def test_a_convolution_pooled_to_one_value_a_channel_sets_the_classes(pool):
    graph = _conv_head(pool)
    adapt(graph, classes=7)
    assert graph.find("head").params["filters"] == 7


def test_a_convolution_flattened_without_pooling_is_not_a_classifier():
    graph = _conv_head({"mode": "max", "pool_size": [2, 2]})
    with pytest.raises(GraphError, match="not fed by a Dense layer"):
        classifier_block_ids(graph)
    (mismatch,) = class_mismatches(graph, 7)
    assert mismatch.repair is None
