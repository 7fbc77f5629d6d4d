"""From the lab to the network without Qt: the lab's kernel becomes a Conv2D after the Input."""

from __future__ import annotations

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.history import record
from cnnstudio.core.layout import STEP_Y
from cnnstudio.core.project import Project, project_to_dict
from cnnstudio.core.templates import new_project
from cnnstudio.lab.network import add_first_layer, first_layer_params

SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def snapshot(graph: Graph) -> dict:
    return project_to_dict(Project.new(graph))


def test_the_kernel_is_the_fixed_start_of_one_filter():
    params = first_layer_params([[1, 2, 3]], trainable=False)
    assert params == {"filters": 1, "kernel": [1, 3], "padding": "same",
                      "initial_kernel": [[1.0, 2.0, 3.0]], "trainable": False}


def test_the_new_block_sits_between_the_input_and_what_it_fed_in_one_undo_step():
    graph = new_project("course-example").graph
    source = graph.input_block()
    assert source is not None
    fed = graph.outputs_of(source.id)
    before = snapshot(graph)
    edit, block = record(graph, lambda g: add_first_layer(g, SOBEL_X, False, "Sobel x"))
    assert block.name == "lab_sobel_x" and block.params["initial_kernel"] == SOBEL_X
    assert graph.outputs_of(source.id) == [block.id] and graph.outputs_of(block.id) == fed
    assert analyze(graph).ok  # one 'same' filter keeps every shape after it valid
    edit.undo(graph)
    assert snapshot(graph) == before


def test_every_block_the_input_fed_is_fed_by_the_new_block_at_the_same_port():
    graph = Graph()
    image = graph.add_block("Input", {"height": 8, "width": 8, "channels": 1})
    left = graph.add_block("Conv2D", {"filters": 2})
    right = graph.add_block("Pooling", {})
    merge = graph.add_block("Concatenate")
    graph.connect(image.id, left.id)
    graph.connect(image.id, right.id)
    graph.connect(image.id, merge.id, 0)
    graph.connect(left.id, merge.id, 1)
    block = add_first_layer(graph, SOBEL_X, True)
    assert graph.outputs_of(image.id) == [block.id]
    assert sorted(graph.outputs_of(block.id)) == sorted([left.id, right.id, merge.id])
    ports = {(e.src, e.port) for e in graph.input_edges(merge.id)}
    assert ports == {(block.id, 0), (left.id, 1)}


def test_without_an_input_it_goes_below_the_lowest_block_and_names_stay_unique():
    graph = Graph()
    assert add_first_layer(graph, SOBEL_X, True).y == 0.0
    dense = graph.add_block("Dense", position=(0.0, 500.0))
    second = add_first_layer(graph, SOBEL_X, True)
    assert second.y == dense.y + STEP_Y
    assert [b.name for b in graph.blocks if b.type == "Conv2D"] == ["lab_kernel", "lab_kernel_2"]
    assert add_first_layer(graph, SOBEL_X, True, "!!!").name == "lab_kernel_3"


def test_an_input_that_feeds_nothing_gets_the_block_stacked_under_it():
    graph = Graph()
    image = graph.add_block("Input", {"height": 8, "width": 8, "channels": 1}, position=(40, 0))
    block = add_first_layer(graph, SOBEL_X, True)
    assert graph.inputs_of(block.id) == [image.id]
    assert (block.x, block.y) == (image.x, image.y + STEP_Y)
