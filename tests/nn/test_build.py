"""build_model(): the real torch module agrees with analyze() on every shape and count."""

from __future__ import annotations

import io
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.graph import Graph
from cnnstudio.nn import GraphModel, ModelBuildError, build_model, running_stat_count

MNIST = {"channels": 1, "height": 28, "width": 28}


def numel(parameters, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in parameters if p.requires_grad or not trainable_only)


def assert_matches_analysis(
    graph: Graph, batch: int = 2
) -> tuple[GraphModel, Analysis, dict[str, torch.Tensor]]:
    """Build, run one batch, and compare every block's real shape and counts with analyze()."""
    analysis = analyze(graph)
    assert analysis.ok, [d.message for d in analysis.errors]
    model = build_model(graph).eval()
    x = torch.randn(batch, *analysis.blocks[model.input_id].output_shape)
    with torch.no_grad():
        acts = model.activations(x, model.order)
        logits = model(x)
    for block_id in analysis.order:
        info, layer = analysis.blocks[block_id], model.blocks[block_id]
        where = f"{info.type} {block_id}"
        assert tuple(acts[block_id].shape) == (batch, *info.output_shape), where
        assert numel(layer.parameters()) == info.params, where
        assert numel(layer.parameters(), trainable_only=True) == info.trainable, where
        assert running_stat_count(layer) == info.buffers, where
    assert numel(model.parameters()) == analysis.learnable_params
    assert numel(model.parameters(), trainable_only=True) == analysis.trainable_params
    assert torch.equal(logits, acts[model.main_output_id])
    return model, analysis, acts


def image_net(*specs: tuple, channels: int = 3, size: tuple[int, int] = (9, 11)) -> Graph:
    """Input → specs → Flatten → Dense 3 → Output."""
    g = Graph()
    g.chain([
        ("Input", {"channels": channels, "height": size[0], "width": size[1]}),
        *specs,
        ("Flatten", {}),
        ("Dense", {"units": 3}),
        ("Output", {}),
    ])
    return g


def single(g: Graph, type_id: str) -> str:
    (block,) = [b for b in g.blocks if b.type == type_id]
    return block.id


# -- one test per block type --------------------------------------------------------------

CONV_CASES: list[dict[str, Any]] = [
    {"kernel": 3},
    {"kernel": [2, 5], "stride": [2, 1]},
    {"kernel": 3, "padding": "same"},
    {"kernel": 4, "padding": "same"},
    {"kernel": 3, "stride": 2, "padding": "same"},
    {"kernel": 4, "stride": 2, "padding": "same"},
    {"kernel": [1, 5], "stride": [3, 2], "padding": "same"},
    {"kernel": 3, "dilation": 2, "padding": "same"},
    {"kernel": 3, "padding": "full"},
    {"kernel": 3, "dilation": [2, 1], "stride": 2, "padding": "full"},
    {"kernel": 3, "padding": [1, 2]},
    {"kernel": [3, 2], "stride": 2, "padding": [0, 3]},
    {"kernel": 3, "dilation": [2, 3]},
    {"filters": 6, "groups": 3, "kernel": 3},
    {"filters": 3, "groups": 3, "kernel": 3, "padding": "same", "bias": False},
    {"kernel": 3, "bias": False},
]


@pytest.mark.parametrize("size", [(9, 9), (10, 10), (9, 12)])
@pytest.mark.parametrize("params", CONV_CASES)
def test_conv2d_shapes_and_counts(params, size):
    assert_matches_analysis(image_net(("Conv2D", {"filters": 4, **params}), size=size))


def reference(function: str, x: torch.Tensor, slope: float = 0.01, alpha: float = 1.0):
    functions = {
        "none": lambda: x, "relu": lambda: F.relu(x), "elu": lambda: F.elu(x, alpha),
        "leaky_relu": lambda: F.leaky_relu(x, slope), "selu": lambda: F.selu(x),
        "gelu": lambda: F.gelu(x), "tanh": lambda: torch.tanh(x),
        "sigmoid": lambda: torch.sigmoid(x), "softmax": lambda: torch.softmax(x, dim=1),
    }
    return functions[function]()


