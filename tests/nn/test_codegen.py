"""The generated standalone PyTorch file: compiles, imports nothing of CNN Studio, computes what
GraphModel computes on a run's own model.pt, and trains."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import py_compile
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.core.templates import TEMPLATES, build_template
from cnnstudio.nn import ModelBuildError, build_model
from cnnstudio.nn.codegen import attribute_name, class_name_for, generate_python
from cnnstudio.nn.export import LoadedRun, load_run
from cnnstudio.nn.torch_files import NOT_PLAIN_CHECKPOINT
from tests.nn.test_export import make_run, modern_graph, save_weights_with_code, zoo_graph

CASES = [*TEMPLATES, "zoo", "modern"]
GRAPHS = {"zoo": zoo_graph, "modern": modern_graph}

RUNNER = """
import importlib.util, json, sys
import torch

torch.set_num_threads(1)
for case in json.load(open("cases.json")):
    spec = importlib.util.spec_from_file_location(case["module"], case["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, case["class"])()
    module.load_cnnstudio_weights(model, case["weights"])
    model.eval()
    with torch.no_grad():
        torch.save(model(torch.load(case["input"])), case["output"])
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] == "cnnstudio")))
"""


def generate(run: LoadedRun) -> str:
    return generate_python(run.project, classes=run.classes, mean=run.mean, std=run.std,
                           input_shape=run.input_shape)


def load_generated(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One PyTorch thread: on a small machine, PyTorch's OpenMP threads slow down many times over
    when another process (onnxruntime's spinning thread pool, a parallel test run) wants a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedRun]:
    root = tmp_path_factory.mktemp("runs")
    return {case: load_run(make_run(root / case, GRAPHS[case]() if case in GRAPHS else case,
                                    seed=index))
            for index, case in enumerate(CASES)}


@pytest.fixture(scope="module")
def sources(runs: dict[str, LoadedRun]) -> dict[str, str]:
    return {case: generate(run) for case, run in runs.items()}


def test_every_generated_file_compiles_and_imports_only_torch(sources, tmp_path):
    for case, source in sources.items():
        path = tmp_path / f"{case.replace('-', '_')}.py"
        path.write_text(source, encoding="utf-8")
        compile(source, str(path), "exec")
        py_compile.compile(str(path), doraise=True)
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        # numpy and PIL only inside the functions that read training data
        assert imported <= {"__future__", "argparse", "pathlib", "torch", "numpy", "PIL"}, case
        assert "cnnstudio" not in source.replace("CNN Studio", "").replace("CNNSTUDIO", "") \
            .replace("load_cnnstudio_weights", "").replace("convert_cnnstudio_state_dict", "")


def test_generated_models_take_pixels_and_give_the_graph_model_outputs(runs, sources, tmp_path):
    """One isolated interpreter (no PYTHONPATH, no CNN Studio) runs every generated file: its
    forward() takes pixels in [0, 1] and normalises them itself, as the ONNX export does."""
    cases, expected = [], {}
    for index, (case, run) in enumerate(runs.items()):
        x = torch.rand(3, *run.input_shape, generator=torch.Generator().manual_seed(index))
        mean = torch.tensor(run.mean).view(1, -1, 1, 1)
        std = torch.tensor(run.std).view(1, -1, 1, 1)
        with torch.no_grad():
            expected[case] = run.model((x - mean) / std)
        (tmp_path / f"net_{index}.py").write_text(sources[case], encoding="utf-8")
        torch.save(x, tmp_path / f"input_{index}.pt")
        cases.append({"module": f"net_{index}", "file": f"net_{index}.py",
                      "class": class_name_for(run.project.name),
                      "weights": str(run.run_dir / "model.pt"),
                      "input": f"input_{index}.pt", "output": f"output_{index}.pt"})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "runner.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # nothing of cnnstudio loaded
    for index, case in enumerate(runs):
        got = torch.load(tmp_path / f"output_{index}.pt", weights_only=True)
        torch.testing.assert_close(got, expected[case], atol=1e-5, rtol=0, msg=case)


def test_names_follow_the_project_and_the_blocks(runs, sources):
    source = sources["keras-mnist"]
    assert runs["keras-mnist"].project.name == "Keras MNIST CNN"
    assert "class KerasMnistCnn(nn.Module):" in source
    for line in ("self.conv1 = nn.Conv2d(1, 32, kernel_size=3)",
                 "self.pool1 = nn.MaxPool2d(kernel_size=2)",
                 "self.fc1 = nn.Linear(576, 64)",
                 "x = F.relu(self.conv1(x))  # (N, 32, 26, 26)",
                 '"blocks.fc2.linear.": "fc2.",',
                 "MEAN = (0.1307,)",
                 '    "class 0", "class 1", "class 2",'):
        assert line in source, line
    assert "Parameters: 93,322 (93,322 trainable)" in source
    assert class_name_for("Keras book MNIST network") == "KerasBookMnistNetwork"
    assert class_name_for("3 layers!") == "Net3Layers"
    assert class_name_for("") == "Network"
    assert attribute_name("conv1/3x3_s1", "conv") == "conv1_3x3_s1"
    assert attribute_name("1x1", "conv") == "conv_1x1"
    assert attribute_name("forward", "fc") == "forward_layer"
    assert attribute_name("éé", "pool") == "pool"


def test_merges_are_straight_line_code(sources):
    googlenet = sources["googlenet"]
    assert "inception_3a_output = torch.cat(" in googlenet
    assert "x = F.relu(self.inception_3a_3x3_reduce(pool2_3x3_s2))" in googlenet
    zoo = sources["zoo"]
    assert "residual = max_same + avg_same + avg_odd + conv_1x3" in zoo
    assert "x = torch.cat([residual, sum_layer, l2], dim=1)" in zoo


def test_helpers_appear_only_where_torch_lacks_the_layer(sources):
    keras = ast.parse(sources["keras-mnist"])
    assert [n.name for n in keras.body if isinstance(n, ast.ClassDef)] == ["KerasMnistCnn"]
    zoo = sources["zoo"]
    for helper in ("Conv2dSame", "MaxPool2dSame", "AvgPool2dSame", "SumPool2d", "L2Pool2d",
                   "GlobalAvgPool2d", "GlobalMaxPool2d"):
        assert f"class {helper}(" in zoo, helper
    assert "nn.AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False)" in zoo
    assert "self.bn = nn.BatchNorm2d(8, eps=0.001, momentum=0.2)" in zoo
    assert "self.bn_2 = nn.BatchNorm1d(12)" in zoo
    assert "self.class_layer = nn.Linear(48, 12)" in zoo
    assert "self.train_layer = nn.LeakyReLU(0.2)" in zoo


def test_modern_blocks_are_plain_torch_layers(sources):
    modern = sources["modern"]
    for line in ("self.dw = nn.Conv2d(8, 8, kernel_size=3, padding=1, groups=8)",
                 "dw = F.hardswish(self.dw(x))",
                 "self.max_pad = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)",
                 "nn.AvgPool2d(kernel_size=3, stride=2, padding=1, count_include_pad=False)",
                 "self.avg_counted = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)",
                 "self.aavg = nn.AdaptiveAvgPool2d(10)", "self.amax = nn.AdaptiveMaxPool2d(10)",
                 "self.relu6 = nn.ReLU6()", "self.hardsigmoid = nn.Hardsigmoid()",
                 "se = excite[:, :, None, None] * hardsigmoid", "x = se * gate",
                 "self.max_ceil = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)",
                 "nn.AvgPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)",
                 "self.l2_ceil = L2Pool2d(kernel_size=3, stride=2, pads=(1, 2, 1, 1))",
                 "kernel_size=2, stride=1, pads=(0, 1, 0, 1), counted=(0, 1, 0, 1)"):
        assert line in modern, line


def test_auxiliary_heads_are_left_out(runs, sources, tmp_path):
    source = sources["googlenet"]
    assert "# Auxiliary outputs (loss1/output, loss2/output) only help training" in source
    assert "loss1_fc" not in source.split("# A CNN Studio model.pt")[0]
    assert "ignored: loss1_conv, loss1_fc" in source
    module = types.ModuleType("generated")
    exec(compile(source, "googlenet.py", "exec"), module.__dict__)
    model = module.GooglenetInceptionV1()
    run = runs["googlenet"]
    main_params = sum(p.numel() for p in model.parameters())
    expected = sum(p.numel() for name, p in run.model.named_parameters()
                   if not name.startswith(("blocks.loss1", "blocks.loss2")))
    assert main_params == expected


def test_penalties_and_frozen_blocks_carry_over(runs, sources, tmp_path):
    path = tmp_path / "zoo.py"
    path.write_text(sources["zoo"])
    module = load_generated(path)
    run = runs["zoo"]
    model = module.Zoo()
    model.load_state_dict(module.convert_cnnstudio_state_dict(run.model.state_dict()))
    torch.testing.assert_close(model.penalty(), run.model.penalty())
    assert not any(p.requires_grad for p in model.conv_1x3.parameters())
    assert all(p.requires_grad for p in model.stem_conv.parameters())


def tiny_loader(shape: tuple[int, ...], classes: int, n: int = 8) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(n, *shape, generator=generator),
                                          torch.randint(0, classes, (n,), generator=generator))
    return torch.utils.data.DataLoader(data, batch_size=4)


def test_one_training_epoch_on_an_in_memory_loader(runs, sources, tmp_path):
    path = tmp_path / "zoo.py"
    path.write_text(sources["zoo"])
    module = load_generated(path)
    model = module.Zoo()
    frozen = model.conv_1x3.weight.detach().clone()
    head = model.logits.weight.detach().clone()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loader = tiny_loader((3, 9, 12), 5)
    loss = module.train_one_epoch(model, loader, optimizer)
    assert np.isfinite(loss) and loss > 0
    assert torch.equal(model.conv_1x3.weight, frozen)
    assert not torch.equal(model.logits.weight, head)
    assert 0.0 <= module.evaluate(model, loader) <= 1.0
    defaults = inspect.signature(module.train).parameters
    assert defaults["epochs"].default == 5 and defaults["batch_size"].default == 64
    assert defaults["lr"].default == 1e-3 and "data" in defaults


def write_digits_npz(path: Path, n: int, shape: tuple[int, ...] = (28, 28), **extra) -> None:
    """Random uint8 images N x H x W and labels 0..9, as numpy.savez writes them."""
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (n, *shape), dtype=np.uint8),
             y=np.arange(n) % 10, **extra)


def test_main_trains_offline_on_an_npz_and_saves(runs, sources, tmp_path, capsys):
    path = tmp_path / "keras.py"
    path.write_text(sources["keras-mnist"])
    module = load_generated(path)
    run = runs["keras-mnist"]
    write_digits_npz(tmp_path / "digits.npz", 12)
    out = tmp_path / "trained.pt"
    module.main(["--data", str(tmp_path / "digits.npz"), "--weights",
                 str(run.run_dir / "model.pt"), "--epochs", "1", "--batch-size", "4",
                 "--save", str(out)])
    assert "epoch 1/1: loss" in capsys.readouterr().out
    trained = torch.load(out, weights_only=True)
    assert set(trained) == set(module.KerasMnistCnn().state_dict())
    assert "mean" not in trained  # the normalisation constants are not weights


def test_generated_loading_refuses_weights_holding_python_objects(runs, sources, tmp_path,
                                                                  capsys):
    """The generated file has no CNN Studio to import: it carries the same message as text."""
    path = tmp_path / "keras.py"
    path.write_text(sources["keras-mnist"])
    module = load_generated(path)
    weights, marker = tmp_path / "model.pt", tmp_path / "the-file-ran-code"
    shutil.copy(runs["keras-mnist"].run_dir / "model.pt", weights)
    save_weights_with_code(weights, marker)
    with pytest.raises(ValueError) as caught:
        module.load_cnnstudio_weights(module.KerasMnistCnn(), str(weights))
    assert str(caught.value) == f"cannot read {weights}: {NOT_PLAIN_CHECKPOINT}"
    write_digits_npz(tmp_path / "digits.npz", 12)
    with pytest.raises(SystemExit) as stopped:
        module.main(["--data", str(tmp_path / "digits.npz"), "--weights", str(weights)])
    assert stopped.value.code == 2
    assert f"error: cannot read {weights}: {NOT_PLAIN_CHECKPOINT}" in capsys.readouterr().err
    assert not marker.exists()


RUN_MAIN = """
import builtins, socket, sys
real_import = builtins.__import__

