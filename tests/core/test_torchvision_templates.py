"""The five templates built after torchvision: counts, layers and names as torchvision has them.

Pure core: the numbers torchvision reports are written out here; tests/train/
test_torchvision_templates.py checks them (and the outputs) against the real torchvision models.
"""

from __future__ import annotations

import re

import pytest

from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.templates import build_template, get_template
from cnnstudio.core.templates.torchvision_nets import SQUEEZENET_MIN_SIDE, TEMPLATES

IDS = [template.id for template in TEMPLATES]
# torchvision's sum(p.numel() for p in model.parameters()) and its GMACs at 3×224×224
# (the _ops of the IMAGENET1K_V1 weights), 1000 classes.
TORCHVISION_COUNTS = {
    "resnet18": (11_689_512, 1.814),
    "resnet50": (25_557_032, 4.089),
    "mobilenet-v2": (3_504_872, 0.301),
    "squeezenet1.1": (1_235_496, 0.349),
    "vgg11-bn": (132_868_840, 7.609),
}
# every convolution, BatchNorm and Linear of torchvision's models
WEIGHTED_MODULES = {"resnet18": 41, "resnet50": 107, "mobilenet-v2": 105, "squeezenet1.1": 26,
                    "vgg11-bn": 19}


def of_type(graph: Graph, type_id: str) -> list[Block]:
    return [b for b in graph.blocks if b.type == type_id]


def named(graph: Graph, name: str) -> Block:
    block = graph.find(name)
    assert block is not None, f"no block named {name!r}"
    return block


def shape(graph: Graph, analysis: Analysis, name: str) -> tuple[int, ...]:
    return analysis.blocks[named(graph, name).id].output_shape  # type: ignore[return-value]


def follows(graph: Graph, block: Block) -> list[Block]:
    return [graph.block(b) for b in graph.outputs_of(block.id)]


@pytest.mark.parametrize("template_id", IDS)
def test_parameters_and_macs_are_torchvisions(template_id):
    graph = build_template(template_id)
    analysis = analyze(graph)
    parameters, gmacs = TORCHVISION_COUNTS[template_id]
    assert analysis.trainable_params == analysis.learnable_params == parameters
    assert round(analysis.macs / 1e9, 3) == gmacs
    assert f"{parameters:,}" in get_template(template_id).description
    template = get_template(template_id)
    assert (template.default_input, template.default_classes) == ((3, 224, 224), 1000)
    assert template.training["optimizer"] == "sgd"


@pytest.mark.parametrize("template_id", IDS)
def test_blocks_are_named_after_torchvisions_modules(template_id):
    graph = build_template(template_id)
    weighted = [b for b in graph.blocks if b.type in ("Conv2D", "BatchNorm", "Dense")]
    assert len(weighted) == WEIGHTED_MODULES[template_id]
    for block in weighted:
        assert re.fullmatch(r"[a-z]+[0-9]*(\.[a-z0-9_]+)*", block.name), block.name
    for block in graph.blocks:
        assert block.id == re.sub(r"[^A-Za-z0-9_]", "_", block.name), block.name


def test_resnet18_is_torchvisions_layer_for_layer():
    graph = build_template("resnet18")
    analysis = analyze(graph)
    conv1 = named(graph, "conv1").params
    assert (conv1["kernel"], conv1["stride"], conv1["padding"], conv1["bias"]) == (
        [7, 7], [2, 2], [3, 3], False)
    maxpool = named(graph, "maxpool").params
    assert (maxpool["mode"], maxpool["pool_size"], maxpool["stride"], maxpool["padding"]) == (
        "max", [3, 3], [2, 2], [1, 1])
    assert all(not b.params["bias"] for b in of_type(graph, "Conv2D"))
    assert all((b.params["eps"], b.params["momentum"]) == (1e-5, 0.1)
               for b in of_type(graph, "BatchNorm"))
    assert [shape(graph, analysis, n) for n in ("maxpool", "layer1.1.relu_2", "layer2.1.relu_2",
                                                "layer3.1.relu_2", "layer4.1.relu_2", "flatten",
                                                "fc")] == [
        (64, 56, 56), (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7), (512,), (1000,)]
    assert len(of_type(graph, "Add")) == 8
    assert graph.find("layer1.0.downsample.0") is None  # 64 → 64, stride 1: identity shortcut
    add = named(graph, "layer2.0.add")
    assert [graph.block(b).name for b in graph.inputs_of(add.id)] == [
        "layer2.0.bn2", "layer2.0.downsample.1"]
    assert [b.name for b in follows(graph, add)] == ["layer2.0.relu_2"]
    identity = named(graph, "layer1.1.add")
    assert [graph.block(b).name for b in graph.inputs_of(identity.id)] == [
        "layer1.1.bn2", "layer1.0.relu_2"]


def test_resnet50_bottlenecks_widen_four_times_with_the_stride_on_the_3x3():
    graph = build_template("resnet50")
    analysis = analyze(graph)
    assert len(of_type(graph, "Add")) == 3 + 4 + 6 + 3
    assert named(graph, "layer1.0.downsample.0").params["stride"] == [1, 1]  # 64 → 256
    assert named(graph, "layer2.0.conv1").params["stride"] == [1, 1]
    assert named(graph, "layer2.0.conv2").params["stride"] == [2, 2]
    assert shape(graph, analysis, "layer2.0.conv2") == (128, 28, 28)
    assert shape(graph, analysis, "layer2.0.conv3") == (512, 28, 28)
    assert shape(graph, analysis, "layer4.2.relu_3") == (2048, 7, 7)
    assert shape(graph, analysis, "flatten") == (2048,)


