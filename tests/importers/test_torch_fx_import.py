"""Importing torch modules with torch.fx: torchvision models and hand-written modules become
graphs whose GraphModel computes what the module computes, with the module's weights.

Every import is checked the same way: build_model on the imported graph, load the imported
state with transfer.load_matching_weights, and compare with the module itself on a random batch.
BatchNorm statistics are randomised first, so that a statistic landing in the wrong place shows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnstudio.core.analysis import analyze
from cnnstudio.importers import ImportRefused, ImportResult, from_module
from cnnstudio.importers.torch_fx import from_torchvision
from cnnstudio.nn import GraphModel, build_model
from cnnstudio.nn.export import LoadedRun, export_onnx
from cnnstudio.train.transfer import load_matching_weights

WEIGHTED = ("Conv2D", "Dense", "BatchNorm")
LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d)


def randomise_norms(module: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.running_mean.normal_(0.0, 0.2, generator=generator)
                layer.running_var.uniform_(0.5, 1.5, generator=generator)
                layer.weight.uniform_(0.5, 1.5, generator=generator)
                layer.bias.uniform_(-0.2, 0.2, generator=generator)
    return module.eval()


def rebuilt(module: nn.Module, shape: tuple[int, int, int]) -> tuple[ImportResult, GraphModel]:
    """Import the module, build the graph and load the imported weights into it."""
    result = from_module(module, shape)
    model = build_model(result.graph).eval()
    report = load_matching_weights(model, result.state, result.graph, result.graph)
    weighted = [b for b in result.graph.blocks if b.type in WEIGHTED]
    assert not report.skipped and len(report.loaded) == len(weighted)
    return result, model


def assert_same_outputs(module: nn.Module, model: nn.Module, shape: tuple[int, int, int],
                        seed: int = 1) -> None:
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected, got = module.eval()(x), model(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def names(result: ImportResult, *types: str) -> set[str]:
    return {b.name for b in result.graph.blocks if not types or b.type in types}


def by_name(result: ImportResult, name: str):
    block = result.graph.find(name)
    assert block is not None, f"no block named {name!r} in {sorted(names(result))}"
    return block


# -- torchvision models ---------------------------------------------------------------------------


@pytest.mark.parametrize("model_name, shape, parameters, examples", [
    ("resnet18", (3, 64, 64), 11_689_512,
     {"conv1": "Conv2D", "layer1.0.conv1": "Conv2D", "layer2.0.downsample.0": "Conv2D",
      "layer2.0.downsample.1": "BatchNorm", "layer1.0.add": "Add", "layer1.0.relu": "Activation",
      "layer1.0.relu_2": "Activation", "avgpool": "Pooling", "flatten": "Flatten",
      "fc": "Dense", "input": "Input", "output": "Output"}),
    ("mobilenet_v2", (3, 64, 64), 3_504_872,
     {"features.0.0": "Conv2D", "features.0.2": "Activation", "features.1.conv.0.0": "Conv2D",
      "features.3.add": "Add", "classifier.1": "Dense"}),
    ("squeezenet1_1", (3, 67, 67), 1_235_496,  # odd sizes: its ceil_mode pooling rounds up
     {"features.2": "Pooling", "features.3.squeeze": "Conv2D", "features.3.cat": "Concatenate",
      "classifier.1": "Conv2D", "classifier.3": "Pooling"}),
])
def test_a_torchvision_model_imports_exactly(model_name, shape, parameters, examples):
    torch.manual_seed(0)
    module = randomise_norms(getattr(torchvision.models, model_name)(weights=None))
    result, model = rebuilt(module, shape)

    assert_same_outputs(module, model, shape)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == analyze(result.graph).trainable_params == parameters
    assert names(result, *WEIGHTED) == {path for path, layer in module.named_modules()
                                         if isinstance(layer, LAYERS)}
    for name, type_id in examples.items():
        assert by_name(result, name).type == type_id
    assert result.source == type(module).__name__ and not result.notes


def test_depthwise_convolutions_are_marked_depthwise():
    torch.manual_seed(0)
    result = from_module(torchvision.models.mobilenet_v2(weights=None), (3, 32, 32))
    depthwise = by_name(result, "features.1.conv.0.0")
    assert depthwise.params["depthwise"] is True and depthwise.params["groups"] == 32
    assert not by_name(result, "features.0.0").params["depthwise"]
    assert not by_name(result, "features.1.conv.1").params["depthwise"]  # the 1×1 after it


def test_unused_auxiliary_heads_are_left_out_with_a_note():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # googlenet's note on its initialisation
        module = torchvision.models.googlenet(weights=None, init_weights=False)
    result = from_module(module, (3, 64, 64))
    assert not any(name.startswith("aux") for name in names(result))
    assert any("aux1.fc1" in note and "not used by forward()" in note for note in result.notes)
    assert not any(key.startswith("blocks.aux") for key in result.state)


# -- hand-written modules -------------------------------------------------------------------------


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv(x))


class Custom(nn.Module):
    """Functions rather than modules: F.relu, torch.cat, +, +=, *, x.view(x.size(0), -1)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8, eps=1e-3, momentum=0.2)
        self.left = nn.Conv2d(8, 8, (1, 3), padding=(0, 1))
        self.right = nn.Conv2d(8, 8, 3, padding="same", dilation=2)
        self.block = Residual(16)
        self.gate = nn.Conv2d(16, 16, 1)
        self.extra = nn.Conv2d(16, 16, 1)
        self.head = nn.Linear(16 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        y = torch.cat([self.left(x), self.right(x)], dim=1)
        y = self.block(y)
        y = y * torch.sigmoid(self.gate(y))
        y += self.extra(y)
        y = F.max_pool2d(y, 2)
        return self.head(y.view(y.size(0), -1))


def test_a_module_written_with_functions_imports_exactly():
    torch.manual_seed(0)
    module = randomise_norms(Custom())
    result, model = rebuilt(module, (3, 16, 16))

    assert_same_outputs(module, model, (3, 16, 16))
    assert {"Concatenate", "Add", "Multiply", "Flatten"} <= {b.type for b in result.graph.blocks}
    assert by_name(result, "block.add").type == "Add"  # named after the module it sits in
    assert by_name(result, "block.relu").type == "Activation"
    assert by_name(result, "view").type == "Flatten"
    assert by_name(result, "bn").params["eps"] == 1e-3
    assert by_name(result, "bn").params["momentum"] == 0.2
    assert by_name(result, "right").params["padding"] == "same"
    assert by_name(result, "left").params["padding"] == [0, 1]
    assert result.graph.find("size") is None  # x.size(0) is an argument, not a block


def test_the_import_exports_to_onnx_and_agrees_with_the_module(tmp_path):
    torch.manual_seed(0)
    shape = (3, 16, 16)
    module = randomise_norms(Custom())
    result, model = rebuilt(module, shape)
    run = LoadedRun(tmp_path / "run", result.project(), model, [f"c{i}" for i in range(5)],
                    [0.0] * 3, [1.0] * 3, shape)
    report = export_onnx(run, tmp_path / "custom.onnx", benchmark_runs=0)

    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(5))
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        expected = torch.softmax(module(x), dim=1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


class Single(nn.Module):
    """A convolution, one step under test (a module or a function of x), a linear head."""

    def __init__(self, step, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.step = step if isinstance(step, nn.Module) else None
        self.function = None if isinstance(step, nn.Module) else step
        self.fc = nn.LazyLinear(3)

    def forward(self, x):
        x = self.conv(x)
        x = self.step(x) if self.step is not None else self.function(x)
        return self.fc(torch.flatten(x, 1))


def single(step, shape=(3, 9, 9)) -> Single:
    torch.manual_seed(0)
    module = Single(step)
    with torch.no_grad():
        module(torch.zeros(1, *shape))  # sizes the head
    return module.eval()


ACTIVATIONS = [
    (nn.ReLU(), "relu"), (nn.ReLU(inplace=True), "relu"), (F.relu, "relu"),
    (torch.relu, "relu"), (lambda x: x.relu(), "relu"), (lambda x: F.relu(x, inplace=True), "relu"),
    (nn.ReLU6(), "relu6"), (F.relu6, "relu6"), (lambda x: F.hardtanh(x, 0.0, 6.0), "relu6"),
    (nn.SiLU(), "silu"), (F.silu, "silu"), (nn.Hardswish(), "hardswish"),
    (nn.Hardsigmoid(), "hardsigmoid"), (nn.Sigmoid(), "sigmoid"), (torch.sigmoid, "sigmoid"),
    (nn.Tanh(), "tanh"), (torch.tanh, "tanh"), (nn.LeakyReLU(0.2), "leaky_relu"),
    (lambda x: F.leaky_relu(x, 0.3), "leaky_relu"), (nn.ELU(0.5), "elu"), (nn.SELU(), "selu"),
    (nn.GELU(), "gelu"), (nn.Softmax(dim=1), "softmax"), (lambda x: x.softmax(1), "softmax"),
]


@pytest.mark.parametrize("step, function", ACTIVATIONS)
def test_every_form_of_an_activation_becomes_an_activation_block(step, function):
    module = single(step)
    result, model = rebuilt(module, (3, 9, 9))
    (block,) = [b for b in result.graph.blocks if b.type == "Activation"]
    assert block.params["function"] == function
    if isinstance(step, (nn.LeakyReLU, nn.ELU)):
        setting = "negative_slope" if isinstance(step, nn.LeakyReLU) else "alpha"
        assert block.params[setting] == getattr(step, setting)
    assert_same_outputs(module, model, (3, 9, 9))


POOLINGS = {
    "max, padded, ceil_mode": nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
    "average counting the padding": nn.AvgPool2d(3, 2, padding=1),  # PyTorch's default
    "average of the pixels, ceil_mode": nn.AvgPool2d(3, 2, padding=1, count_include_pad=False,
                                                     ceil_mode=True),
    "adaptive average 2x3": nn.AdaptiveAvgPool2d((2, 3)),
    "adaptive max 1": nn.AdaptiveMaxPool2d(1),
    "adaptive average None x 2": nn.AdaptiveAvgPool2d((None, 2)),
    "F.max_pool2d": lambda x: F.max_pool2d(x, 2, stride=1, padding=1),
    "F.avg_pool2d": lambda x: F.avg_pool2d(x, 3, 1, 1),
    "F.adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 1),
    "mean": lambda x: x.mean((2, 3)),
    "mean keepdim": lambda x: x.mean((-2, -1), keepdim=True),
    "dropout": nn.Dropout(0.3), "dropout2d": nn.Dropout2d(0.2),
    "local response norm": nn.LocalResponseNorm(3, 1e-3, 0.7, 1.5),
    "batchnorm": nn.BatchNorm2d(4), "identity": nn.Identity(),
}


@pytest.mark.parametrize("step", POOLINGS.values(), ids=POOLINGS.keys())
def test_pooling_normalisation_and_dropout_forms_import_exactly(step):
    module = single(step)
    randomise_norms(module)
    result, model = rebuilt(module, (3, 9, 9))
    assert_same_outputs(module, model, (3, 9, 9))
    types = [b.type for b in result.graph.blocks]
    assert len(types) == (5 if isinstance(step, nn.Identity) else 6)  # Identity: no block


@pytest.mark.parametrize("flatten", [
    lambda x: torch.flatten(x, 1), lambda x: x.flatten(1), nn.Flatten(),
    lambda x: x.view(x.size(0), -1), lambda x: x.reshape(x.shape[0], -1),
    lambda x: x.view(x.size()[0], -1), lambda x: x.view(-1, 4 * 9 * 9),
    lambda x: torch.reshape(x, (x.size(0), 4 * 9 * 9)),
])
def test_every_way_of_flattening_becomes_a_flatten_block(flatten):
    module = single(flatten)
    result, model = rebuilt(module, (3, 9, 9))
    assert [b.type for b in result.graph.blocks].count("Flatten") == 2  # and the head's own
    assert_same_outputs(module, model, (3, 9, 9))


def test_an_operation_in_place_changes_what_later_steps_read():
    class InPlace(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 5 * 5, 2)

        def forward(self, x):
            y = self.conv(x)
            y.relu_()  # the result is not used: the next line reads y, now rectified
            return self.fc(torch.flatten(y, 1))

    torch.manual_seed(0)
    module = InPlace().eval()
    result, model = rebuilt(module, (3, 7, 7))
    assert "Activation" in [b.type for b in result.graph.blocks]
    assert_same_outputs(module, model, (3, 7, 7))


def test_a_module_path_longer_than_a_block_name_still_gets_its_weights():
    long_name = "convolution_with_a_name_far_longer_than_sixty_four_characters_allow"
    torch.manual_seed(0)
    module = Single(nn.Identity())
    module.conv = nn.Sequential()
    module.conv.add_module(long_name, nn.Conv2d(3, 4, 3, padding=1))
    with torch.no_grad():
        module(torch.zeros(1, 3, 5, 5))
    result, model = rebuilt(module.eval(), (3, 5, 5))
    (conv,) = [b for b in result.graph.blocks if b.type == "Conv2D"]
    assert len(conv.name) == 64 and conv.name.endswith(long_name[-20:])
    assert_same_outputs(module, model, (3, 5, 5))
    assert not result.notes


# -- refusals -------------------------------------------------------------------------------------


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        steps = self.conv(x).flatten(2).transpose(1, 2)
        out, _ = self.lstm(steps)
        return self.fc(out[:, -1])


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        if x.sum() > 0:
            x = -x
        return self.fc(torch.flatten(x, 1))


def test_a_module_with_an_lstm_is_refused_naming_every_step_without_a_block():
    with pytest.raises(ImportRefused) as refused:
        from_module(Recurrent(), (3, 6, 6))
    listed = {name: op for name, op, _ in refused.value.unsupported}
    assert listed["lstm"] == "LSTM"
    assert listed["flatten"] == "Tensor.flatten()"  # flatten(2) keeps two axes
    assert listed["transpose"] == "Tensor.transpose()"
    assert "nothing was imported" in str(refused.value)
    assert all(advice for _, _, advice in refused.value.unsupported)


def test_data_dependent_control_flow_is_refused_with_its_line_and_the_onnx_way():
    with pytest.raises(ImportRefused) as refused:
        from_module(DataDependent(), (3, 4, 4))
    message = str(refused.value)
    assert "control flow" in message and "if x.sum() > 0:" in message
    assert "test_torch_fx_import.py" in message and "ONNX" in message


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(self.conv(x)), 1))


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc(x), x