def offline_import(name, *args, **kwargs):
    if name.split(".")[0] == "torchvision":
        raise ImportError("torchvision is not installed here")
    return real_import(name, *args, **kwargs)

def no_network(*args, **kwargs):
    raise OSError("no network here")

builtins.__import__ = offline_import
socket.socket.connect = socket.create_connection = no_network
sys.argv = ["net.py", *sys.argv[1:]]
exec(compile(open("net.py").read(), "net.py", "exec"), {"__name__": "__main__",
                                                        "__file__": "net.py"})
"""


def run_generated(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python net.py ARGS` in a fresh interpreter without torchvision or a network."""
    (folder / "runner.py").write_text(RUN_MAIN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-I", "runner.py", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_main_trains_on_data_saved_next_to_it_and_never_downloads(sources, tmp_path):
    (tmp_path / "net.py").write_text(sources["keras-mnist"])
    done = run_generated(tmp_path, "--epochs", "1", "--batch-size", "8")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no training data" in done.stderr and "net.npz does not exist" in done.stderr
    write_digits_npz(tmp_path / "net.npz", 24)
    done = run_generated(tmp_path, "--epochs", "1", "--batch-size", "8")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 1/1: loss" in done.stdout


def test_main_reads_an_image_folder_of_any_mode_and_size(tmp_path, capsys):
    from PIL import Image

    graph = build_template("alexnet", (3, 32, 32), 3)
    source = generate_python(Project.new(graph, name="A"), classes=["cat", "dog", "owl"],
                             mean=[0.5] * 3, std=[0.25] * 3, input_shape=(3, 32, 32))
    path = tmp_path / "net.py"
    path.write_text(source)
    module = load_generated(path)
    rng = np.random.default_rng(1)
    # grey 8-bit of several sizes, RGBA, 16-bit grey (Pillow's I;16)
    kinds = {"cat": ((20, 40), np.uint8), "dog": ((50, 30, 4), np.uint8),
             "owl": ((24, 24), np.uint16)}
    for name, (shape, dtype) in kinds.items():
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, np.iinfo(dtype).max + 1, (shape[0] + i, *shape[1:]),
                                  dtype=dtype)
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i}.png")
    images, labels = module.read_folder(tmp_path / "images")
    assert images.shape == (9, 3, 32, 32) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert float(images[6:].max()) > 0.9  # 16-bit pixels scaled by their range, not clipped
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    module.main(["--data", str(tmp_path / "images"), "--epochs", "1", "--batch-size", "4"])
    assert "epoch 1/1" in capsys.readouterr().out