@pytest.mark.parametrize(
    "activation", ["none", "relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid"]
)
def test_conv2d_fused_activation(activation):
    g = image_net(("Conv2D", {"filters": 2, "kernel": 3, "activation": activation}))
    model, _, acts = assert_matches_analysis(g)
    conv_id = single(g, "Conv2D")
    with torch.no_grad():
        pre = model.blocks[conv_id].conv(acts[single(g, "Input")])
    torch.testing.assert_close(acts[conv_id], reference(activation, pre))


@pytest.mark.parametrize(
    "function", ["relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", "softmax"]
)
def test_activation_block(function):
    g = image_net(("Activation", {"function": function, "negative_slope": 0.2, "alpha": 0.5}))
    _, _, acts = assert_matches_analysis(g)
    out, x = acts[single(g, "Activation")], acts[single(g, "Input")]
    torch.testing.assert_close(out, reference(function, x, slope=0.2, alpha=0.5))
    if function == "softmax":
        torch.testing.assert_close(out.sum(dim=1), torch.ones(2, 9, 11))


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("mode", ["max", "average", "sum", "l2"])
@pytest.mark.parametrize(
    "window", [{"pool_size": 2}, {"pool_size": 3, "stride": 2}, {"pool_size": [3, 2], "stride": 1}]
)
def test_pooling_windowed_modes(mode, padding, window):
    assert_matches_analysis(image_net(("Pooling", {"mode": mode, "padding": padding, **window})))


@pytest.mark.parametrize("mode", ["global_max", "global_average"])
def test_global_pooling_returns_a_flat_vector(mode):
    g = image_net(("Pooling", {"mode": mode}))
    _, analysis, acts = assert_matches_analysis(g)
    pool_id = single(g, "Pooling")
    assert analysis.blocks[pool_id].output_shape == (3,)
    x = acts[single(g, "Input")]
    expected = x.amax(dim=(2, 3)) if mode == "global_max" else x.mean(dim=(2, 3))
    torch.testing.assert_close(acts[pool_id], expected)


@pytest.mark.parametrize("mode", ["element", "channel"])
def test_dropout(mode):
    g = image_net(("Dropout", {"rate": 0.5, "mode": mode}))
    model, _, acts = assert_matches_analysis(g)
    drop_id = single(g, "Dropout")
    torch.testing.assert_close(acts[drop_id], acts[single(g, "Input")])  # identity in eval
    model.train()
    torch.manual_seed(0)
    x = torch.ones(4, 3, 9, 11)
    out = model.activations(x, [drop_id])[drop_id]
    assert set(out.unique().tolist()) == {0.0, 2.0}
    if mode == "channel":  # whole feature maps are dropped
        per_map = out.flatten(2)
        assert torch.all(per_map.amin(dim=2) == per_map.amax(dim=2))


def test_dropout_on_a_vector():
    g = image_net(("Flatten", {}), ("Dropout", {"rate": 0.3}))
    assert_matches_analysis(g)


def test_batchnorm_on_images_and_vectors():
    g = image_net(
        ("BatchNorm", {"momentum": 0.01, "eps": 1e-3}),
        ("Flatten", {}),
        ("BatchNorm", {}),
    )
    model, analysis, _ = assert_matches_analysis(g)
    image_bn, vector_bn = [b.id for b in g.blocks if b.type == "BatchNorm"]
    assert isinstance(model.blocks[image_bn].bn, torch.nn.BatchNorm2d)
    assert isinstance(model.blocks[vector_bn].bn, torch.nn.BatchNorm1d)
    assert model.blocks[image_bn].bn.momentum == 0.01
    assert model.blocks[image_bn].bn.eps == 1e-3
    assert analysis.blocks[image_bn].params == 6 and analysis.blocks[image_bn].buffers == 6
    assert analysis.blocks[vector_bn].params == 2 * 3 * 9 * 11
    model.train()
    model(torch.randn(4, 3, 9, 11))  # training mode runs too (batch statistics)


def test_local_response_norm():
    params = {"size": 3, "alpha": 0.01, "beta": 0.5, "k": 1.5}
    g = image_net(("LocalResponseNorm", params), channels=6)
    _, _, acts = assert_matches_analysis(g)
    expected = torch.nn.LocalResponseNorm(3, alpha=0.01, beta=0.5, k=1.5)(acts[single(g, "Input")])
    torch.testing.assert_close(acts[single(g, "LocalResponseNorm")], expected)


