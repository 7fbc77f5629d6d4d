"""ONNX files into CNN Studio graphs: torchvision's networks, CNN Studio's own exports, a network
written node by node with onnx.helper, the opsets at both ends, and every refusal.

Each import is checked by running it: the imported GraphModel (with the imported weights) must
give what the original gives, in PyTorch or in onnxruntime.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.outputs import BINARY, PROBABILITIES, output_kind
from cnnstudio.core.project import load_project
from cnnstudio.importers import ImportRefused, ImportResult, from_onnx, write_import
from cnnstudio.nn.build import GraphModel, build_model
from cnnstudio.nn.export import LoadedRun, NormalizedModel, export_onnx, export_run, load_run
from tests.nn.test_export import make_run, zoo_graph

# trainable parameters of torchvision's networks (their own count is checked too)
TORCHVISION = {"resnet18": 11_689_512, "mobilenet_v2": 3_504_872, "squeezenet1_1": 1_235_496}
IMAGE = (3, 224, 224)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def torchvision_net(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(torchvision.models, name)(weights=None).eval()


def export_module(module: torch.nn.Module, path: Path, shape: tuple[int, ...] = IMAGE, *,
                  opset: int = 17) -> Path:
    """The legacy (TorchScript) exporter; PRESERVE keeps BatchNorm apart from the convolution
    before it (EVAL would fold it into the weights, and the parameter count would change)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, *shape),), str(path), dynamo=False,
                          opset_version=opset, training=torch.onnx.TrainingMode.PRESERVE,
                          input_names=["image"], output_names=["scores"],
                          dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}})
    return path


def imported_model(result: ImportResult) -> GraphModel:
    model = build_model(result.graph).eval()
    model.load_state_dict(result.state, strict=True)
    return model


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# -- torchvision ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_networks_import_with_their_weights(name, tmp_path):
    original = torchvision_net(name)
    result = from_onnx(export_module(original, tmp_path / f"{name}.onnx"))
    model = imported_model(result)
    assert trainable(model) == trainable(original) == TORCHVISION[name]
    assert analyze(result.graph).trainable_params == TORCHVISION[name]
    x = torch.randn(2, *IMAGE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = original(x), model(x)
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()
    # blocks are named after the torch modules the exporter's node names hold ("layer1.0.conv1")
    names = {block.name for block in result.graph.blocks}
    modules = {path for path, module in original.named_modules()
               if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))}
    assert modules <= names


def test_mobilenet_keeps_its_depthwise_convolutions_and_relu6(tmp_path):
    result = from_onnx(export_module(torchvision_net("mobilenet_v2"), tmp_path / "m.onnx"))
    blocks = result.graph.blocks
    depthwise = [b for b in blocks if b.type == "Conv2D" and b.params.get("depthwise")]
    assert len(depthwise) == 17
    assert sum(b.params.get("function") == "relu6" for b in blocks) == 35
    pools = [b for b in blocks if b.type == "Pooling"]
    assert [p.params["mode"] for p in pools] == ["global_average"]  # GAP + Flatten: one block
    assert not [b for b in blocks if b.type == "Flatten"]


@pytest.mark.parametrize("name", [
    "squeezenet1_1",
    pytest.param("resnet18", marks=pytest.mark.slow),
    pytest.param("mobilenet_v2", marks=pytest.mark.slow),
])
def test_an_import_exports_again_and_onnxruntime_agrees(name, tmp_path):
    original = export_module(torchvision_net(name), tmp_path / "original.onnx")
    result = from_onnx(original)
    channels = IMAGE[0]
    run = LoadedRun(tmp_path / "run", result.project(), imported_model(result),
                    [f"class {i}" for i in range(1000)], [0.0] * channels, [1.0] * channels,
                    IMAGE, output_kind=output_kind(result.graph,
                                                   result.graph.main_output().id).kind)
    ours = export_onnx(run, tmp_path / "again.onnx", benchmark_runs=0).path
    x = np.random.default_rng(2).random((3, *IMAGE), dtype=np.float32)
    scores = run_onnx(original, x)
    want = np.exp(scores - scores.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)  # our export gives probabilities
    got = run_onnx(ours, x)
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(got / want - 1).max() <= 1e-3  # the small probabilities agree as well


