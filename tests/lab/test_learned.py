"""The lab on a trained network: the learned kernels are the model's weights, and the lab's own
arithmetic (NumPy) gives the model's activations, for a first and for deeper convolutions of
every kind a Conv2D block can be (stride, 'same' with an even kernel, dilation, groups, explicit
padding, no bias, each fused activation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.registry import get as block_type
from cnnstudio.lab import learned, ops
from cnnstudio.nn.layers import activation_module
from cnnstudio.train import learned_kernels as lk
from cnnstudio.train.inspect import InspectionError
from tests.nn.test_export import make_run
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras(tmp_path_factory) -> lk.TrainedNetwork:
    return lk.open_run(make_run(tmp_path_factory.mktemp("keras") / "run", "keras-mnist"))


def odd_graph() -> Graph:
    """Colour input, then Conv2D blocks with every unusual setting, one after another."""
    graph = Graph()
    graph.chain([
        ("Input", {"channels": 3, "height": 20, "width": 18}),
        ("Conv2D", {"filters": 6, "kernel": [4, 4], "stride": [2, 2], "padding": "same",
                    "activation": "leaky_relu"}),
        ("Conv2D", {"filters": 6, "kernel": [3, 3], "groups": 3, "dilation": [2, 2],
                    "padding": "same", "activation": "gelu"}),
        ("Conv2D", {"filters": 4, "kernel": [2, 3], "padding": [1, 2], "bias": False,
                    "activation": "hardswish"}),
        ("Conv2D", {"filters": 3, "kernel": [3, 3], "activation": "selu"}),
        ("Flatten", {}), ("Dense", {"units": 4}), ("Output", {}),
    ])
    return graph


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> lk.TrainedNetwork:
    return lk.open_run(make_run(tmp_path_factory.mktemp("odd") / "run", odd_graph()))


def image(network: lk.TrainedNetwork, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, network.input_shape, dtype=np.uint8)


def test_the_learned_kernels_and_bias_are_the_models_tensors(keras):
    for block_id, text in lk.conv_blocks(keras):
        conv = lk.learned_conv(keras, block_id)
        layer = keras.model.blocks[block_id].conv
        weight = layer.weight.detach().double().numpy()
        np.testing.assert_array_equal(conv.weights, weight)
        np.testing.assert_array_equal(conv.bias, layer.bias.detach().double().numpy())
        assert text == f"{conv.name} · {conv.filters} filters 3×3"
        for f in (0, conv.filters - 1):
            channel = 1 % conv.per_filter
            np.testing.assert_array_equal(conv.kernel(f, channel), weight[f, channel])
            np.testing.assert_allclose(conv.kernel(f), weight[f].sum(0))
    assert [b for b, _ in lk.conv_blocks(keras)] == ["conv1", "conv2", "conv3"]


@pytest.mark.parametrize("network_name", ["keras", "odd"])
def test_applying_each_learned_filter_gives_the_models_activation(network_name, request):
    network = request.getfixturevalue(network_name)
    picture = image(network)
    blocks = lk.conv_blocks(network)
    assert len(blocks) >= 3  # a first convolution and deeper ones
    for block_id, _ in blocks:
        conv = lk.learned_conv(network, block_id)
        x = lk.block_input(network, block_id, picture)
        real = lk.block_output(network, block_id, picture)
        assert x.shape[0] == conv.in_channels
        for f in range(conv.filters):
            np.testing.assert_allclose(learned.filter_output(conv, x, f), real[f], rtol=0,
                                       atol=TOLERANCE, err_msg=f"{block_id} filter {f}")


def test_a_first_convolution_reads_the_image_normalised_as_the_run_does(keras):
    picture = image(keras, 3)
    x = lk.block_input(keras, "conv1", picture)
    expected = (picture / 255.0 - keras.mean[0]) / keras.std[0]
    np.testing.assert_allclose(x, expected, atol=1e-6)


@pytest.mark.parametrize("network_name, block_index", [("keras", 0), ("keras", 1),
                                                       ("odd", 1), ("odd", 2)])
def test_the_steps_of_one_pixel_add_up_to_the_models_output(network_name, block_index,
                                                             request):
    network = request.getfixturevalue(network_name)
    block_id = lk.conv_blocks(network)[block_index][0]
    conv = lk.learned_conv(network, block_id)
    picture = image(network, 5)
    x = lk.block_input(network, block_id, picture)
    real = lk.block_output(network, block_id, picture)
    f = conv.filters - 1
    row, col = real.shape[1] // 2, real.shape[2] - 1
    steps = learned.pixel_arithmetic(conv, x, f, row, col)
    sums = [float((steps.windows[k] * steps.kernels[k]).sum()) for k in range(conv.per_filter)]
    np.testing.assert_allclose(steps.channel_sums, sums)
    assert steps.total == pytest.approx(sum(sums))
    assert steps.pre == pytest.approx(steps.total + float(conv.bias[f]))
    assert steps.value == pytest.approx(float(real[f, row, col]), abs=TOLERANCE)
    assert steps.channels == tuple(conv.input_channels(f))
    last = steps.lines()[-1]
    assert last.startswith(learned.activation_label(conv.activation))
    assert last.endswith(ops.fmt(steps.value, 4))


def test_grouped_filters_read_only_their_groups_channels(odd):
    conv = lk.learned_conv(odd, lk.conv_blocks(odd)[1][0])
    assert conv.groups == 3 and conv.per_filter == 2
    assert [list(conv.input_channels(f)) for f in range(6)] == [[0, 1], [0, 1], [2, 3], [2, 3],
                                                               [4, 5], [4, 5]]
    assert "over 2 input channels each (3 groups)" in conv.describe()
    assert "dilation 2×2, GELU" in conv.describe()


def test_a_pixel_outside_the_output_is_refused_with_the_size(keras):
    conv = lk.learned_conv(keras, "conv1")
    x = lk.block_input(keras, "conv1", image(keras))
    with pytest.raises(ops.LabError, match="the output is 26×26: there is no pixel"):
        learned.pixel_arithmetic(conv, x, 0, 26, 0)


def test_every_activation_a_conv_can_fuse_matches_torch():
    choices = next(p for p in block_type("Conv2D").params if p.name == "activation").choices
    values = np.linspace(-7.0, 7.0, 141)
    for name in choices:
        expected = activation_module(name)(torch.tensor(values)).numpy()
        np.testing.assert_allclose(learned.activate(values, name), expected, atol=1e-12,
                                   err_msg=name)


def test_kernel_grid_aligns_fixed_decimals():
    assert learned.kernel_grid(np.array([[0.5, -0.0312], [1.25, 0.0]])) == [
        " 0.5000  −0.0312", " 1.2500   0.0000"]


def test_a_missing_run_folder_says_what_a_run_folder_holds(tmp_path):
    with pytest.raises(InspectionError, match="it does not exist; choose the folder of a "
                                              "training run"):
        lk.open_run(tmp_path / "nowhere")


def test_the_maps_picture_stretches_each_map_and_enlarges_it():
    maps = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 3.0)])
    picture = lk.maps_picture(maps)
    zoom = lk.MAP_TILE // 2
    assert picture.shape == (2 * lk.MAP_GAP + zoom * 2, 3 * lk.MAP_GAP + 2 * zoom * 2)
    first = picture[lk.MAP_GAP:lk.MAP_GAP + 2 * zoom:zoom, lk.MAP_GAP:lk.MAP_GAP + 2 * zoom:zoom]
    assert first.tolist() == [[0, 85], [170, 255]]
    assert int(picture[lk.MAP_GAP, 2 * lk.MAP_GAP + 2 * zoom]) == 0  # a flat map: all black


def test_digits_come_with_their_classes(keras):
    digits, labels = lk.sample_digits(keras, 3)
    assert digits.shape == (3, 1, 28, 28) and digits.dtype == np.uint8
    assert all(label in [str(k) for k in range(10)] for label in labels)


def test_the_run_is_named_after_its_folder(keras):
    assert keras.name == f"run {Path(str(keras.run_dir)).name}"
    assert keras.weights == f"from run {Path(str(keras.run_dir)).name}"


def test_a_long_channel_sum_leaves_out_and_counts_the_middle_products(odd):
    conv = lk.learned_conv(odd, lk.conv_blocks(odd)[0][0])  # 4×4: 16 products per channel
    x = lk.block_input(odd, conv.block_id, image(odd))
    steps = learned.pixel_arithmetic(conv, x, 0, 2, 2)
    whole = steps.channel_text(1)
    assert whole.count("·") == 16 and whole.endswith(ops.fmt(steps.channel_sums[1], 4))
    short = steps.channel_text(1, most=8)
    assert short.count("·") == 7 and "… (9 more products) …" in short
    assert short.endswith(ops.fmt(steps.channel_sums[1], 4))
