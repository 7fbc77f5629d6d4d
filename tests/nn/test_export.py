"""Exports of a trained run: ONNX, TorchScript, Python and the state dict, and their failures.

Run folders are fabricated here as the training engine writes them: project.cnnproj, data.json
and model.pt (a GraphModel state dict with random weights and BatchNorm statistics).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project, save_project
from cnnstudio.core.templates import TEMPLATES, build_template
from cnnstudio.nn import GraphModel, build_model
from cnnstudio.nn import export as export_module
from cnnstudio.nn import export_common
from cnnstudio.nn.export import (
    FORMATS,
    ExportError,
    LoadedRun,
    NormalizedModel,
    export_onnx,
    export_pt2,
    export_run,
    export_state_dict,
    export_torchscript,
    load_run,
)

GREY, COLOUR = (1, 28, 28), (3, 32, 32)
MEAN = {1: [0.1307], 3: [0.49, 0.48, 0.45]}
STD = {1: [0.3081], 3: [0.25, 0.24, 0.26]}


def small_shape(template_id: str) -> tuple[int, int, int]:
    return GREY if TEMPLATES[template_id].default_input[0] == 1 else COLOUR


def zoo_graph() -> Graph:
    """Every block type, with the padding and pooling modes that need care when exported."""
    g = Graph()
    g.add_block("Input", {"channels": 3, "height": 9, "width": 12}, name="image", block_id="input")

    def add(type_id: str, params: dict, name: str, *sources: str) -> str:
        block = g.add_block(type_id, params, name=name)
        for source in sources:
            g.connect(source, block.id)
        return block.id

    same = {"stride": [1, 1], "padding": "same"}
    stem = add("Conv2D", {"filters": 8, "kernel": [3, 3], "stride": [2, 2], "padding": "same",
                          "activation": "leaky_relu", "l2": 1e-3}, "stem conv", "input")
    norm = add("BatchNorm", {"eps": 1e-3, "momentum": 0.2}, "bn", stem)
    elu = add("Activation", {"function": "elu", "alpha": 0.5}, "elu", norm)
    pools = [add("Pooling", {"mode": mode, "pool_size": [k, k], **same}, name, elu)
             for mode, k, name in (("max", 2, "max same"), ("average", 3, "avg same"),
                                   ("average", 2, "avg odd"), ("sum", 2, "sum"), ("l2", 3, "l2"))]
    side = add("Conv2D", {"filters": 8, "kernel": [1, 3], "padding": "same", "dilation": [1, 2],
                          "groups": 2, "bias": False, "activation": "gelu", "trainable": False},
               "1x3", elu)
    residual = add("Add", {}, "residual", pools[0], pools[1], pools[2], side)
    mixed = add("Concatenate", {}, "mix", residual, pools[3], pools[4])
    lrn = add("LocalResponseNorm", {"size": 3}, "lrn", mixed)
    drop = add("Dropout", {"rate": 0.3, "mode": "channel"}, "drop", lrn)
    flat = add("Concatenate", {}, "pools", add("Pooling", {"mode": "global_max"}, "gmax", drop),
               add("Pooling", {"mode": "global_average"}, "gavg", drop))
    hidden = add("Dense", {"units": 12, "activation": "selu", "l1": 1e-4}, "class", flat)
    act = add("Activation", {"function": "leaky_relu", "negative_slope": 0.2}, "train",
              add("BatchNorm", {}, "bn", hidden))
    add("Output", {}, "output", add("Dense", {"units": 5}, "logits", act))
    aux = add("Dense", {"units": 5, "activation": "sigmoid"}, "aux fc",
              add("Flatten", {}, "aux flat", pools[3]))
    add("Output", {"auxiliary": True, "loss_weight": 0.3}, "aux out", aux)
    return g


def modern_graph() -> Graph:
    """Every option of issue 13: explicit and ceil-mode pooling, counted padding, adaptive
    pooling (output sizes that do not divide the input), ReLU6, SiLU, Hardswish, Hardsigmoid
    (fused and as blocks), depthwise convolution and Multiply (squeeze-and-excitation)."""
    g = Graph()
    g.add_block("Input", {"channels": 3, "height": 19, "width": 20}, name="image",
                block_id="input")

    def add(type_id: str, params: dict, name: str, *sources: str) -> str:
        block = g.add_block(type_id, params, name=name)
        for source in sources:
            g.connect(source, block.id)
        return block.id

    def pool(name: str, source: str, mode: str, k: int, s: int, **options) -> str:
        return add("Pooling", {"mode": mode, "pool_size": [k, k], "stride": [s, s], **options},
                   name, source)

    stem = add("Conv2D", {"filters": 8, "kernel": [3, 3], "padding": [1, 1],
                          "activation": "silu"}, "stem", "input")
    dw = add("Conv2D", {"depthwise": True, "filters": 99, "groups": 7, "kernel": [3, 3],
                        "padding": "same", "activation": "hardswish"}, "dw", stem)
    same_size = [  # each 10×10
        pool("max pad", dw, "max", 3, 2, padding=[1, 1]),
        pool("avg ceil", dw, "average", 2, 2, ceil_mode=True),
        pool("sum ceil", dw, "sum", 2, 2, ceil_mode=True),
        pool("avg counted", dw, "average", 3, 2, padding=[1, 1], count_padding=True),
        pool("avg real", dw, "average", 3, 2, padding=[1, 1]),
    ]
    residual = add("Add", {}, "residual", *same_size)
    resized = [
        add("Pooling", {"mode": "adaptive_max", "output_size": [10, 10]}, "amax",
            pool("max ceil", dw, "max", 3, 2, ceil_mode=True)),
        add("Pooling", {"mode": "adaptive_average", "output_size": [10, 10]}, "aavg",
            pool("avg counted ceil", dw, "average", 3, 2, padding=[1, 1], ceil_mode=True,
                 count_padding=True)),
        add("Pooling", {"mode": "adaptive_max", "output_size": [10, 10]}, "amax2",
            pool("l2 ceil", dw, "l2", 3, 2, padding=[1, 1], ceil_mode=True)),
        add("Pooling", {"mode": "adaptive_average", "output_size": [10, 10]}, "aavg2",
            pool("avg same counted", dw, "average", 2, 1, padding="same", count_padding=True)),
    ]
    x = add("Concatenate", {}, "mix", residual, *resized)
    for function in ("relu6", "silu", "hardswish", "hardsigmoid"):
        x = add("Activation", {"function": function}, function, x)
    squeeze = add("Pooling", {"mode": "global_average"}, "squeeze", x)
    excite = add("Dense", {"units": 40, "activation": "hardsigmoid"}, "excite",
                 add("Dense", {"units": 8, "activation": "relu6"}, "reduce", squeeze))
    x = add("Multiply", {}, "se", excite, x)
    gate = add("Conv2D", {"filters": 40, "kernel": [1, 1], "activation": "sigmoid"}, "gate",
               add("Pooling", {"mode": "adaptive_average", "output_size": [1, 1]}, "pool 1x1", x))
    x = add("Multiply", {}, "se map", x, gate)
    hidden = add("Dense", {"units": 12, "activation": "silu"}, "hidden",
                 add("Pooling", {"mode": "global_max"}, "gmax", x))
    add("Output", {}, "output", add("Dense", {"units": 5}, "logits", hidden))
    return g


def randomise(model: nn.Module, seed: int = 0) -> None:
    """Weights that keep activations O(1) through deep stacks, and non-trivial BatchNorm stats."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                    * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
                module.num_batches_tracked.fill_(7)