def test_the_npz_reader_converts_layout_range_channels_and_size(tmp_path):
    graph = build_template("alexnet", (3, 32, 32), 10)
    source = generate_python(Project.new(graph, name="A"), classes=list("0123456789"),
                             mean=[0.5], std=[0.2], input_shape=(3, 32, 32))
    assert "MEAN = (0.5, 0.5, 0.5)" in source
    module = types.ModuleType("a")
    exec(compile(source, "a.py", "exec"), module.__dict__)
    grey = np.random.default_rng(2).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    np.savez(tmp_path / "keras.npz", x_train=grey, y_train=np.eye(10)[np.arange(6)],
             x_test=grey[:2].astype(np.float32) / 255, y_test=np.array([3, 4]))
    (train_x, train_y), (val_x, val_y) = module.read_npz(tmp_path / "keras.npz")
    assert train_x.shape == (6, 3, 32, 32) and val_x.shape == (2, 3, 32, 32)
    assert train_y.tolist() == list(range(6)) and val_y.tolist() == [3, 4]
    torch.testing.assert_close(val_x, train_x[:2])  # uint8 and [0, 1] floats read alike
    torch.testing.assert_close(train_x[:, 0], train_x[:, 2])  # grey copied to every channel
    np.savez(tmp_path / "bad.npz", images=grey)
    with pytest.raises(SystemExit, match="has no arrays x and y"):
        module.load_data(tmp_path / "bad.npz")
    np.savez(tmp_path / "labels.npz", x=grey, y=np.arange(6) + 5)
    with pytest.raises(SystemExit, match="labels must be class numbers 0 to 9"):
        module.load_data(tmp_path / "labels.npz")