def test_flatten_and_dense():
    g = Graph()
    blocks = g.chain([
        ("Input", {"channels": 2, "height": 3, "width": 4}),
        ("Flatten", {}),
        ("Dense", {"units": 7, "activation": "tanh", "bias": False}),
        ("Dense", {"units": 5}),
        ("Output", {}),
    ])
    model, analysis, acts = assert_matches_analysis(g)
    assert analysis.blocks[blocks[1].id].output_shape == (24,)
    assert analysis.blocks[blocks[2].id].params == 24 * 7
    assert analysis.blocks[blocks[3].id].params == 7 * 5 + 5
    torch.testing.assert_close(acts[blocks[1].id], acts[blocks[0].id].flatten(1))
    linear = model.blocks[blocks[2].id].linear
    torch.testing.assert_close(acts[blocks[2].id], torch.tanh(linear(acts[blocks[1].id])))


def branched(merge: str, branch_specs: list[list[tuple]]) -> tuple[Graph, list[str], str]:
    """Input → branches → merge → Flatten → Dense → Output; returns graph, branch ends, merge."""
    g = Graph()
    (inp,) = g.chain([("Input", {"channels": 2, "height": 7, "width": 9})])
    merge_block = g.add_block(merge)
    ends = []
    for specs in branch_specs:
        end = g.chain(specs, after=inp.id)[-1].id if specs else inp.id
        g.connect(end, merge_block.id)
        ends.append(end)
    g.chain([("Flatten", {}), ("Dense", {"units": 3}), ("Output", {})], after=merge_block.id)
    return g, ends, merge_block.id


def test_concatenate_three_branches_in_port_order():
    g, ends, merge_id = branched("Concatenate", [
        [("Conv2D", {"filters": 3, "kernel": 1})],
        [("Conv2D", {"filters": 4, "kernel": 3, "padding": "same"})],
        [("Pooling", {"mode": "max", "pool_size": 3, "stride": 1, "padding": "same"})],
    ])
    _, analysis, acts = assert_matches_analysis(g)
    assert analysis.blocks[merge_id].output_shape == (9, 7, 9)
    torch.testing.assert_close(acts[merge_id], torch.cat([acts[e] for e in ends], dim=1))


def test_add_sums_its_inputs():
    g, ends, merge_id = branched("Add", [
        [],
        [("Conv2D", {"filters": 2, "kernel": 3, "padding": "same"})],
        [("Conv2D", {"filters": 2, "kernel": [1, 3], "stride": 1, "padding": [0, 1]})],
    ])
    _, _, acts = assert_matches_analysis(g)
    torch.testing.assert_close(acts[merge_id], acts[ends[0]] + acts[ends[1]] + acts[ends[2]])


def test_merging_vectors():
    g = Graph()
    _, flat = g.chain([("Input", {"channels": 1, "height": 4, "width": 4}), ("Flatten", {})])
    concat = g.add_block("Concatenate")
    for units in (3, 5):
        (dense,) = g.chain([("Dense", {"units": units})], after=flat.id)
        g.connect(dense.id, concat.id)
    g.chain([("Dense", {"units": 2}), ("Output", {})], after=concat.id)
    _, analysis, _ = assert_matches_analysis(g)
    assert analysis.blocks[concat.id].output_shape == (8,)


# -- numeric semantics ----------------------------------------------------------------------


def test_same_conv_with_stride_2_pads_bottom_right_like_keras():
    g = image_net(("Conv2D", {"filters": 2, "kernel": 3, "stride": 2, "padding": "same"}),
                  size=(10, 10))
    model, analysis, acts = assert_matches_analysis(g)
    conv_id = single(g, "Conv2D")
    assert analysis.blocks[conv_id].output_shape == (2, 5, 5)  # ceil(10 / 2)
    conv = model.blocks[conv_id].conv
    x = acts[single(g, "Input")]
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(acts[conv_id], expected)


