"""The blocks and options of modern networks against the torch modules they stand for.

Each case builds a one-block network, runs it and compares the values with the nn module of
torchvision's networks: nn.MaxPool2d with padding or ceil_mode (ResNet, SqueezeNet),
nn.AvgPool2d with count_include_pad, nn.AdaptiveAvgPool2d / nn.AdaptiveMaxPool2d (VGG,
AlexNet), nn.ReLU6 / nn.SiLU / nn.Hardswish / nn.Hardsigmoid (MobileNet, EfficientNet), a
depthwise nn.Conv2d and the squeeze-and-excitation product.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from cnnstudio.core.graph import Graph
from cnnstudio.nn import build_model
from tests.nn.test_build import assert_matches_analysis, image_net, single


def run_block(type_id: str, params: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    """The output of one block on x (a one-block network, checked against analyze())."""
    g = image_net((type_id, params), channels=x.shape[1], size=tuple(x.shape[2:]))
    model, _, _ = assert_matches_analysis(g, batch=x.shape[0])
    block_id = single(g, type_id)
    with torch.no_grad():
        return model.eval().activations(x, [block_id])[block_id]


def test_max_pooling_with_explicit_padding_is_resnets_stem_pool():
    x = -torch.rand(2, 3, 112, 112)  # all negative: a zero padding would win at the edges
    out = run_block("Pooling", {"pool_size": 3, "stride": 2, "padding": [1, 1]}, x)
    assert out.shape == (2, 3, 56, 56)
    assert torch.equal(out, nn.MaxPool2d(3, 2, 1)(x))


@pytest.mark.parametrize("size", [111, 112, 13, 2])
@pytest.mark.parametrize("padding", [0, 1])
def test_ceil_mode_max_pooling_equals_torch(size, padding):
    x = torch.randn(2, 3, size, size + 2)
    params = {"pool_size": 3, "stride": 2, "padding": [padding, padding], "ceil_mode": True}
    out = run_block("Pooling", params, x)
    assert torch.equal(out, nn.MaxPool2d(3, 2, padding, ceil_mode=True)(x))
    if (size, padding) == (111, 0):
        assert out.shape[2] == 55  # SqueezeNet's first pool


def test_a_last_window_that_would_start_in_the_padding_is_dropped_as_torch_does():
    x = torch.randn(1, 2, 5, 5)
    out = run_block("Pooling", {"pool_size": 2, "padding": [1, 1], "ceil_mode": True}, x)
    assert out.shape == (1, 2, 3, 3)
    assert torch.equal(out, nn.MaxPool2d(2, 2, 1, ceil_mode=True)(x))


@pytest.mark.parametrize("counted", [True, False])
@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("window", [(3, 1, 1), (3, 2, 1), (2, 2, 0)])
def test_average_pooling_counts_padding_as_count_include_pad_says(counted, ceil, window):
    kernel, stride, padding = window
    x = torch.randn(2, 3, 9, 10)
    params = {"mode": "average", "pool_size": kernel, "stride": stride,
              "padding": [padding, padding], "count_padding": counted, "ceil_mode": ceil}
    expected = nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil,
                            count_include_pad=counted)(x)
    torch.testing.assert_close(run_block("Pooling", params, x), expected)


def test_the_divisor_of_a_corner_window():
    x = torch.ones(1, 1, 4, 4)
    params = {"mode": "average", "pool_size": 3, "stride": 1, "padding": [1, 1]}
    assert run_block("Pooling", {**params, "count_padding": False}, x)[0, 0, 0, 0] == 1.0
    assert run_block("Pooling", {**params, "count_padding": True}, x)[0, 0, 0, 0] == \
        pytest.approx(4 / 9)


@pytest.mark.parametrize("size", [(3, 3), (14, 14), (10, 11)])
@pytest.mark.parametrize("mode, module", [("adaptive_average", nn.AdaptiveAvgPool2d),
                                          ("adaptive_max", nn.AdaptiveMaxPool2d)])
def test_adaptive_pooling_equals_torch(size, mode, module):
    x = torch.randn(2, 4, *size)
    out = run_block("Pooling", {"mode": mode, "output_size": [7, 7]}, x)
    assert out.shape == (2, 4, 7, 7)
    torch.testing.assert_close(out, module((7, 7))(x))


ACTIVATIONS = {"relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish,
               "hardsigmoid": nn.Hardsigmoid}


@pytest.mark.parametrize("function", list(ACTIVATIONS))
def test_the_mobilenet_activations_as_blocks_and_fused(function):
    x = torch.linspace(-8, 8, 2 * 3 * 5 * 6).view(2, 3, 5, 6)
    torch.testing.assert_close(run_block("Activation", {"function": function}, x),
                               ACTIVATIONS[function]()(x))
    g = image_net(("Conv2D", {"filters": 2, "kernel": 3, "activation": function}))
    model, _, acts = assert_matches_analysis(g)
    conv_id = single(g, "Conv2D")
    with torch.no_grad():
        pre = model.blocks[conv_id].conv(acts[single(g, "Input")])
    torch.testing.assert_close(acts[conv_id], ACTIVATIONS[function]()(pre))


def test_depthwise_conv_is_one_filter_per_input_channel():
    x = torch.randn(2, 6, 9, 9)
    g = image_net(("Conv2D", {"depthwise": True, "filters": 32, "groups": 1, "kernel": [3, 5],
                              "padding": "same"}), channels=6, size=(9, 9))
    model, analysis, acts = assert_matches_analysis(g)
    conv_id = single(g, "Conv2D")
    conv = model.blocks[conv_id].conv
    assert analysis.blocks[conv_id].params == 3 * 5 * 6 + 6  # kh·kw·C + C
    assert (conv.in_channels, conv.out_channels, conv.groups) == (6, 6, 6)
    assert conv.weight.shape == (6, 1, 3, 5)
    reference = nn.Conv2d(6, 6, (3, 5), padding=(1, 2), groups=6)
    reference.load_state_dict(conv.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.activations(x, [conv_id])[conv_id], reference(x))


def squeeze_excite(scale_first: bool, map_scale: bool = False) -> tuple[Graph, str, str, str]:
    """Conv2D 8 → global pooling → Dense 2 → Dense 8 sigmoid → Multiply with the Conv2D
    (or a 1×1 map: adaptive pooling → Conv2D 1×1 sigmoid)."""
    g = Graph()
    _, image = g.chain([("Input", {"channels": 3, "height": 6, "width": 7}),
                        ("Conv2D", {"filters": 8, "kernel": 3, "padding": "same"})])
    if map_scale:
        _, scale = g.chain([("Pooling", {"mode": "adaptive_average"}),
                            ("Conv2D", {"filters": 8, "kernel": 1, "activation": "sigmoid"})],
                           after=image.id)
    else:
        _, _, scale = g.chain([("Pooling", {"mode": "global_average"}),
                               ("Dense", {"units": 2, "activation": "relu"}),
                               ("Dense", {"units": 8, "activation": "sigmoid"})],
                              after=image.id)
    multiply = g.add_block("Multiply")
    for source in ((scale.id, image.id) if scale_first else (image.id, scale.id)):
        g.connect(source, multiply.id)
    g.chain([("Pooling", {"mode": "global_max"}), ("Dense", {"units": 3}), ("Output", {})],
            after=multiply.id)
    return g, image.id, scale.id, multiply.id


@pytest.mark.parametrize("scale_first", [True, False])
@pytest.mark.parametrize("map_scale", [False, True])
def test_multiply_scales_every_channel_by_its_weight(scale_first, map_scale):
    g, image, scale, multiply = squeeze_excite(scale_first, map_scale)
    model, _, acts = assert_matches_analysis(g)
    s = acts[scale] if map_scale else acts[scale][:, :, None, None]
    torch.testing.assert_close(acts[multiply], acts[image] * s)


def test_multiply_of_equal_shapes_is_value_by_value_and_trains():
    g = Graph()
    _, conv = g.chain([("Input", {"channels": 2, "height": 5, "width": 5}),
                       ("Conv2D", {"filters": 4, "kernel": 3, "padding": "same"})])
    (gate,) = g.chain([("Conv2D", {"filters": 4, "kernel": 1, "activation": "hardsigmoid"})],
                      after=conv.id)
    multiply = g.add_block("Multiply")
    g.connect(conv.id, multiply.id)
    g.connect(gate.id, multiply.id)
    g.chain([("Flatten", {}), ("Dense", {"units": 2}), ("Output", {})], after=multiply.id)
    model, _, acts = assert_matches_analysis(g)
    torch.testing.assert_close(acts[multiply.id], acts[conv.id] * acts[gate.id])
    model = build_model(g)
    model(torch.randn(3, 2, 5, 5)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