@pytest.mark.parametrize("opset", [11, 21])
def test_the_oldest_and_newest_opsets_import(opset, tmp_path):
    original = torchvision_net("squeezenet1_1")
    result = from_onnx(export_module(original, tmp_path / "s.onnx", (3, 96, 96), opset=opset))
    assert f"opset {opset}" in result.notes[0]
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(imported_model(result)(x), original(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize("opset", [11, 21])
def test_every_block_type_imports_at_both_ends_of_the_opsets(opset, tmp_path):
    """The zoo (every block type and the paddings that need care), exported by torch itself."""
    graph = zoo_graph()
    original = build_model(graph).eval()
    shape = analyze(graph).blocks[original.input_id].output_shape
    result = from_onnx(export_module(original, tmp_path / "zoo.onnx", shape, opset=opset))
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(imported_model(result)(x), original(x), atol=1e-5, rtol=0)
    main = set(original.main_path)
    assert analyze(result.graph).learnable_params == sum(
        p.numel() for block_id, layer in original.blocks.items() if block_id in main
        for p in layer.parameters())


# -- CNN Studio's own exports --------------------------------------------------------------


@pytest.mark.parametrize("template", ["course-example", "lenet5", "keras-mnist", "googlenet",
                                      "zoo"])
def test_our_own_onnx_exports_import_back(template, tmp_path):
    source = zoo_graph() if template == "zoo" else template
    run = load_run(make_run(tmp_path / "run", source))
    result = from_onnx(export_onnx(run, tmp_path / "net.onnx", benchmark_runs=0).path)
    model = imported_model(result)
    main = set(run.model.main_path)  # an export holds the main output's path only
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for block_id, layer in run.model.blocks.items() if block_id in main
        for p in layer.parameters())
    x = torch.rand(5, *run.input_shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = NormalizedModel.for_run(run)(x)  # what the exported file gives
        normalised = (x - torch.tensor(run.mean).view(1, -1, 1, 1)) / torch.tensor(
            run.std).view(1, -1, 1, 1)
        got = model(normalised)
    assert torch.allclose(got, want, atol=1e-5, rtol=0)
    assert output_kind(result.graph, result.graph.main_output().id).kind == PROBABILITIES
    assert any(f"{run.mean[0]:.4g}" in note and "std" in note for note in result.notes)


def test_the_course_network_comes_back_block_for_block(tmp_path):
    run = load_run(make_run(tmp_path / "run", "course-example"))
    result = from_onnx(export_run(run.run_dir, "onnx", tmp_path / "net.onnx").path)  # as users do
    blocks = [b for b in result.graph.blocks]
    assert [b.type for b in blocks] == ["Input", "Conv2D", "Pooling", "Conv2D", "Pooling",
                                        "Flatten", "Dense", "Dense", "Activation", "Output"]
    conv = blocks[1].params
    assert (conv["padding"], conv["activation"], conv["filters"]) == ("same", "relu", 16)
    assert blocks[6].params["activation"] == "relu"
    assert blocks[8].params["function"] == "softmax"  # the export's softmax: probabilities


def test_a_two_class_sigmoid_output_comes_back_as_one_unit(tmp_path):
    graph = Graph()
    image = graph.add_block("Input", {"channels": 1, "height": 8, "width": 8}, name="image")
    conv = graph.add_block("Conv2D", {"filters": 4, "activation": "relu"}, name="conv")
    flat = graph.add_block("Flatten", {}, name="flat")
    unit = graph.add_block("Dense", {"units": 1, "activation": "sigmoid"}, name="unit")
    out = graph.add_block("Output", {}, name="output")
    for a, b in ((image, conv), (conv, flat), (flat, unit), (unit, out)):
        graph.connect(a.id, b.id)
    run = load_run(make_run(tmp_path / "run", graph))
    result = from_onnx(export_onnx(run, tmp_path / "net.onnx", benchmark_runs=0).path)
    assert output_kind(result.graph, result.graph.main_output().id).kind == BINARY
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        want = NormalizedModel.for_run(run)(x)[:, 1:]
        got = imported_model(result)((x - run.mean[0]) / run.std[0])
    assert torch.allclose(got, want, atol=1e-6, rtol=0)


def test_an_import_is_written_as_a_project_with_its_weights(tmp_path):
    result = from_onnx(export_module(torchvision_net("squeezenet1_1"), tmp_path / "s.onnx",
                                     (3, 64, 64)))
    project_path, weights_path = write_import(result, tmp_path / "squeeze.cnnproj")
    project = load_project(project_path)
    assert project.weights == weights_path.name
    model = build_model(project.graph)
    model.load_state_dict(torch.load(weights_path, weights_only=True))
    assert trainable(model) == TORCHVISION["squeezenet1_1"]


# -- ONNX written by hand ------------------------------------------------------------------

MEAN, SCALE = np.array([0.4, 0.5, 0.6], np.float32), np.array([2.0, 4.0, 5.0], np.float32)


def handmade(path: Path, opset: int = 17) -> Path:
    """Operators as other exporters write them: a normalisation in front, Pad → Conv, a
    depthwise Conv, Clip(0, 6), x·sigmoid(x), squeeze-and-excitation with HardSigmoid,
    HardSwish, LRN, ceil-mode max pooling, 'same' average pooling that leaves its padding out,
    a flatten whose target shape is computed, MatMul + Add, Dropout, Gemm with transB = 0 and
    alpha, Softmax."""
    rng = np.random.default_rng(0)
    inits = []

    def weight(name: str, *shape: int, scale: float = 0.3) -> str:
        inits.append(numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32),
                                             name))
        return name

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    n = helper.make_node
    nodes = [
        n("Sub", ["x", const("mean", MEAN.reshape(1, 3, 1, 1))], ["xs"]),
        n("Mul", ["xs", const("scale", SCALE.reshape(1, 3, 1, 1))], ["xn"]),
        n("Pad", ["xn", const("pads", np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))], ["xp"],
          name="pad"),
        n("Conv", ["xp", weight("w1", 8, 3, 3, 3), weight("b1", 8)], ["c1"], name="stem",
          strides=[2, 2]),
        n("BatchNormalization", ["c1", weight("g", 8), weight("be", 8), weight("mu", 8),
                                 const("var", np.full(8, 0.7, np.float32))], ["bn"],
          name="bn", epsilon=1e-3, momentum=0.99),
        n("Relu", ["bn"], ["r1"], name="relu"),
        n("Conv", ["r1", weight("w2", 8, 1, 3, 3)], ["dw"], name="depthwise", group=8,
          pads=[1, 1, 1, 1]),
        n("Clip", ["dw", const("lo", np.float32(0)), const("hi", np.float32(6))], ["r6"],
          name="relu6"),
        n("Sigmoid", ["r6"], ["sg"]),
        n("Mul", ["r6", "sg"], ["silu"], name="silu"),
        n("GlobalAveragePool", ["silu"], ["gap"], name="squeeze"),
        n("Conv", ["gap", weight("w3", 8, 8, 1, 1), weight("b3", 8)], ["se"], name="excite"),
        n("HardSigmoid", ["se"], ["gate"], name="gate", alpha=1 / 6, beta=0.5),
        n("Mul", ["silu", "gate"], ["scaled"], name="scale"),
        n("HardSwish", ["scaled"], ["hswish"], name="hardswish"),
        n("Concat", ["hswish"], ["joined"], name="join", axis=1),  # one input: nothing to do
        n("LRN", ["joined"], ["lrn"], name="lrn", size=3, alpha=1e-3, beta=0.75, bias=2.0),
        n("MaxPool", ["lrn"], ["mp"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2],
          pads=[1, 1, 1, 1], ceil_mode=1),
        n("AveragePool", ["mp"], ["ap"], name="avgpool", kernel_shape=[2, 2],
          pads=[0, 0, 1, 1]),
        n("GlobalAveragePool", ["ap"], ["g2"], name="global"),
        n("Flatten", ["g2"], ["flat1"], name="flatten"),
        n("Shape", ["ap"], ["shape"]),
        n("Gather", ["shape", const("zero", np.int64(0))], ["batch"], axis=0),
        n("Unsqueeze", ["batch", const("axes", np.array([0], np.int64))], ["batch1"]),
        n("Concat", ["batch1", const("rest", np.array([-1], np.int64))], ["target"], axis=0),
        n("Reshape", ["ap", "target"], ["flat2"], name="reshape"),
        n("Concat", ["flat1", "flat2"], ["cat"], name="concat", axis=1),
        n("MatMul", ["cat", weight("w4", 80, 16, scale=0.1)], ["mm"], name="fc1"),
        n("Add", ["mm", weight("b4", 16)], ["d1"], name="fc1_bias"),
        n("LeakyRelu", ["d1"], ["lr"], name="leaky", alpha=0.2),
        n("Dropout", ["lr"], ["dropped"], name="dropout"),
        n("Gemm", ["dropped", weight("w5", 16, 5), weight("b5", 5)], ["logits"], name="fc2",
          alpha=0.5),
        n("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "handmade", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                          ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_operators_written_by_hand_import_and_agree_with_onnxruntime(tmp_path):
    path = handmade(tmp_path / "handmade.onnx")
    result = from_onnx(path)
    x = np.random.default_rng(7).random((4, 3, 8, 8), dtype=np.float32)
    normalised = (x - MEAN.reshape(1, 3, 1, 1)) * SCALE.reshape(1, 3, 1, 1)
    with torch.no_grad():
        got = imported_model(result)(torch.from_numpy(normalised)).numpy()
    assert np.abs(got - run_onnx(path, x)).max() <= 1e-5
    blocks = {b.name: b for b in result.graph.blocks}
    assert blocks["stem"].params["padding"] == "same"  # the Pad node folded in
    assert blocks["depthwise"].params["depthwise"] is True
    assert blocks["silu"].params["function"] == "silu"
    assert blocks["squeeze"].params["mode"] == "adaptive_average"  # read as an image
    assert blocks["global"].params["mode"] == "global_average"  # read flattened
    assert blocks["avgpool"].params["count_padding"] is False
    assert blocks["maxpool"].params["ceil_mode"] is True
    assert blocks["bn"].params == {**blocks["bn"].params, "momentum": 0.01, "eps": 1e-3}
    assert blocks["fc1"].params["bias"] is True  # MatMul + Add: one Dense layer
    assert "reshape" in blocks and blocks["reshape"].type == "Flatten"
    assert blocks["leaky"].params["negative_slope"] == 0.2
    assert blocks["hardswish"].params["function"] == "hardswish"
    assert "dropout" not in blocks and "join" not in blocks  # nothing at prediction
    assert output_kind(result.graph, result.graph.main_output().id).kind == PROBABILITIES
    assert any("(0.4, 0.5, 0.6)" in note for note in result.notes)


# -- refusals ------------------------------------------------------------------------------


def tiny(path: Path, middle: list, opset: int = 17, spatial=(8, 8)) -> Path:
    """x → Conv 'conv' → <middle nodes from 'c' to 'm'> → global pooling → Gemm → scores."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(2, 4)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             *middle,
             helper.make_node("GlobalAveragePool", ["m"], ["g"], name="pool"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["scores"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                      ["N", 3, *spatial])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def constant(name: str, value) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.asarray(value, np.float32)))


@pytest.mark.parametrize("middle, block, params", [
    ([helper.make_node("AveragePool", ["c"], ["m"], name="p", kernel_shape=[3, 3],
                       pads=[1, 1, 1, 1], count_include_pad=1)],
     "p", {"mode": "average", "padding": [1, 1], "count_padding": True}),
    ([helper.make_node("MaxPool", ["c"], ["m"], name="p", kernel_shape=[3, 3], strides=[2, 2],
                       auto_pad="SAME_UPPER")],
     "p", {"mode": "max", "padding": "same", "stride": [2, 2]}),
    ([constant("b", np.arange(4).reshape(1, 4, 1, 1)),
      helper.make_node("Add", ["c", "b"], ["a"], name="bias"),
      helper.make_node("Elu", ["a"], ["m"], name="elu", alpha=0.5)],
     "conv", {"bias": True}),  # a constant added to a convolution is its bias
    ([helper.make_node("ReduceMean", ["c"], ["r"], name="mean", axes=[2, 3], keepdims=1),
      helper.make_node("Selu", ["r"], ["m"], name="selu")],
     "mean", {"mode": "adaptive_average", "output_size": [1, 1]}),
])
def test_more_operators_agree_with_onnxruntime(middle, block, params, tmp_path):
    path = tiny(tmp_path / "net.onnx", middle)
    result = from_onnx(path)
    x = np.random.default_rng(8).normal(size=(3, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        got = imported_model(result)(torch.from_numpy(x)).numpy()
    assert np.abs(got - run_onnx(path, x)).max() <= 1e-5
    found = result.graph.find(block)
    assert found is not None and {k: found.params[k] for k in params} == params


def test_an_unforeseen_failure_is_a_refusal_not_a_traceback(tmp_path, monkeypatch):
    from cnnstudio.importers import onnx_graph

    def broken(self, output_ids):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(onnx_graph.OnnxImporter, "finish", broken)
    path = tiny(tmp_path / "net.onnx", [helper.make_node("Relu", ["c"], ["m"])])
    with pytest.raises(ImportRefused, match=r"cannot import 'net.onnx': the import failed "
                                            r"unexpectedly \(RuntimeError: something nobody "
                                            r"expected\); please report this file"):
        from_onnx(path)


def test_unsupported_operators_are_all_named_and_nothing_is_imported(tmp_path):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    path = tiny(tmp_path / "up.onnx", [
        helper.make_node("Constant", [], ["scales"], value=scales),
        helper.make_node("Resize", ["c", "", "scales"], ["u"], name="upsample"),
        helper.make_node("InstanceNormalization", ["u", "s", "b"], ["n"], name="norm"),
        helper.make_node("GlobalAveragePool", ["n"], ["g0"], name="squeeze"),
        helper.make_node("Transpose", ["g0"], ["m"], name="nhwc", perm=[0, 2, 3, 1]),
    ])
    model = onnx.load(str(path))
    model.graph.initializer.extend([numpy_helper.from_array(np.ones(4, np.float32), "s"),
                                    numpy_helper.from_array(np.zeros(4, np.float32), "b")])
    onnx.save(model, str(path))
    with pytest.raises(ImportRefused) as refused:
        from_onnx(path)
    message = str(refused.value)
    assert "up.onnx" in message and "nothing was imported" in message
    assert "- upsample (Resize): CNN Studio has no upsampling block" in message
    assert "- norm (InstanceNormalization): " in message
    assert "- nhwc (Transpose): reorders the axes" in message
    assert [(name, op) for name, op, _ in refused.value.unsupported] == [
        ("upsample", "Resize"), ("norm", "InstanceNormalization"), ("nhwc", "Transpose")]


def test_a_node_the_outputs_do_not_need_does_not_refuse(tmp_path):
    path = tiny(tmp_path / "dead.onnx", [
        helper.make_node("Relu", ["c"], ["m"], name="relu"),
        helper.make_node("LSTM", ["c", "lw", "lr"], ["unused"], name="lstm", hidden_size=2),
    ])
    model = onnx.load(str(path))
    model.graph.initializer.extend([
        numpy_helper.from_array(np.zeros((1, 8, 8), np.float32), "lw"),
        numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "lr")])
    onnx.save(model, str(path))
    assert [b.name for b in from_onnx(path).graph.blocks] == ["x", "conv", "pool", "fc",
                                                             "scores"]


@pytest.mark.parametrize("nodes, refusal", [
    ([helper.make_node("Constant", [], ["lo"], value_float=-1.0),
      helper.make_node("Constant", [], ["hi"], value_float=1.0),
      helper.make_node("Clip", ["c", "lo", "hi"], ["m"], name="hardtanh")],
     r"- hardtanh \(Clip\): clipping to \[-1, 1\] has no block"),
    ([helper.make_node("HardSigmoid", ["c"], ["m"], alpha=0.2, beta=0.5)],
     r"- m \(HardSigmoid\): only the hard sigmoid x/6 \+ 1/2"),  # unnamed: its output's name
    ([helper.make_node("Softmax", ["c"], ["m"], name="pixels", axis=2)],
     r"- pixels \(Softmax\): only a softmax across the classes"),
    ([helper.make_node("Transpose", ["c"], ["m"], name="nhwc", perm=[0, 2, 3, 1])],
     r"- nhwc \(Transpose\): reorders the axes"),
])
def test_operators_with_settings_no_block_has_are_refused(nodes, refusal, tmp_path):
    with pytest.raises(ImportRefused, match=refusal):
        from_onnx(tiny(tmp_path / "net.onnx", nodes))


def test_every_graph_output_becomes_an_output_block_the_first_the_main_one(tmp_path):
    path = tiny(tmp_path / "two.onnx", [helper.make_node("Relu", ["c"], ["m"], name="relu")])
    model = onnx.load(str(path))
    model.graph.node.append(helper.make_node("Softmax", ["scores"], ["p"], name="softmax"))
    model.graph.output.append(helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 2]))
    onnx.save(model, str(path))
    graph = from_onnx(path).graph
    outputs = [(b.name, b.params["auxiliary"]) for b in graph.output_blocks()]
    assert outputs == [("scores", False), ("p", True)]
    assert graph.main_output().name == "scores"


def test_a_dynamic_image_size_is_refused_with_advice_or_given(tmp_path):
    path = tiny(tmp_path / "dynamic.onnx", [helper.make_node("Relu", ["c"], ["m"])],
                spatial=("H", "W"))
    with pytest.raises(ImportRefused) as refused:
        from_onnx(path)
    assert "no fixed image size" in str(refused.value)
    assert "input_shape=(C, H, W)" in str(refused.value)
    result = from_onnx(path, input_shape=(3, 12, 10))
    assert result.graph.input_block().params == {"channels": 3, "height": 12, "width": 10}


def test_damaged_and_foreign_files_are_refused_with_the_file_named(tmp_path):
    good = tiny(tmp_path / "good.onnx", [helper.make_node("Relu", ["c"], ["m"])]).read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    text = tmp_path / "notes.onnx"
    text.write_text("these are my notes, not a network\n", encoding="utf-8")
    for path in (truncated, text):
        with pytest.raises(ImportRefused, match=rf"cannot read '.*{path.name}': it is not an "
                                                "ONNX model, or it is damaged"):
            from_onnx(path)
    with pytest.raises(ImportRefused, match="the file does not exist"):
        from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ImportRefused, match="it is a folder"):
        from_onnx(tmp_path)


def test_an_opset_outside_11_to_21_is_refused_with_advice(tmp_path):
    path = tiny(tmp_path / "old.onnx", [helper.make_node("Relu", ["c"], ["m"])], opset=10)
    with pytest.raises(ImportRefused, match=r"opset 10; CNN Studio reads opsets 11 to 21.*"
                                            r"version_converter"):
        from_onnx(path)