def pool_out(mode: str, x: torch.Tensor, padding: str = "valid", **window) -> torch.Tensor:
    g = Graph()
    _, pool = g.chain([
        ("Input", {"channels": x.shape[1], "height": x.shape[2], "width": x.shape[3]}),
        ("Pooling", {"mode": mode, "padding": padding, **window}),
    ])
    g.chain([("Flatten", {}), ("Dense", {"units": 2}), ("Output", {})], after=pool.id)
    model = build_model(g)
    with torch.no_grad():
        return model.activations(x, [pool.id])[pool.id]


def test_sum_pooling_is_four_times_average_for_2x2_valid():
    x = torch.randn(2, 3, 8, 6)
    torch.testing.assert_close(pool_out("sum", x), 4 * F.avg_pool2d(x, 2))
    torch.testing.assert_close(pool_out("sum", x), 4 * pool_out("average", x))


def test_l2_pooling_is_the_root_of_the_sum_of_squares():
    x = torch.randn(2, 3, 7, 7)
    windows = F.unfold(x, kernel_size=3, stride=2)  # (N, C·9, L)
    expected = windows.view(2, 3, 9, -1).pow(2).sum(dim=2).sqrt().view(2, 3, 3, 3)
    torch.testing.assert_close(pool_out("l2", x, pool_size=3, stride=2), expected)


def test_l2_pooling_of_zeros_has_a_finite_gradient():
    g = image_net(("Pooling", {"mode": "l2"}), size=(4, 4))
    model = build_model(g)
    model(torch.zeros(2, 3, 4, 4)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_same_average_pooling_counts_only_real_pixels():
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    out = pool_out("average", x, "same", pool_size=3, stride=1)
    assert out[0, 0, 0, 0].item() == pytest.approx((1 + 2 + 4 + 5) / 4)
    assert out[0, 0, 1, 1].item() == pytest.approx(5.0)
    out = pool_out("average", x, "same", pool_size=2)  # pads one pixel at bottom/right only
    assert out.shape == (1, 1, 2, 2)
    assert out[0, 0, 0, 0].item() == pytest.approx((1 + 2 + 4 + 5) / 4)
    assert out[0, 0, 1, 1].item() == pytest.approx(9.0)
    assert out[0, 0, 0, 1].item() == pytest.approx((3 + 6) / 2)


def test_same_max_pooling_ignores_padding_on_negative_inputs():
    x = -torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    out = pool_out("max", x, "same", pool_size=2)
    assert out.flatten().tolist() == [-1.0, -3.0, -7.0, -9.0]


def test_course_example_has_171158_parameters():
    g = Graph()
    g.chain([
        ("Input", MNIST),
        ("Conv2D", {"filters": 16, "kernel": 5, "padding": "same", "activation": "relu"}),
        ("Pooling", {"mode": "max", "pool_size": 2}),
        ("Conv2D", {"filters": 32, "kernel": 5, "padding": "same", "activation": "relu"}),
        ("Pooling", {"mode": "max", "pool_size": 2}),
        ("Flatten", {}),
        ("Dense", {"units": 100, "activation": "relu"}),
        ("Dense", {"units": 10}),
        ("Output", {}),
    ])
    model, analysis, _ = assert_matches_analysis(g)
    assert numel(model.parameters()) == analysis.learnable_params == 171_158


def test_keras_book_mnist_has_93322_parameters():
    g = Graph()
    g.chain([
        ("Input", MNIST),
        ("Conv2D", {"filters": 32, "kernel": 3, "activation": "relu"}),
        ("Pooling", {"pool_size": 2}),
        ("Conv2D", {"filters": 64, "kernel": 3, "activation": "relu"}),
        ("Pooling", {"pool_size": 2}),
        ("Conv2D", {"filters": 64, "kernel": 3, "activation": "relu"}),
        ("Flatten", {}),
        ("Dense", {"units": 64, "activation": "relu"}),
        ("Dense", {"units": 10}),
        ("Output", {}),
    ])
    model, _, _ = assert_matches_analysis(g)
    assert numel(model.parameters()) == 93_322
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


# -- model API ------------------------------------------------------------------------------


def test_a_graph_with_errors_raises_a_readable_model_build_error():
    g = Graph()
    g.chain([("Input", MNIST), ("Conv2D", {"filters": 4}), ("Dense", {"units": 10})])
    with pytest.raises(ModelBuildError) as caught:
        build_model(g)
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == "cannot build the network: 2 errors"
    assert any("no Output block" in line for line in lines[1:])
    assert any("Dense needs a flat input" in line and "insert Flatten" in line for line in lines)
    assert len(caught.value.diagnostics) == 2
    assert isinstance(caught.value, ValueError)


def test_frozen_blocks_do_not_train():
    g = image_net(
        ("Conv2D", {"filters": 4, "kernel": 3, "trainable": False}),
        ("BatchNorm", {"trainable": False}),
    )
    model, analysis, _ = assert_matches_analysis(g)
    conv_id, bn_id = single(g, "Conv2D"), single(g, "BatchNorm")
    assert not any(p.requires_grad for p in model.blocks[conv_id].parameters())
    assert not any(p.requires_grad for p in model.blocks[bn_id].parameters())
    frozen = (3 * 9 * 4 + 4) + 2 * 4
    assert analysis.trainable_params == analysis.learnable_params - frozen
    assert numel(model.parameters(), trainable_only=True) == analysis.trainable_params


def test_penalty_by_hand():
    g = Graph()
    _, conv, _, dense, _ = g.chain([
        ("Input", {"channels": 1, "height": 2, "width": 2}),
        ("Conv2D", {"filters": 1, "kernel": 2, "l1": 0.1, "l2": 0.01}),
        ("Flatten", {}),
        ("Dense", {"units": 2, "l2": 0.5}),
        ("Output", {}),
    ])
    model = build_model(g)
    with torch.no_grad():
        model.blocks[conv.id].conv.weight.copy_(torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]]]))
        model.blocks[conv.id].conv.bias.fill_(100.0)  # biases are not penalised
        model.blocks[dense.id].linear.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        model.blocks[dense.id].linear.bias.fill_(100.0)
    # conv: 0.1·10 + 0.01·30 = 1.3; dense: 0.5·(4 + 1) = 2.5
    penalty = model.penalty()
    assert penalty.item() == pytest.approx(3.8)
    penalty.backward()
    assert model.blocks[conv.id].conv.weight.grad is not None