def make_run(folder: Path, source: str | Graph, *, name: str | None = None,
             classes: int | None = None, seed: int = 0, dataset: str = "mnist-sample") -> Path:
    """A run folder as the engine writes it, for a template id (at a small size) or a graph."""
    if isinstance(source, str):
        shape = small_shape(source)
        graph = build_template(source, shape, classes or 10)
        project = Project.new(graph, name=name or TEMPLATES[source].title, template=source,
                              dataset={"spec": dataset})
    else:
        graph = source
        project = Project.new(graph, name=name or "Zoo", dataset={"spec": dataset})
    model = build_model(graph)
    randomise(model, seed)
    analysis = analyze(graph)
    channels, height, width = analysis.blocks[model.input_id].output_shape
    (count,) = analysis.blocks[model.main_output_id].output_shape
    folder.mkdir(parents=True, exist_ok=True)
    save_project(project, folder / "project.cnnproj")
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "data.json").write_text(json.dumps({
        "spec": dataset, "name": "MNIST sample", "classes": [f"class {i}" for i in range(count)],
        "mean": MEAN[channels], "std": STD[channels], "input_shape": [channels, height, width],
        "train_count": 8000, "val_count": 2000, "notes": [],
    }), encoding="utf-8")
    return folder


def images(run: LoadedRun, n: int, seed: int = 3) -> torch.Tensor:
    return torch.rand(n, *run.input_shape, generator=torch.Generator().manual_seed(seed))


