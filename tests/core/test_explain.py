"""The texts a block shows and the course arithmetic behind its numbers, without Qt."""

from __future__ import annotations

import pytest

from cnnstudio.core import registry
from cnnstudio.core.analysis import analyze
from cnnstudio.core.explain import counts_text, explain, key_params_text
from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import TEMPLATES, build_template


def tip(graph: Graph, name: str) -> str:
    block = graph.find(name)
    assert block is not None, name
    return explain(block, analyze(graph).blocks.get(block.id))


def test_the_window_formula_and_parameter_counts_with_their_numbers(course):
    conv1 = tip(course, "CONV1")
    assert "⌊(28 + 4 − 4 − 1)/1⌋ + 1 = 28" in conv1
    assert "((kh·kw·C_in/groups) + 1)·filters = ((5·5·1) + 1)·16 = 416" in conv1
    assert "receptive field 5×5, stride 1×1 (jump)" in conv1
    assert "(inputs + 1)·units = (1568 + 1)·100 = 156,900" in tip(course, "FC3")
    conv2 = tip(course, "CONV2")
    assert "((5·5·16) + 1)·32 = 12,832" in conv2 and "receptive field 14×14" in conv2
    pool2 = tip(course, "POOL2")
    assert "⌊(14 + 0 − 1 − 1)/2⌋ + 1 = 7" in pool2 and "stride 4×4 (jump)" in pool2
    assert "H·W·C = 7·7·32 = 1,568 values" in tip(course, "FLATTEN")


def test_a_block_without_a_shape_says_so(course):
    flatten = course.find("FLATTEN")
    assert flatten is not None
    course.remove_block(flatten.id)
    assert "cannot be inferred" in tip(course, "FC3")


def test_batchnorm_counts_its_running_statistics_and_says_when_frozen():
    graph = Graph()
    image = graph.add_block("Input", {"height": 8, "width": 8, "channels": 3})
    _, norm, *_ = graph.chain([("Conv2D", {"filters": 64, "kernel": [3, 3]}), ("BatchNorm", {}),
                               ("Flatten", {}), ("Dense", {"units": 10}), ("Output", {})],
                              after=image.id)
    text = explain(norm, analyze(graph).blocks[norm.id])
    assert "2·C = 2·64 = 128 trainable (γ, β) + 128 running statistics" in text
    assert "= 256" in text
    graph.set_params(norm.id, {"trainable": False})
    assert "128 frozen (γ, β)" in explain(norm, analyze(graph).blocks[norm.id])


def test_key_parameters_leave_neutral_values_out(course):
    conv1 = course.find("CONV1")
    assert conv1 is not None
    assert key_params_text(conv1) == "16 · 5×5 · same · relu"
    course.set_params(conv1.id, {"filters": 8, "stride": [2, 2], "trainable": False})
    assert key_params_text(conv1) == "8 · 5×5/2 · same · relu · frozen"
    fc3 = course.find("FC3")
    assert fc3 is not None and key_params_text(fc3).startswith("100 units")
    image = course.input_block()
    assert image is not None and key_params_text(image) == "28×28×1 image"


def test_counts_only_for_blocks_with_weights_and_a_shape():
    assert counts_text("Conv2D", (28, 28, 16), 416) == "416 params"
    assert counts_text("Conv2D", None, 416) == ""
    assert counts_text("Pooling", (14, 14, 16), 0) == ""


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_every_block_of_every_template_has_its_texts(template_id):
    graph = build_template(template_id)
    analysis = analyze(graph)
    for block in graph.blocks:
        info = analysis.blocks[block.id]
        assert explain(block, info).startswith(f"{block.name} → ")
        assert isinstance(key_params_text(block), str)
        if registry.get(block.type).has_weights:
            assert counts_text(block.type, info.output_shape, info.total_params).endswith(
                " params")


def test_the_multiply_accumulates_are_written_out_with_their_numbers(course):
    assert ("H_out·W_out·filters·(kh·kw·C_in/groups) = 28·28·16·(5·5·1) = 313,600 per image"
            in tip(course, "CONV1"))
    assert "inputs·units = 1568·100 = 156,800 per image" in tip(course, "FC3")


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_every_block_that_computes_shows_the_arithmetic_of_its_macs(template_id):
    """A block type with multiply-accumulates shows how they come about, not the bare count:
    a new such type fails here until its explainer writes them out (EXPLAINS_MACS)."""
    graph = build_template(template_id)
    analysis = analyze(graph)
    for block in graph.blocks:
        info = analysis.blocks[block.id]
        if info.macs:
            assert "multiply-accumulates: " in explain(block, info), block.name
            assert f" = {info.macs:,} per image" in explain(block, info), block.name