def test_penalty_is_zero_without_regularisation():
    model = build_model(image_net(("Conv2D", {"filters": 2})))
    penalty = model.penalty()
    assert isinstance(penalty, torch.Tensor) and penalty.item() == 0.0


def aux_net() -> tuple[Graph, str, str, str]:
    g = Graph()
    blocks = g.chain([
        ("Input", {"channels": 1, "height": 8, "width": 8}),
        ("Conv2D", {"filters": 4, "kernel": 3, "padding": "same", "activation": "relu"}),
        ("Pooling", {"mode": "max"}),
        ("Flatten", {}),
        ("Dense", {"units": 5}),
        ("Output", {}),
    ])
    aux = g.chain([
        ("Pooling", {"mode": "global_average"}),
        ("Dense", {"units": 5}),
        ("Output", {"auxiliary": True, "loss_weight": 0.3}),
    ], after=blocks[1].id)
    return g, blocks[-1].id, aux[-1].id, aux[1].id


def test_forward_outputs_returns_main_and_auxiliary_outputs():
    g, main_id, aux_id, aux_dense = aux_net()
    model, _, _ = assert_matches_analysis(g)
    assert model.main_output_id == main_id and set(model.output_ids) == {main_id, aux_id}
    x = torch.randn(2, 1, 8, 8)
    outputs = model.forward_outputs(x)
    assert set(outputs) == {main_id, aux_id}
    assert outputs[main_id].shape == outputs[aux_id].shape == (2, 5)
    torch.testing.assert_close(model(x), outputs[main_id])
    calls = []
    model.blocks[aux_dense].register_forward_hook(lambda *args: calls.append(1))
    model(x)
    assert calls == []  # prediction does not run the auxiliary head


def test_activations_return_the_requested_blocks_only():
    g, _, _, aux_dense = aux_net()
    model = build_model(g)
    analysis = analyze(g)
    conv_id = single(g, "Conv2D")
    calls = []
    model.blocks[aux_dense].register_forward_hook(lambda *args: calls.append(1))
    acts = model.activations(torch.randn(3, 1, 8, 8), [conv_id])
    assert list(acts) == [conv_id]
    assert acts[conv_id].shape == (3, *analysis.blocks[conv_id].output_shape)
    assert calls == []
    with pytest.raises(KeyError, match="nope"):
        model.activations(torch.randn(1, 1, 8, 8), ["nope"])