def direct_probabilities(run: LoadedRun, x: torch.Tensor) -> np.ndarray:
    """What the exported model must give: normalise by hand, GraphModel, softmax."""
    mean = torch.tensor(run.mean).view(1, -1, 1, 1)
    std = torch.tensor(run.std).view(1, -1, 1, 1)
    with torch.no_grad():
        return torch.softmax(run.model((x - mean) / std), dim=1).numpy()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One PyTorch thread: on a small machine, PyTorch's OpenMP threads slow down many times over
    when another process (onnxruntime's spinning thread pool, a parallel test run) wants a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory) -> LoadedRun:
    return load_run(make_run(tmp_path_factory.mktemp("keras") / "run", "keras-mnist"))


# -- ONNX ----------------------------------------------------------------------------------------


SLOW_TEMPLATES = {"vgg11-bn", "resnet50"}  # over 5 s each here (vgg11-bn: 129 M parameters)


@pytest.mark.parametrize("template_id", [
    pytest.param(t, marks=pytest.mark.slow) if t in SLOW_TEMPLATES else t for t in TEMPLATES])
def test_onnx_export_of_every_template_matches_the_graph_model(template_id, tmp_path):
    run = load_run(make_run(tmp_path / "run", template_id))
    out = tmp_path / "model.onnx"
    report = export_onnx(run, out, samples=images(run, 2, seed=5), benchmark_runs=1)

    assert report.format == "onnx" and report.path == out
    assert report.size_bytes == out.stat().st_size
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    assert report.batch_sizes == (2, 1, 7)
    assert report.ort_ms > 0 and report.torch_ms > 0
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == run.classes
    assert meta["input_shape"] == ",".join(map(str, run.input_shape))
    assert json.loads(meta["mean"]) == pytest.approx(run.mean)
    assert json.loads(meta["std"]) == pytest.approx(run.std)
    assert meta["input_range"] == "0..1" and meta["producer"].startswith("CNN Studio ")
    assert "pixel values in [0, 1]: divide 8-bit pixels by 255" in meta["input_note"]
    ops = Counter(node.op_type for node in proto.graph.node)
    assert ops["If"] == 0 and ops["Constant"] == 0  # the current exporter's clean graph
    assert all(not node.name.startswith("/model") for node in proto.graph.node)  # block names

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    for n in (1, 3):
        x = images(run, n)
        got = session.run(None, {"image": x.numpy()})[0]
        expected = direct_probabilities(run, x)
        assert got.shape == (n, len(run.classes))
        np.testing.assert_allclose(got, expected, atol=1e-4)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert leftovers(tmp_path) == []


def test_the_onnx_model_normalises_the_images_itself(keras_run, tmp_path):
    out = tmp_path / "m.onnx"
    export_onnx(keras_run, out, benchmark_runs=0)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = images(keras_run, 4)
    raw = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        unnormalised = torch.softmax(keras_run.model(x), dim=1).numpy()
    assert np.abs(raw - unnormalised).max() > 1e-3  # the mean/std step is really inside


def test_onnx_export_of_the_block_zoo(tmp_path):
    run = load_run(make_run(tmp_path / "run", zoo_graph()))
    report = export_onnx(run, tmp_path / "zoo.onnx", benchmark_runs=1)
    assert report.max_abs_diff <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "zoo.onnx"), providers=["CPUExecutionProvider"])
    x = images(run, 3)
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0],
                               direct_probabilities(run, x), atol=1e-4)