def test_an_input_that_feeds_two_branches():
    graph = Graph()
    graph.chain([("Input", {"channels": 2, "height": 6, "width": 6}),
                 ("Conv2D", {"filters": 2, "padding": "same"}, "x")])
    add = graph.add_block("Add", {}, name="skip")
    graph.connect("input_1", add.id)
    graph.connect("conv2d_1", add.id)
    graph.chain([("Flatten", {}), ("Dense", {"units": 3}), ("Output", {})], after=add.id)
    source = generate_python(Project.new(graph, name="skip"), classes=list("abc"), mean=[0.5],
                             std=[0.5], input_shape=(2, 6, 6))
    assert "def forward(self, image: torch.Tensor)" in source
    assert "x = image + x_layer  # (N, 2, 6, 6)" in source
    module = types.ModuleType("skip")
    exec(compile(source, "skip.py", "exec"), module.__dict__)
    reference = build_model(graph).eval()
    model = module.Skip().eval()
    model.load_state_dict(module.convert_cnnstudio_state_dict(reference.state_dict()))
    x = torch.rand(2, 2, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference((x - 0.5) / 0.5), atol=1e-6, rtol=0)


def test_a_graph_with_errors_is_refused():
    graph = Graph()
    graph.add_block("Input", {})
    with pytest.raises(ModelBuildError):
        generate_python(Project.new(graph), classes=["a"], mean=[0.1], std=[0.2],
                        input_shape=(1, 28, 28))