def test_state_dict_keys_and_attributes():
    g = image_net(("Conv2D", {"filters": 2}), ("BatchNorm", {}))
    model = build_model(g)
    keys = set(model.state_dict())
    assert "blocks.conv2d_1.conv.weight" in keys and "blocks.conv2d_1.conv.bias" in keys
    assert "blocks.batchnorm_1.bn.running_mean" in keys
    assert model.input_id == "input_1" and model.output_ids == ["output_1"]
    assert model.order == analyze(g).order


def every_kind_of_block() -> Graph:
    """Five Keras-'same' branches (asymmetric pads) → Concatenate → residual Add → two heads."""
    g, _, concat = branched("Concatenate", [
        [("Conv2D", {"filters": 3, "kernel": 4, "stride": 2, "padding": "same",
                     "activation": "gelu"})],
        [("Pooling", {"mode": "average", "pool_size": 3, "stride": 2, "padding": "same"}),
         ("BatchNorm", {})],
        [("Pooling", {"mode": "l2", "pool_size": 2, "stride": 2, "padding": "same"}),
         ("LocalResponseNorm", {"size": 3})],
        [("Pooling", {"mode": "sum", "pool_size": 3, "stride": 2, "padding": "same"}),
         ("Activation", {"function": "softmax"})],
        [("Pooling", {"mode": "max", "pool_size": 2, "stride": 2, "padding": "same"}),
         ("Dropout", {"mode": "channel"})],
    ])
    (flatten,) = [b for b in g.blocks if b.type == "Flatten"]
    g.remove_block(flatten.id)
    (dense,) = [b for b in g.blocks if b.type == "Dense"]
    (full,) = g.chain([("Conv2D", {"filters": 2, "kernel": 3, "padding": "full"})], after=concat)
    add = g.add_block("Add")
    g.connect(full.id, add.id)
    g.chain([("Conv2D", {"filters": 2, "kernel": 3, "padding": "same"})], after=full.id)
    g.connect(g.blocks[-1].id, add.id)
    _, _, bn = g.chain([("Pooling", {"mode": "global_max"}), ("Dropout", {}),
                           ("BatchNorm", {})], after=add.id)
    g.connect(bn.id, dense.id)
    g.chain([("Flatten", {}), ("Dense", {"units": 3}), ("Output", {"auxiliary": True})],
            after=add.id)
    return g


def test_model_scripts_traces_and_exports_to_onnx():
    onnxruntime = pytest.importorskip("onnxruntime")
    g = every_kind_of_block()
    model, _, _ = assert_matches_analysis(g)
    x = torch.randn(2, 2, 7, 9)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.jit.trace(model, x)(x), expected)
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["image"])
    session = onnxruntime.InferenceSession(buffer.getvalue())
    (result,) = session.run(None, {"image": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(result), expected, rtol=1e-4, atol=1e-5)


def test_initial_kernel_starts_every_filter_and_channel_and_can_stay_frozen():
    g = Graph()
    kernel = [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
    blocks = g.chain([("Input", {"channels": 3, "height": 8, "width": 8}),
                      ("Conv2D", {"filters": 4, "kernel": 3, "padding": "same",
                                  "initial_kernel": kernel, "trainable": False}),
                      ("Flatten", {}), ("Dense", {"units": 2}), ("Output", {})])
    model, _, _ = assert_matches_analysis(g)
    conv = model.blocks[blocks[1].id].conv
    assert torch.equal(conv.weight, torch.tensor(kernel).expand(4, 3, 3, 3))
    assert torch.equal(conv.bias, torch.zeros(4))
    assert not conv.weight.requires_grad
    x = torch.rand(1, 3, 8, 8)
    expected = F.conv2d(x, torch.tensor(kernel).expand(4, 3, 3, 3), padding=1)
    assert torch.allclose(model.activations(x, [blocks[1].id])[blocks[1].id], expected)
    g.set_params(blocks[1].id, {"trainable": True})
    assert build_model(g).blocks[blocks[1].id].conv.weight.requires_grad
