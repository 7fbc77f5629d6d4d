"""analyze(): the numbers of the course notes, receptive fields, memory and diagnostics."""

from __future__ import annotations

import re

import pytest

from cnnstudio.core import registry
from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.summary import format_bytes, memory_summary, render_table, summary_dict
from tests.residual import RESNET18_LEARNABLE, RESNET18_RUNNING_STATISTICS, resnet_graph

MNIST = {"channels": 1, "height": 28, "width": 28}


def course_example() -> Graph:
    g = Graph()
    g.chain([
        ("Input", MNIST),
        ("Conv2D", {"filters": 16, "kernel": 5, "padding": "same", "activation": "relu"}, "CONV1"),
        ("Pooling", {"mode": "max", "pool_size": 2}, "POOL1"),
        ("Conv2D", {"filters": 32, "kernel": 5, "padding": "same", "activation": "relu"}, "CONV2"),
        ("Pooling", {"mode": "max", "pool_size": 2}, "POOL2"),
        ("Flatten", {}),
        ("Dense", {"units": 100, "activation": "relu"}, "FC3"),
        ("Dense", {"units": 10}, "FC4"),
        ("Output", {}),
    ])
    return g


def keras_mnist() -> Graph:
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
    return g


def by_name(graph: Graph, analysis, name: str):
    return analysis.blocks[graph.find(name).id]


def test_course_example_numbers():
    g = course_example()
    a = analyze(g)
    assert a.diagnostics == []
    expected = {
        "CONV1": ((16, 28, 28), 416),
        "POOL1": ((16, 14, 14), 0),
        "CONV2": ((32, 14, 14), 12_832),
        "POOL2": ((32, 7, 7), 0),
        "FC3": ((100,), 156_900),
        "FC4": ((10,), 1_010),
    }
    for name, (shape, params) in expected.items():
        info = by_name(g, a, name)
        assert (info.output_shape, info.params) == (shape, params), name
    assert by_name(g, a, "POOL2").activation_size == 1_568
    assert a.total_params == a.trainable_params == 171_158
    assert a.non_trainable == 0


def test_keras_book_network_numbers():
    g = keras_mnist()
    a = analyze(g)
    assert a.ok and not a.diagnostics
    shapes = [a.blocks[b].output_shape for b in a.order[1:-1]]
    assert shapes == [(32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 5, 5), (64, 3, 3),
                      (576,), (64,), (10,)]
    assert a.total_params == 93_322


def test_macs_and_receptive_field():
    g = keras_mnist()
    a = analyze(g)
    infos = [a.blocks[b] for b in a.order]
    conv1, pool1, conv2 = infos[1], infos[2], infos[3]
    assert conv1.macs == 26 * 26 * 32 * 3 * 3 * 1
    assert conv2.macs == 11 * 11 * 64 * 3 * 3 * 32
    assert infos[7].macs == 576 * 64
    assert a.macs == sum(i.macs for i in infos)
    # r_out = r_in + (k - 1)·j_in ; j_out = j_in·s
    assert conv1.receptive_field == (3, 3) and conv1.jump == (1, 1)
    assert pool1.receptive_field == (4, 4) and pool1.jump == (2, 2)
    assert conv2.receptive_field == (8, 8)
    assert infos[4].receptive_field == (10, 10) and infos[4].jump == (4, 4)
    assert infos[5].receptive_field == (18, 18)


def test_dilation_widens_receptive_field_and_shrinks_output():
    g = Graph()
    g.chain([("Input", MNIST), ("Conv2D", {"filters": 4, "kernel": 3, "dilation": 2})])
    a = analyze(g)
    conv = a.blocks[a.order[1]]
    assert conv.output_shape == (4, 24, 24)
    assert conv.receptive_field == (5, 5)


@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected",
    [
        (28, 5, 1, "same", 28),
        (28, 3, 2, "same", 14),
        (27, 3, 2, "same", 14),  # ceil(27/2)
        (7, 3, 3, "same", 3),
        (28, 5, 1, "valid", 24),
        (28, 5, 2, "valid", 12),
        (28, 5, 1, "full", 32),
        (5, 3, 2, "full", 4),
        (28, 5, 1, [2, 2], 28),
        (28, 5, 1, [1, 1], 26),
    ],
)
def test_conv_padding_modes(size, kernel, stride, padding, expected):
    g = Graph()
    g.chain([("Input", {"channels": 3, "height": size, "width": size}),
             ("Conv2D", {"filters": 8, "kernel": kernel, "stride": stride, "padding": padding})])
    a = analyze(g)
    assert a.blocks[a.order[1]].output_shape == (8, expected, expected)
    assert a.blocks[a.order[1]].params == (kernel * kernel * 3 + 1) * 8