@pytest.mark.parametrize("module, name, words", [
    (Shared(), "conv", "called again"),
    (TwoOutputs(), "output", "returns 2 values"),
    (single(lambda x: x * 2.0, (3, 4, 4)), "mul", "constant 2.0"),
    (single(lambda x: x.view(1, -1), (3, 4, 4)), "view", "x.view(x.size(0), -1)"),
    (single(lambda x: x.flatten(0, 1), (3, 4, 4)), "flatten", "torch.flatten(x, 1)"),
    (single(nn.PReLU(), (3, 4, 4)), "step", "no CNN Studio block"),
    (single(nn.BatchNorm2d(4, affine=False), (3, 4, 4)), "step", "affine=False"),
    (single(lambda x: F.gelu(x, approximate="tanh"), (3, 4, 4)), "gelu", "approximate"),
    (single(lambda x: F.hardtanh(x), (3, 4, 4)), "hardtanh", "[-1.0, 1.0]"),
    (single(lambda x: torch.cat([x, x], 2), (3, 4, 4)), "cat", "axis 2"),
])
def test_what_has_no_block_is_refused_by_name(module, name, words):
    with pytest.raises(ImportRefused) as refused:
        from_module(module, (3, 4, 4))
    advice = {listed: advice for listed, _, advice in refused.value.unsupported}
    assert name in advice and words in advice[name]