def test_onnx_export_of_the_modern_blocks(tmp_path):
    run = load_run(make_run(tmp_path / "run", modern_graph(), name="Modern"))
    report = export_onnx(run, tmp_path / "modern.onnx", benchmark_runs=0)
    assert report.max_abs_diff <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "modern.onnx"),
                                   providers=["CPUExecutionProvider"])
    x = images(run, 3)
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0],
                               direct_probabilities(run, x), atol=1e-4)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "modern.onnx")).graph.node}
    assert {"MaxPool", "AveragePool", "HardSwish", "HardSigmoid", "Mul"} <= ops


def test_given_samples_are_checked_with_batches_of_1_and_7(keras_run, tmp_path):
    report = export_onnx(keras_run, tmp_path / "m.onnx", samples=images(keras_run, 3),
                         benchmark_runs=0)
    assert report.batch_sizes == (3, 1, 7)
    assert report.ort_ms is None and report.torch_ms is None
    assert "max abs difference of log-probabilities" in report.summary()


def test_every_report_states_the_input_range(keras_run, tmp_path):
    """0..255 pixels fed to an exported model give wrong answers without an error: say so."""
    onnx_report = export_onnx(keras_run, tmp_path / "m.onnx", benchmark_runs=0)
    assert "float32 images (N, 1, 28, 28) with pixel values in [0, 1]" in onnx_report.summary()
    assert "divide 8-bit pixels by 255" in onnx_report.input_note
    python_report = export_run(keras_run.run_dir, "python", tmp_path / "m.py")
    assert python_report.input_note.startswith("model(images) and predict(model, images) take")
    weights = export_state_dict(keras_run, tmp_path / "w.pt")
    assert "takes normalised images (N, 1, 28, 28), (pixel / 255 - mean) / std" in \
        weights.input_note
    assert "class scores (logits; softmax gives the class probabilities)" in weights.input_note


def test_samples_of_the_wrong_shape_are_refused(keras_run, tmp_path):
    with pytest.raises(ExportError, match=r"shape \(N, 1, 28, 28\)"):
        export_onnx(keras_run, tmp_path / "m.onnx", samples=torch.rand(2, 3, 28, 28))
    assert list(tmp_path.iterdir()) == []


# -- TorchScript, state dict, Python, export_run -------------------------------------------------


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated")
@pytest.mark.parametrize("source", ["keras-mnist", "inception-small", "zoo", "modern"])
def test_torchscript_export_matches_pytorch(source, tmp_path):
    graphs = {"zoo": zoo_graph, "modern": modern_graph}
    run = load_run(make_run(tmp_path / "run",
                            graphs[source]() if source in graphs else source))
    report = export_torchscript(run, tmp_path / "model.ts")
    assert report.format == "torchscript" and report.max_abs_diff <= 1e-5
    extra = {"cnnstudio.json": ""}
    loaded = torch.jit.load(str(tmp_path / "model.ts"), _extra_files=extra)
    meta = json.loads(extra["cnnstudio.json"])
    assert meta["classes"] == run.classes and meta["input_shape"] == list(run.input_shape)
    for n in (1, 7):
        x = images(run, n)
        with torch.no_grad():
            np.testing.assert_allclose(loaded(x).numpy(), direct_probabilities(run, x), atol=1e-5)


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated")
def test_torchscript_export_drops_the_auxiliary_heads(tmp_path):
    run = load_run(make_run(tmp_path / "run", "inception-small"))
    assert len(run.model.output_ids) == 2  # an auxiliary classifier for training
    export_torchscript(run, tmp_path / "model.ts")
    loaded = torch.jit.load(str(tmp_path / "model.ts"))
    main_params = {id(p): p.numel() for block_id in run.model.main_path
                   for p in run.model.blocks[block_id].parameters()}
    assert sum(p.numel() for p in loaded.parameters()) == sum(main_params.values())
    assert sum(main_params.values()) < sum(p.numel() for p in run.model.parameters())
    x = images(run, 3)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), direct_probabilities(run, x), atol=1e-5)