def test_non_square_kernel_and_groups():
    g = Graph()
    g.chain([("Input", {"channels": 8, "height": 17, "width": 17}),
             ("Conv2D", {"filters": 16, "kernel": [1, 7], "padding": "same", "groups": 4,
                         "bias": False})])
    a = analyze(g)
    info = a.blocks[a.order[1]]
    assert info.output_shape == (16, 17, 17)
    assert info.params == 1 * 7 * (8 // 4) * 16


def test_batchnorm_counts_running_statistics_apart_and_frozen_blocks():
    g = Graph()
    blocks = g.chain([("Input", MNIST), ("Conv2D", {"filters": 8, "kernel": 3}),
                      ("BatchNorm", {}), ("Flatten", {}), ("Dense", {"units": 10}),
                      ("Output", {})])
    a = analyze(g)
    bn = a.blocks[blocks[2].id]
    assert (bn.params, bn.buffers, bn.trainable, bn.non_trainable) == (16, 16, 16, 16)
    assert bn.total_params == 32
    learnable = 80 + 16 + (26 * 26 * 8 + 1) * 10
    assert a.learnable_params == learnable
    assert a.total_params == learnable + 16 == a.trainable_params + a.non_trainable
    assert a.non_trainable == 16
    g.set_params(blocks[1].id, {"trainable": False})
    a2 = analyze(g)
    assert a2.total_params == a.total_params
    assert a2.learnable_params == a.learnable_params
    assert a2.trainable_params == a.trainable_params - 80
    assert a2.non_trainable == 16 + 80


def test_resnet18_totals_add_up_as_the_keras_book_counts():
    """Total = trainable + non-trainable; BatchNorm running statistics are non-trainable."""
    graph = resnet_graph()
    a = analyze(graph)
    assert a.ok, a.diagnostics[:3]
    assert a.learnable_params == RESNET18_LEARNABLE == 11_689_512
    assert a.trainable_params == 11_689_512
    assert a.non_trainable == RESNET18_RUNNING_STATISTICS == 9_600
    assert a.total_params == 11_699_112 == a.trainable_params + a.non_trainable
    assert sum(info.total_params for info in a.blocks.values()) == a.total_params

    data = summary_dict(graph, a)
    assert (data["total_params"], data["trainable_params"], data["non_trainable"],
            data["learnable_params"]) == (11_699_112, 11_689_512, 9_600, 11_689_512)
    assert sum(row["params"] for row in data["layers"]) == data["total_params"]
    text = render_table(graph, a)
    assert "Total parameters:      11,699,112\n  trainable:           11,689,512\n" in text
    assert "  non-trainable:       9,600  (BatchNorm" in text
    assert "PyTorch parameters(): 11,689,512" in text


def test_networks_without_batchnorm_keep_their_counts():
    assert analyze(course_example()).total_params == 171_158
    a = analyze(keras_mnist())
    assert a.total_params == a.learnable_params == 93_322
    assert "PyTorch parameters()" not in render_table(keras_mnist(), a)


def test_training_memory_parts():
    a = analyze(keras_mnist())
    m = a.memory(64, "adam")
    assert m.weights == 4 * 93_322
    assert m.gradients == 4 * 93_322
    assert m.optimizer_state == 2 * 4 * 93_322
    assert m.activations == sum(i.saved.at(64) for i in a.blocks.values())
    assert m.total == m.weights + m.gradients + m.optimizer_state + m.activations
    assert a.memory(128).activations == 2 * m.activations  # no BatchNorm: all per sample
    assert a.memory(64, "sgd").optimizer_state == 4 * 93_322


def test_memory_sizes_are_labelled_in_binary_units():
    """format_bytes divides by 1024, so it says KiB, MiB and GiB (a 'MB' would be 10⁶ bytes)."""
    assert [format_bytes(n) for n in (512, 1536, 13_266_944, 5 * 2**30)] == [
        "512 B", "1.5 KiB", "12.7 MiB", "5.0 GiB"]
    text = memory_summary(analyze(keras_mnist()).memory(64, "adam"), "adam")
    assert "MiB" in text and not re.search(r"\d [KMG]B\b", text), text


def test_weights_memory_counts_batchnorm_running_statistics():
    a = analyze(resnet_graph())
    m = a.memory(8, "sgd")
    assert m.weights == 4 * 11_699_112
    assert m.gradients == m.optimizer_state == 4 * 11_689_512


def test_saved_activations_of_the_keras_book_network_by_hand():
    """Conv keeps its input; ReLU its output, which the max pooling also keeps (stored once)
    with its int64 indices; Dense keeps its input, the Flatten view of the last ReLU's output.
    The logits are kept by nobody."""
    a = analyze(keras_mnist())
    floats = (1 * 28 * 28          # conv1's input, the image
              + 32 * 26 * 26       # relu1 output = pool1 input
              + 32 * 13 * 13       # pool1 output = conv2 input
              + 64 * 11 * 11       # relu2 output = pool2 input
              + 64 * 5 * 5         # pool2 output = conv3 input
              + 64 * 3 * 3         # relu3 output = flatten = fc1 input
              + 64)                # fc1's relu output = fc2 input
    indices = 32 * 13 * 13 + 64 * 5 * 5
    assert a.memory(64).activations == 64 * (4 * floats + 8 * indices)
    assert a.memory(64).activations == 13_266_944  # 12.65 MiB, as autograd keeps them


def test_a_tensor_kept_by_two_blocks_counts_once():
    """A ReLU's output read by a convolution and a residual Add: kept by ReLU and the conv,
    stored once."""
    g = Graph()
    blocks = g.chain([("Input", {"channels": 3, "height": 8, "width": 8}),
                      ("Conv2D", {"filters": 4, "kernel": 3, "padding": "same", "bias": False}),
                      ("Activation", {"function": "relu"}),
                      ("Conv2D", {"filters": 4, "kernel": 3, "padding": "same"})])
    add = g.add_block("Add")
    g.connect(blocks[3].id, add.id)
    g.connect(blocks[2].id, add.id)
    g.chain([("Flatten", {}), ("Dense", {"units": 2}), ("Output", {})], after=add.id)
    a = analyze(g)
    assert a.ok
    relu, conv2 = a.blocks[blocks[2].id], a.blocks[blocks[3].id]
    assert relu.saved.per_sample == 4 * 4 * 8 * 8
    assert conv2.saved.per_sample == 0  # its input is the ReLU's output, already counted
    assert a.blocks[add.id].saved.per_sample == 0
    dense = a.blocks[a.order[-2]]
    assert dense.saved.per_sample == 4 * 4 * 8 * 8  # the Add's output, seen through Flatten


def test_a_frozen_start_keeps_nothing_for_backward():
    """Blocks before the first trainable weight need no gradient, so autograd keeps nothing
    there; BatchNorm adds its per-channel statistics once per batch."""
    g = Graph()
    blocks = g.chain([("Input", MNIST),
                      ("Conv2D", {"filters": 8, "kernel": 3, "activation": "relu",
                                  "trainable": False}),
                      ("BatchNorm", {"trainable": False}),
                      ("Pooling", {"pool_size": 2}),
                      ("Conv2D", {"filters": 8, "kernel": 3}),
                      ("BatchNorm", {}),
                      ("Flatten", {}), ("Dense", {"units": 10}), ("Output", {})])
    a = analyze(g)
    assert [a.blocks[b.id].saved.at(64) for b in blocks[:4]] == [0, 0, 0, 0]
    conv, norm = a.blocks[blocks[4].id], a.blocks[blocks[5].id]
    assert conv.saved.per_sample == 4 * 8 * 13 * 13
    assert norm.saved.per_sample == 4 * 8 * 11 * 11 and norm.saved.per_batch == 4 * 2 * 8
    assert a.memory(64).activations - a.memory(32).activations == 32 * sum(
        i.saved.per_sample for i in a.blocks.values())


def block_errors(analysis):
    """Errors pinned to a block (these small graphs often lack an Output on purpose)."""
    return [d for d in analysis.errors if d.block_id is not None]


def test_kernel_does_not_fit_message_names_numbers_and_offers_same_padding():
    g = Graph()
    blocks = g.chain([("Input", {"channels": 1, "height": 8, "width": 8}),
                      ("Pooling", {"pool_size": 4}),
                      ("Conv2D", {"filters": 4, "kernel": 3}, "conv3"),
                      ("Flatten", {}), ("Dense", {}), ("Output", {})])
    a = analyze(g)
    (diag,) = a.errors
    assert diag.block_id == blocks[2].id
    assert diag.message == "Conv2D 'conv3': the 3×3 kernel does not fit the 2×2 input"
    assert diag.fix == "use padding 'same' or remove a pooling layer"
    assert diag.repair == {"action": "set_param", "param": "padding", "value": "same"}
    # downstream blocks have no shape but no noise diagnostics either
    assert a.blocks[blocks[3].id].output_shape is None
    g.set_params(blocks[2].id, {"padding": "same"})
    assert analyze(g).ok


def test_dense_on_image_suggests_flatten():
    g = Graph()
    blocks = g.chain([("Input", MNIST), ("Dense", {"units": 10}, "fc3"), ("Output", {})])
    (diag,) = analyze(g).errors
    assert diag.block_id == blocks[1].id
    assert diag.message == "Dense 'fc3': Dense needs a flat input but gets 28×28×1"
    assert diag.fix == "insert Flatten before it"
    assert diag.repair == {"action": "insert_before", "type": "Flatten"}


def test_concatenate_spatial_mismatch():
    g = Graph()
    inp = g.add_block("Input", MNIST)
    a_ = g.add_block("Conv2D", {"filters": 4, "kernel": 3, "padding": "same"})
    b_ = g.add_block("Pooling", {})
    cat = g.add_block("Concatenate", name="cat1")
    for src, dst in ((inp, a_), (inp, b_), (a_, cat), (b_, cat)):
        g.connect(src.id, dst.id)
    errors = block_errors(analyze(g))
    assert [d.message for d in errors] == [
        "Concatenate 'cat1': spatial sizes 28×28 and 14×14 differ"
    ]


def test_add_channel_mismatch_offers_1x1_conv():
    g = Graph()
    inp = g.add_block("Input", MNIST)
    a_ = g.add_block("Conv2D", {"filters": 8, "kernel": 3, "padding": "same"})
    add = g.add_block("Add", name="add1")
    g.connect(inp.id, a_.id)
    g.connect(a_.id, add.id)
    g.connect(inp.id, add.id)
    (diag,) = block_errors(analyze(g))
    assert diag.message == "Add 'add1': input shapes 28×28×8 and 28×28×1 differ"
    assert "1×1 Conv2D with 8 filters" in diag.fix
    assert diag.repair["type"] == "Conv2D" and diag.repair["params"]["filters"] == 8
    assert diag.repair["input_index"] == 1


def test_graph_level_diagnostics():
    empty = analyze(Graph())
    assert {d.code for d in empty.errors} == {"no_input", "no_output"}
    g = Graph()
    g.add_block("Input", MNIST)
    conv = g.add_block("Conv2D", {}, name="lonely")
    a = analyze(g)
    codes = {(d.code, d.block_id) for d in a.diagnostics}
    assert ("missing_input", conv.id) in codes
    assert ("no_output", None) in codes
    unused = [d for d in a.warnings if d.code == "unused_output"]
    assert {d.block_id for d in unused} == {conv.id, g.blocks[0].id}


def test_cycle_is_refused_by_connect_and_reported_by_analysis():
    from cnnstudio.core.graph import Edge, GraphError

    g = Graph()
    inp = g.add_block("Input", MNIST)
    cat = g.add_block("Concatenate")
    conv = g.add_block("Conv2D", {"padding": "same", "filters": 1})
    act = g.add_block("Activation")
    g.connect(inp.id, cat.id)
    g.connect(cat.id, conv.id)
    g.connect(conv.id, act.id)
    with pytest.raises(GraphError, match="would make a cycle"):
        g.connect(act.id, cat.id)
    g._add_edge(Edge(act.id, cat.id, 1))  # force it, as a damaged file might hold it
    a = analyze(g)
    assert {d.block_id for d in a.errors if d.code == "cycle"} == {cat.id, conv.id, act.id}
    assert a.blocks[conv.id].output_shape is None


def test_invalid_param_values_become_diagnostics():
    g = Graph()
    blocks = g.chain([("Input", MNIST), ("Conv2D", {}, "conv1")])
    blocks[1].params["kernel"] = [0, 3]  # as a damaged file might hold
    (diag,) = block_errors(analyze(g))
    assert diag.code == "invalid_param"
    assert diag.message == "Conv2D 'conv1', kernel: expected two positive integers (at most 255), got [0, 3]"


def test_main_and_auxiliary_outputs():
    g = keras_mnist()
    flatten = next(b for b in g.blocks if b.type == "Flatten")
    aux = g.chain([("Dense", {"units": 10}), ("Output", {"auxiliary": True, "loss_weight": 0.3})],
                  after=flatten.id)
    assert analyze(g).ok
    g.set_params(aux[1].id, {"auxiliary": False})
    assert "extra_main_output" in {d.code for d in analyze(g).errors}


def test_output_needs_flat_input():
    g = Graph()
    g.chain([("Input", MNIST), ("Output", {})])
    (diag,) = analyze(g).errors
    assert "flat vector" in diag.message and "Dense" in diag.fix


def test_groups_must_divide_channels():
    g = Graph()
    g.chain([("Input", {"channels": 3, "height": 8, "width": 8}),
             ("Conv2D", {"filters": 8, "groups": 2, "padding": "same"}, "g")])
    (diag,) = block_errors(analyze(g))
    assert "groups = 2 must divide both the 3 input channels and the 8 filters" in diag.message


def test_analyze_never_raises_on_garbage():
    g = keras_mnist()
    g.blocks[3].params["filters"] = "many"
    g.blocks[4].params["nonsense"] = 1
    a = analyze(g)
    assert not a.ok
    assert all(d.message for d in a.diagnostics)


def test_initial_kernel_must_match_the_kernel_size():
    g = keras_mnist()
    conv = next(b for b in g.blocks if b.type == "Conv2D")
    g.set_params(conv.id, {"initial_kernel": [[1, 0, -1]] * 3})
    assert analyze(g).ok
    g.set_params(conv.id, {"initial_kernel": [[1, 0, -1]] * 2})
    (diag,) = analyze(g).errors
    assert diag.block_id == conv.id
    assert diag.message == "Conv2D 'conv1': the initial kernel is 2×3 but the kernel size is 3×3"
    assert diag.fix == "set the kernel size to 2×3, or clear the initial kernel"
    assert diag.repair == {"action": "set_param", "param": "kernel", "value": [2, 3]}
    g.set_params(conv.id, {"initial_kernel": None})
    assert analyze(g).ok


# -- the blocks of modern networks (issue 13) --------------------------------------------------


def pooled(size: int, params: dict, channels: int = 4):
    g = Graph()
    _, pool = g.chain([("Input", {"channels": channels, "height": size, "width": size}),
                       ("Pooling", params, "pool")])
    return analyze(g).blocks[pool.id]


@pytest.mark.parametrize(
    "size, params, expected",
    [
        (112, {"pool_size": 3, "stride": 2, "padding": [1, 1]}, 56),  # ResNet's stem
        (111, {"pool_size": 3, "stride": 2, "ceil_mode": True}, 55),  # SqueezeNet
        (112, {"pool_size": 3, "stride": 2}, 55),
        (112, {"pool_size": 3, "stride": 2, "ceil_mode": True}, 56),  # one partial window more
        (5, {"pool_size": 2, "stride": 2, "padding": [1, 1], "ceil_mode": True}, 3),  # not 4:
        # that window would start in the right padding
        (9, {"pool_size": 2, "padding": "same", "ceil_mode": True}, 5),  # ignored for 'same'
        (2, {"pool_size": 3, "stride": 2, "ceil_mode": True}, 1),  # wider than its input
        (14, {"mode": "average", "pool_size": 3, "stride": 1, "padding": [1, 1]}, 14),
    ],
)
def test_pooling_padding_and_ceil_mode(size, params, expected):
    info = pooled(size, params)
    assert info.output_shape == (4, expected, expected)
    assert (info.params, info.macs) == (0, 0)


@pytest.mark.parametrize("mode", ["adaptive_average", "adaptive_max"])
@pytest.mark.parametrize("size, window, stride", [(14, 2, 2), (3, 1, 1), (15, 3, 2)])
def test_adaptive_pooling_gives_its_output_size_whatever_the_input(mode, size, window, stride):
    info = pooled(size, {"mode": mode, "output_size": [7, 7], "pool_size": 5})
    assert info.output_shape == (4, 7, 7)  # an image still, not a vector
    assert (info.params, info.macs) == (0, 0)
    # the receptive field treats it as windows of ⌈in/out⌉, ⌊in/out⌋ apart
    assert info.receptive_field == (window, window) and info.jump == (stride, stride)


def test_pooling_refuses_full_padding_and_more_than_half_a_window():
    full = block_errors(analyze(pooled_graph({"pool_size": 3, "padding": "full"})))
    assert "no 'full' padding" in full[0].message
    assert full[0].repair == {"action": "set_param", "param": "padding", "value": "same"}
    (wide,) = block_errors(analyze(pooled_graph({"pool_size": [3, 5], "padding": [2, 2]})))
    assert wide.message == ("Pooling 'pool': padding 2×2 is more than half the 3×5 pooling "
                            "window (a window could then see padding only)")
    assert wide.fix == "pad at most 1×2"
    assert wide.repair == {"action": "set_param", "param": "padding", "value": [1, 2]}


def pooled_graph(params: dict) -> Graph:
    g = Graph()
    g.chain([("Input", {"channels": 2, "height": 9, "width": 9}), ("Pooling", params, "pool")])
    return g


def test_depthwise_conv_takes_its_filters_and_groups_from_the_input_channels():
    g = Graph()
    _, conv = g.chain([("Input", {"channels": 24, "height": 10, "width": 10}),
                       ("Conv2D", {"depthwise": True, "filters": 5, "groups": 5, "kernel": 3,
                                   "stride": 2, "padding": "same"})])
    info = analyze(g).blocks[conv.id]
    assert info.output_shape == (24, 5, 5)
    assert info.params == 3 * 3 * 24 + 24
    assert info.macs == 5 * 5 * 24 * 3 * 3
    assert info.receptive_field == (3, 3)
    declared = registry.get("Conv2D")
    assert set(declared.unused(declared.normalize(conv.params)[0])) == {"filters", "groups"}
    assert declared.unused(declared.defaults()) == {}


def se_graph(scale_shape: tuple[int, ...], image_port: int = 1) -> tuple[Graph, str]:
    """An image 6×6×8 and a second input of `scale_shape` (made by a Dense or a Conv2D)."""
    g = Graph()
    _, image = g.chain([("Input", {"channels": 3, "height": 6, "width": 6}),
                        ("Conv2D", {"filters": 8, "kernel": 1})])
    if len(scale_shape) == 1:
        _, scale = g.chain([("Pooling", {"mode": "global_average"}),
                            ("Dense", {"units": scale_shape[0], "activation": "sigmoid"})],
                           after=image.id)
    else:
        _, scale = g.chain([("Pooling", {"mode": "adaptive_average"}),
                            ("Conv2D", {"filters": scale_shape[0], "kernel": 1})],
                           after=image.id)
    multiply = g.add_block("Multiply", name="se")
    g.connect(image.id if image_port == 0 else scale.id, multiply.id)
    g.connect(scale.id if image_port == 0 else image.id, multiply.id)
    return g, multiply.id


@pytest.mark.parametrize("scale_shape", [(8,), (8, 1, 1)])
@pytest.mark.parametrize("image_port", [0, 1])
def test_multiply_scales_each_channel_of_the_image(scale_shape, image_port):
    g, multiply = se_graph(scale_shape, image_port)
    a = analyze(g)
    assert block_errors(a) == []
    assert a.blocks[multiply].output_shape == (8, 6, 6)
    assert (a.blocks[multiply].params, a.blocks[multiply].macs) == (0, 0)


def test_multiply_says_how_many_channel_weights_the_image_needs():
    g, _ = se_graph((5,))
    (diag,) = block_errors(analyze(g))
    assert diag.message == ("Multiply 'se': input shapes a vector of 5 values and 6×6×8 do not "
                            "match: an image of 8 channels needs 8 channel weights, not a "
                            "vector of 5 values")
    assert diag.fix == "give the scale branch 8 values (its last Dense layer 8 units)"
    with pytest.raises(GraphError, match="Multiply 'se' already has its 2 inputs; remove one"):
        g.connect(g.input_block().id, g.find("se").id)  # two factors at most