def test_a_reflect_padded_convolution_is_refused():
    module = Single(nn.Identity())
    module.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    with torch.no_grad():
        module(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ImportRefused, match="padding_mode='zeros'"):
        from_module(module, (3, 5, 5))


@pytest.mark.parametrize("shape, words", [
    ((3, 32), "input_shape must be"), ((3, 0, 8), "input_shape must be"),
    ((3, 1.5, 8), "input_shape must be"), ((3, 2, 2), "fails on an image of (3, 2, 2) at conv"),
])
def test_a_wrong_input_shape_is_refused(shape, words):
    with pytest.raises(ImportRefused) as refused:
        from_module(Recurrent(), shape)
    assert words in str(refused.value)


def test_something_that_is_not_a_module_is_refused():
    with pytest.raises(ImportRefused, match="expected a torch.nn.Module"):
        from_module(lambda x: x, (3, 8, 8))


# -- torchvision by name, with a weights file -----------------------------------------------------


def test_from_torchvision_loads_the_weights_file(tmp_path):
    torch.manual_seed(3)
    source = torchvision.models.squeezenet1_1(weights=None)
    path = tmp_path / "squeezenet.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    result = from_torchvision("squeezenet1_1", path, input_shape=(3, 64, 64))

    assert result.source == "torchvision squeezenet1_1"
    block = by_name(result, "features.3.squeeze")
    torch.testing.assert_close(result.state[f"blocks.{block.id}.conv.weight"],
                               source.state_dict()["features.3.squeeze.weight"])
    model = build_model(result.graph).eval()
    load_matching_weights(model, result.state, result.graph, result.graph)
    assert_same_outputs(source, model, (3, 64, 64))


