"""The training-memory estimate against the real model.

`Analysis.memory().activations` is worked out from the block declarations alone; here the model
that build_model makes runs one float32 training-mode forward pass on the CPU while
`torch.autograd.graph.saved_tensors_hooks` records every tensor kept for backward, each storage
once (cnnstudio.nn.memory). Weights and running statistics are left out of the measurement: the
figure counts them as weights. The named networks are measured at sizes that keep this quick;
the estimate is exact, so the ratio does not depend on the size (bench/memory_estimate.py runs
them at full size).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import build_template
from cnnstudio.nn.build import build_model, running_stat_count
from cnnstudio.nn.memory import measure_saved_activations
from tests.nn.test_export import modern_graph
from tests.property.test_build_property import networks
from tests.residual import resnet_graph

TOLERANCE = 0.10


def estimate_and_measure(graph: Graph, batch: int) -> tuple[int, int]:
    analysis = analyze(graph)
    assert analysis.ok, [d.message for d in analysis.errors]
    torch.manual_seed(0)
    model = build_model(graph)
    x = torch.randn(batch, *analysis.blocks[model.input_id].output_shape)
    return analysis.memory(batch).activations, measure_saved_activations(model, x).total


def assert_close(estimate: int, measured: int) -> None:
    assert measured > 0
    ratio = estimate / measured
    assert abs(ratio - 1) <= TOLERANCE, (
        f"estimate {estimate / 2**20:.2f} MiB, measured {measured / 2**20:.2f} MiB, "
        f"ratio {ratio:.3f}")


def test_keras_book_network_at_batch_64():
    """The old figure (outputs of every block) said 9.4 MiB; autograd keeps 12.65 MiB,
    ReLU inputs of the pooling and the int64 pooling indices included."""
    estimate, measured = estimate_and_measure(build_template("keras-mnist"), 64)
    assert_close(estimate, measured)
    assert measured == 13_266_944


def test_residual_blocks_with_batchnorm_at_batch_64():
    graph = resnet_graph((3, 32, 32), classes=10, blocks=(2, 2), widths=(16, 32))
    assert_close(*estimate_and_measure(graph, 64))


def test_resnet18_at_batch_8():
    assert_close(*estimate_and_measure(resnet_graph((3, 64, 64)), 8))


def test_googlenet_with_auxiliary_heads():
    """The full GoogLeNet (uneven 'same' padding, LRN, Inception branches, two auxiliary heads)
    at 96 px, the smallest size with the ImageNet stem, batch 2."""
    assert_close(*estimate_and_measure(build_template("googlenet", (3, 96, 96), 10), 2))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: thread start-up costs more than it saves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(networks())
def test_every_block_keeps_what_it_declares_in_random_networks(one_thread, graph: Graph):
    """Per block, exactly: every block type, padding mode, activation, frozen weights, merges
    and auxiliary heads that the property test of build_model draws."""
    analysis = analyze(graph)
    assume(analysis.ok)
    assert_each_block_keeps_what_it_declares(graph)


def assert_each_block_keeps_what_it_declares(graph: Graph, batch: int = 3) -> None:
    analysis = analyze(graph)
    model = build_model(graph)
    x = torch.randn(batch, *analysis.blocks[model.input_id].output_shape)
    measured = measure_saved_activations(model, x).per_block
    estimated = {block_id: info.saved.at(batch) for block_id, info in analysis.blocks.items()
                 if info.saved.at(batch)}
    assert estimated == measured, {
        f"{graph.block(b).type} {b}": (estimated.get(b), measured.get(b))
        for b in set(estimated) | set(measured) if estimated.get(b) != measured.get(b)}


def test_the_blocks_of_modern_networks_keep_what_they_declare(one_thread):
    """Explicit-pad and ceil-mode max, average and sum pooling, counted padding, adaptive
    average and max pooling (1×1 too), ReLU6, SiLU, Hardswish, Hardsigmoid (fused and as
    blocks), depthwise convolution and Multiply by a vector and by a 1×1 map."""
    assert_each_block_keeps_what_it_declares(modern_graph())


def test_total_parameters_are_torch_parameters_plus_batchnorm_running_statistics():
    """What the weights part of the memory counts: every float the model holds."""
    graph = resnet_graph((3, 32, 32), classes=10)
    analysis = analyze(graph)
    with torch.device("meta"):
        model = build_model(graph)
    parameters = sum(p.numel() for p in model.parameters())
    running = sum(running_stat_count(layer) for layer in model.blocks.values())
    assert running == 9_600
    assert analysis.total_params == parameters + running
    assert analysis.learnable_params == parameters
    assert analysis.memory(8).weights == 4 * (parameters + running)


def test_a_factor_is_kept_only_for_a_gradient_that_is_needed(one_thread):
    """image × conv(image): the image needs no gradient, so the convolution's output is not
    kept for one; the image is, for the convolution's gradient."""
    graph = Graph()
    image, conv = graph.chain([("Input", {"channels": 2, "height": 5, "width": 5}),
                               ("Conv2D", {"filters": 2, "kernel": 3, "padding": "same"})])
    multiply = graph.add_block("Multiply")
    graph.connect(image.id, multiply.id)
    graph.connect(conv.id, multiply.id)
    graph.chain([("Flatten", {}), ("Dense", {"units": 2}), ("Output", {})], after=multiply.id)
    saved = analyze(graph).blocks[multiply.id].saved
    assert (saved.per_sample, saved.per_batch) == (0, 0)  # the image: the convolution keeps it
    assert_each_block_keeps_what_it_declares(graph)
    graph.set_params(conv.id, {"trainable": False})
    assert_each_block_keeps_what_it_declares(graph)