def test_mobilenet_v2_inverted_residuals_have_a_linear_bottleneck():
    graph = build_template("mobilenet-v2")
    analysis = analyze(graph)
    depthwise = [b for b in of_type(graph, "Conv2D") if b.params.get("depthwise")]
    assert len(depthwise) == 17
    for block in depthwise:
        channels = analysis.blocks[block.id].input_shapes[0][0]
        assert analysis.blocks[block.id].output_shape[0] == channels
        assert block.params["kernel"] == [3, 3] and block.params["padding"] == [1, 1]
    activations = of_type(graph, "Activation")
    assert len(activations) == 35 and {b.params["function"] for b in activations} == {"relu6"}
    # the projection's BatchNorm feeds an Add or the next block, never an activation
    for index in range(1, 18):
        projection = [b for b in graph.blocks if b.name.startswith(f"features.{index}.conv.")
                      and b.type == "BatchNorm"][-1]
        assert all(b.type != "Activation" for b in follows(graph, projection))
    assert len(of_type(graph, "Add")) == 10
    assert named(graph, "features.2.conv.1.0").params["stride"] == [2, 2]
    assert shape(graph, analysis, "features.17.conv.3") == (320, 7, 7)
    assert shape(graph, analysis, "features.18.2") == (1280, 7, 7)
    assert named(graph, "classifier.0").params["rate"] == 0.2
    assert shape(graph, analysis, "classifier.1") == (1000,)


def test_squeezenet_has_fire_modules_ceil_pooling_and_a_convolution_as_classifier():
    graph = build_template("squeezenet1.1")
    analysis = analyze(graph)
    pools = [b for b in of_type(graph, "Pooling") if b.params["mode"] == "max"]
    assert [b.name for b in pools] == ["features.2", "features.5", "features.8"]
    assert all(b.params["ceil_mode"] and b.params["padding"] == "valid" for b in pools)
    assert [shape(graph, analysis, b.name) for b in pools] == [
        (64, 55, 55), (128, 27, 27), (256, 13, 13)]
    small = build_template("squeezenet1.1", (3, 50, 50))  # 24 → 12 → 6 → 3 rounding up
    assert [shape(small, analyze(small), b.name)[1] for b in pools] == [12, 6, 3]
    fires = of_type(graph, "Concatenate")
    assert len(fires) == 8
    for fire in fires:
        module = fire.name.removesuffix(".cat")
        assert [graph.block(b).name for b in graph.inputs_of(fire.id)] == [
            f"{module}.expand1x1", f"{module}.expand3x3"]
    assert all(b.params["activation"] == "relu" for b in of_type(graph, "Conv2D"))
    assert not of_type(graph, "Dense")
    final = named(graph, "classifier.1")
    assert (final.params["filters"], final.params["kernel"]) == (1000, [1, 1])
    assert named(graph, "classifier.0").params["rate"] == 0.5
    assert shape(graph, analysis, "classifier.3") == (1000, 1, 1)
    assert shape(graph, analysis, "flatten") == (1000,)


def test_vgg11_bn_normalises_every_convolution_and_pools_to_7x7():
    graph = build_template("vgg11-bn")
    analysis = analyze(graph)
    convs = of_type(graph, "Conv2D")
    assert len(convs) == 8 and all(b.params["bias"] for b in convs)
    for conv in convs:
        (bn,) = follows(graph, conv)
        (relu,) = follows(graph, bn)
        assert (bn.type, relu.type, relu.params["function"]) == ("BatchNorm", "Activation",
                                                                  "relu")
    assert shape(graph, analysis, "features.28") == (512, 7, 7)
    avgpool = named(graph, "avgpool").params
    assert (avgpool["mode"], avgpool["output_size"]) == ("adaptive_average", [7, 7])
    assert shape(graph, analysis, "flatten") == (25_088,)
    assert [named(graph, f"classifier.{i}").type for i in range(7) if graph.find(
        f"classifier.{i}")] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]


@pytest.mark.parametrize("template_id", IDS)
@pytest.mark.parametrize("size", [(3, 32, 32), (1, 28, 28), (3, 64, 48)],
                         ids=lambda s: "x".join(map(str, s)))
def test_smaller_images_and_other_classes_build_cleanly(template_id, size):
    graph = build_template(template_id, size, 10)
    analysis = analyze(graph)
    assert [d.message for d in analysis.diagnostics] == []
    assert analysis.blocks[graph.find("output").id].input_shapes == ((10,),)


def test_vgg11_bn_classifier_is_the_same_at_every_size():
    """The adaptive pooling keeps the Dense layers' shapes, so ImageNet weights fit them."""
    for size in ((3, 224, 224), (3, 32, 32), (3, 28, 28)):
        graph = build_template("vgg11-bn", size, 1000)
        assert shape(graph, analyze(graph), "flatten") == (25_088,)


def test_squeezenet_refuses_images_too_small_for_its_third_pooling():
    """torchvision's squeezenet1_1 runs from 17×17 up; at 16×16 PyTorch reports the third
    pooling's output as too small, and so does the analysis, with the block's name."""
    fits = analyze(build_template("squeezenet1.1", (3, SQUEEZENET_MIN_SIDE, SQUEEZENET_MIN_SIDE)))
    assert fits.diagnostics == []
    small = SQUEEZENET_MIN_SIDE - 1
    analysis = analyze(build_template("squeezenet1.1", (3, small, small)))
    assert analysis.diagnostics
    assert "features.8" in analysis.diagnostics[0].message
    side = f"{SQUEEZENET_MIN_SIDE}×{SQUEEZENET_MIN_SIDE}"
    assert side in get_template("squeezenet1.1").description