def test_the_parity_check_compares_log_probabilities(tmp_path):
    """1e-6 against 5e-5 is within 1e-4 as probabilities, yet a factor of 50: refused."""
    want = np.array([[1e-6, 1 - 1e-6]], dtype=np.float32)
    near = np.array([[1.00001e-6, 1 - 1.00001e-6]], dtype=np.float32)
    far = np.array([[5e-5, 1 - 5e-5]], dtype=np.float32)
    batch = [torch.zeros(1, 1, 2, 2)]
    diff = export_module._compare(tmp_path / "m.onnx", "ONNX", batch, [want],
                                  lambda _: near, 1e-4)
    assert 0 < diff < 1e-4
    with pytest.raises(ExportError, match=r"its log-probabilities differ by up to 3\.9"):
        export_module._compare(tmp_path / "m.onnx", "ONNX", batch, [want], lambda _: far, 1e-4)
    zero = np.array([[0.0, 1.0]], dtype=np.float32)  # log(0) floored: equal zeros agree
    assert export_module._compare(tmp_path / "m.onnx", "ONNX", batch, [zero],
                                  lambda _: zero, 1e-4) == 0


def test_state_dict_export_loads_with_weights_only(keras_run, tmp_path):
    report = export_state_dict(keras_run, tmp_path / "weights.pt")
    assert report.format == "state_dict" and report.max_abs_diff is None
    state = torch.load(tmp_path / "weights.pt", weights_only=True, map_location="cpu")
    assert list(state) == list(keras_run.model.state_dict())
    fresh = build_model(keras_run.project.graph)
    fresh.load_state_dict(state)
    x = torch.rand(2, *keras_run.input_shape)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), keras_run.model(x))


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("pt2", ".pt2"),
                                         ("torchscript", ".ts"), ("python", ".py"),
                                         ("state_dict", ".pt"), ("State-Dict", ".pt")])
def test_export_run_writes_each_format(fmt, suffix, tmp_path):
    run_dir = make_run(tmp_path / "run", "lenet5")
    report = export_run(run_dir, fmt, tmp_path / f"out{suffix}")
    assert report.path.is_file() and report.size_bytes > 0
    assert report.format == fmt.lower().replace("-", "_")
    if report.format != "state_dict":
        assert report.max_abs_diff <= 1e-4


def test_load_run_reads_everything(keras_run):
    assert keras_run.classes == [f"class {i}" for i in range(10)]
    assert keras_run.mean == pytest.approx([0.1307]) and keras_run.std == pytest.approx([0.3081])
    assert keras_run.input_shape == (1, 28, 28)
    assert not keras_run.model.training
    assert keras_run.project.template == "keras-mnist"
    wrapper = NormalizedModel.for_run(keras_run)
    assert dict(wrapper.named_buffers())["mean"].shape == (1, 1, 1, 1)


def test_a_single_mean_value_is_used_for_every_channel(tmp_path):
    run_dir = make_run(tmp_path / "run", "alexnet")
    data = json.loads((run_dir / "data.json").read_text())
    data["mean"], data["std"] = [0.5], [0.25]
    (run_dir / "data.json").write_text(json.dumps(data))
    run = load_run(run_dir)
    assert run.mean == [0.5] * 3 and run.std == [0.25] * 3


# -- failures ------------------------------------------------------------------------------------