def test_odd_names_and_classes_stay_valid_python():
    graph = build_template("keras-mnist", (1, 28, 28), 3)
    graph.rename("conv1", 'class """quote\\')
    graph.rename("conv2", "class")
    project = Project.new(graph, name='None """ \\ name')
    classes = ['say "hi"', "back\\slash", "tab\there"]
    source = generate_python(project, classes=classes, mean=[0.1], std=[0.2],
                             input_shape=(1, 28, 28))
    module = types.ModuleType("odd")
    exec(compile(source, "odd.py", "exec"), module.__dict__)
    assert module.CLASSES == tuple(classes)
    assert class_name_for(project.name) == "NoneName"
    model = module.NoneName()
    assert hasattr(model, "class_quote") and hasattr(model, "class_layer")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_generated_files_pass_ruff(sources, tmp_path):
    for case in ("keras-mnist", "googlenet", "zoo"):
        (tmp_path / f"{case.replace('-', '_')}.py").write_text(sources[case])
    done = subprocess.run(["ruff", "check", "--isolated", "--line-length", "100",
                           "--select", "E,W,F,I,B,UP", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_initial_kernels_from_the_lab_start_the_generated_model():
    graph = build_template("keras-mnist", (1, 28, 28), 3)
    kernel = [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]
    graph.set_params("conv1", {"initial_kernel": kernel, "trainable": False})
    graph.set_params("conv2", {"kernel": [1, 5], "padding": "same", "bias": False,
                               "initial_kernel": [[0.5, -0.25, 1.0, 2.0, 3.0]]})
    source = generate_python(Project.new(graph, name="lab"), classes=list("abc"), mean=[0.5],
                             std=[0.5], input_shape=(1, 28, 28))
    assert "with torch.no_grad():" in source
    module = types.ModuleType("lab")
    exec(compile(source, "lab.py", "exec"), module.__dict__)
    model = module.Lab()
    assert torch.equal(model.conv1.weight, torch.tensor(kernel).expand(32, 1, 3, 3))
    assert torch.equal(model.conv1.bias, torch.zeros(32))
    assert not model.conv1.weight.requires_grad
    assert torch.equal(model.conv2.weight[7, 5, 0], torch.tensor([0.5, -0.25, 1.0, 2.0, 3.0]))
    reference = build_model(graph)
    assert torch.equal(reference.blocks["conv1"].conv.weight, model.conv1.weight)