class Payload:
    def __reduce__(self):
        return (print, ("this file runs code",))


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"),
    (b"\x00not a torch file", "damaged or truncated"),
    ({"weights": [1, 2, 3]}, "holds no state dict"),
    ({"fc.weight": torch.zeros(2, 2)}, "not the weights of torchvision's squeezenet1_1"),
    ({"model": Payload()}, "not a plain checkpoint"),
])
def test_a_bad_weights_file_is_named_with_what_is_wrong(content, words, tmp_path):
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ImportRefused) as refused:
        from_torchvision("squeezenet1_1", path, input_shape=(3, 64, 64))
    assert words in str(refused.value) and str(path) in str(refused.value)


def test_weights_of_another_shape_are_listed(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "ten_classes.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None, num_classes=10).state_dict(), path)
    with pytest.raises(ImportRefused, match=r"classifier.1.weight \(10×512×1×1 in the file, "
                                            r"1000×512×1×1 here\)"):
        from_torchvision("squeezenet1_1", path, input_shape=(3, 64, 64))


def test_an_unknown_torchvision_model_lists_the_models():
    with pytest.raises(ImportRefused) as refused:
        from_torchvision("resnet19")
    assert "no classification model 'resnet19'" in str(refused.value)
    assert "resnet18" in str(refused.value) and "squeezenet1_1" in str(refused.value)


def test_stochastic_depth_is_left_out_with_one_note():
    torch.manual_seed(0)
    module = randomise_norms(torchvision.models.efficientnet_b0(weights=None))
    result, model = rebuilt(module, (3, 32, 32))
    assert_same_outputs(module, model, (3, 32, 32))
    residual = sum(1 for block in module.modules() if getattr(block, "use_res_connect", False))
    (note,) = result.notes
    assert "stochastic depth" in note and f"{residual} places" in note