def test_unknown_format_lists_the_formats(tmp_path):
    with pytest.raises(ExportError) as caught:
        export_run(make_run(tmp_path / "run", "lenet5"), "tflite", tmp_path / "m.tflite")
    assert "tflite" in str(caught.value)
    assert all(fmt in str(caught.value) for fmt in FORMATS)
    assert not (tmp_path / "m.tflite").exists()


def test_a_missing_run_folder(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        load_run(tmp_path / "nowhere")


@pytest.mark.parametrize("name, message", [("model.pt", "model.pt is missing"),
                                           ("data.json", "data.json is missing"),
                                           ("project.cnnproj", "project.cnnproj")])
def test_a_missing_file_is_named(name, message, tmp_path):
    run_dir = make_run(tmp_path / "run", "lenet5")
    (run_dir / name).unlink()
    with pytest.raises(ExportError, match=message):
        export_run(run_dir, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_weights_of_another_network_list_the_mismatched_keys(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    other = build_model(build_template("lenet5", GREY, 10))
    torch.save(other.state_dict(), run_dir / "model.pt")
    with pytest.raises(ExportError) as caught:
        export_run(run_dir, "onnx", tmp_path / "m.onnx")
    text = str(caught.value)
    assert "model.pt does not match the network" in text
    assert "blocks.conv1.conv.weight" in text and "blocks.c1.conv.weight" in text
    assert "another network" in text
    assert not (tmp_path / "m.onnx").exists()


def test_weights_of_another_shape_are_listed(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    state = torch.load(run_dir / "model.pt", weights_only=True)
    state["blocks.fc1.linear.weight"] = torch.zeros(32, 576)
    torch.save(state, run_dir / "model.pt")
    with pytest.raises(ExportError, match=r"blocks\.fc1\.linear\.weight: 32×576 in the file"):
        load_run(run_dir)


def test_a_damaged_model_file(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    (run_dir / "model.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ExportError, match="model.pt is damaged"):
        export_run(run_dir, "torchscript", tmp_path / "m.ts")
    torch.save([1, 2, 3], run_dir / "model.pt")
    with pytest.raises(ExportError, match="no state dict"):
        load_run(run_dir)
    assert list(tmp_path.iterdir()) == [run_dir]


class RunsCodeWhenLoaded:
    """Unpickling it calls os.mkdir(marker): what a hostile model.pt can do when it is loaded
    with weights_only=False."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def save_weights_with_code(path: Path, marker: Path) -> None:
    """Rewrite the state dict at `path` with a Python object beside its tensors."""
    state = torch.load(path, weights_only=True)
    torch.save({**state, "extra": RunsCodeWhenLoaded(marker)}, path)


def test_weights_holding_a_python_object_are_refused_and_never_run(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    marker = tmp_path / "the-file-ran-code"
    save_weights_with_code(run_dir / "model.pt", marker)
    with pytest.raises(ExportError) as caught:
        export_run(run_dir, "state_dict", tmp_path / "w.pt")
    assert str(caught.value) == (
        f"cannot read {run_dir / 'model.pt'}: it is not a plain checkpoint (it holds Python "
        "objects besides tensors), so it will not be loaded: only files of tensors are opened, "
        "for safety; train the project again (or export another run)")
    assert "weights_only" not in str(caught.value)
    assert not marker.exists() and not (tmp_path / "w.pt").exists()
    torch.load(run_dir / "model.pt", weights_only=False)  # what the refusal protects against
    assert marker.is_dir()


def test_diverged_weights_are_refused(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    state = torch.load(run_dir / "model.pt", weights_only=True)
    state["blocks.fc2.linear.bias"][3] = float("nan")
    torch.save(state, run_dir / "model.pt")
    with pytest.raises(ExportError, match="NaN or infinite weights"):
        load_run(run_dir)


@pytest.mark.parametrize("data, message", [
    ("{not json", "cannot read"),
    (json.dumps({"classes": [], "mean": [0.1], "std": [0.3], "input_shape": [1, 28, 28]}),
     "'classes'"),
    (json.dumps({"classes": list("0123456789"), "mean": [0.1, 0.2], "std": [0.3],
                 "input_shape": [1, 28, 28]}), "'mean' has 2 values for 1 channels"),
    (json.dumps({"classes": list("0123456789"), "mean": [0.1], "std": [0.0],
                 "input_shape": [1, 28, 28]}), "'std' must be positive"),
    (json.dumps({"classes": list("0123456789"), "mean": [0.1], "std": [0.3],
                 "input_shape": [3, 32, 32]}), "different runs"),
    (json.dumps({"classes": list("012"), "mean": [0.1], "std": [0.3],
                 "input_shape": [1, 28, 28]}), "lists 3 classes but the network gives 10"),
])
def test_a_damaged_data_file(data, message, tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    (run_dir / "data.json").write_text(data)
    with pytest.raises(ExportError, match=message) as caught:
        load_run(run_dir)
    assert "data.json" in str(caught.value)


def test_a_damaged_project_file(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist")
    (run_dir / "project.cnnproj").write_text("{}")
    with pytest.raises(ExportError, match="project.cnnproj") as caught:
        load_run(run_dir)
    assert "train the project again" in str(caught.value)


def test_unwritable_output_paths(keras_run, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_onnx(keras_run, tmp_path / "missing" / "m.onnx")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_torchscript(keras_run, tmp_path / "file" / "m.ts")
    with pytest.raises(ExportError, match="it is a folder"):
        export_state_dict(keras_run, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder(keras_run, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="permission denied"):
            export_onnx(keras_run, folder / "m.onnx")
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("exporter", [export_onnx, export_pt2, export_torchscript,
                                      export_module.export_python])
def test_a_parity_failure_leaves_no_file(exporter, keras_run, tmp_path, monkeypatch):
    real = export_common._torch_outputs

    def perturbed(model: nn.Module, batch: torch.Tensor) -> np.ndarray:
        reference = isinstance(model, NormalizedModel) and isinstance(model.model, GraphModel)
        return real(model, batch) + (0.01 if reference else 0.0)

    monkeypatch.setattr(export_common, "_torch_outputs", perturbed)  # the PyTorch reference
    out = tmp_path / "model.out"
    with pytest.raises(ExportError, match="disagrees with PyTorch") as caught:
        exporter(keras_run, out)
    assert "was not written" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_survives_a_failed_export(keras_run, tmp_path, monkeypatch):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    monkeypatch.setattr(export_common, "_torch_outputs", lambda model, batch: np.zeros(1))
    with pytest.raises(ExportError):
        export_onnx(keras_run, out, tolerance=0.0, overwrite=True)  # fails at the check
    assert out.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_an_onnx_checker_failure(keras_run, tmp_path, monkeypatch):
    def refuse(model, full_check=False):
        raise onnx.checker.ValidationError("Field 'shape' of 'type' is required but missing.")

    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    with pytest.raises(ExportError, match="fails onnx.checker.*'shape'"):
        export_onnx(keras_run, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_exporter_crash_becomes_an_export_error(keras_run, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate\nlong trace")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match="cannot convert this network to ONNX.*frobnicate"):
        export_onnx(keras_run, tmp_path / "m.onnx")
    monkeypatch.setattr(export_module, "generate_python", broken)
    with pytest.raises(ExportError, match="failed unexpectedly"):
        export_module.export_python(keras_run, tmp_path / "m.py")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_damaged_run_is_described_without_talking_of_export(tmp_path):
    """load_run also opens runs for explain, kernels, profile and quantize."""
    with pytest.raises(ExportError) as missing:
        load_run(tmp_path / "nothing")
    assert "cannot read the run" in str(missing.value) and "cannot export" not in str(missing.value)
    damaged = tmp_path / "run"
    damaged.mkdir()
    (damaged / "project.cnnproj").write_text("{not json")
    with pytest.raises(ExportError) as broken:
        load_run(damaged)
    assert "choose another run, or train the project again" in str(broken.value)
