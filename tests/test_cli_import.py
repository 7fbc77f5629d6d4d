"""`cnnstudio import`: an ONNX file or a torchvision model to NET.cnnproj + NET.weights.pt."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnstudio.cli import main
from cnnstudio.core.project import load_project
from cnnstudio.nn.build import build_model


class SmallCNN(nn.Module):
    """Conv-BN-ReLU, pooling, a second convolution, global pooling and a classifier."""

    def __init__(self, sine: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)
        self.sine = sine  # torch.sin becomes an ONNX Sin node, which no block stands for

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.conv2(x))
        if self.sine:
            x = torch.sin(x)
        return self.fc(torch.flatten(self.gap(x), 1))


def small_cnn_onnx(folder: Path, name: str = "small.onnx", sine: bool = False
                   ) -> tuple[Path, nn.Module]:
    """A small trained-looking CNN (random BatchNorm statistics) exported to ONNX."""
    torch.manual_seed(0)
    module = SmallCNN(sine).eval()
    with torch.no_grad():
        module.bn1.running_mean.uniform_(-0.5, 0.5)
        module.bn1.running_var.uniform_(0.5, 2.0)
    path = folder / name
    with warnings.catch_warnings():  # the TorchScript-based exporter's deprecation notes
        warnings.simplefilter("ignore", DeprecationWarning)
        # BatchNormalization stays a node of its own (eval mode would fold it into the conv)
        torch.onnx.export(module, (torch.rand(1, 3, 16, 16),), str(path), dynamo=False,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                          input_names=["image"], output_names=["logits"])
    return path, module


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["import", *args])
    out, err = capsys.readouterr()
    return code, out, err


def learnable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def running_statistics(module: nn.Module) -> int:
    return sum(b.numel() for name, b in module.named_buffers() if "running" in name)


def test_an_onnx_file_becomes_a_project_whose_weights_reproduce_the_model(capsys, tmp_path):
    onnx_path, module = small_cnn_onnx(tmp_path)
    target = tmp_path / "out" / "net.cnnproj"
    target.parent.mkdir()
    code, out, err = run(capsys, str(onnx_path), "-o", str(target), "--name", "Small CNN")
    assert code == 0, err
    weights = target.with_name("net.weights.pt")
    assert target.is_file() and weights.is_file()
    project = load_project(target)
    assert project.name == "Small CNN"
    assert project.weights == "net.weights.pt" and Path(project.weights_file()) == weights
    model = build_model(project.graph).eval()
    model.load_state_dict(torch.load(weights, weights_only=True))
    image = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(image), module(image), atol=1e-5)
    assert f"Imported {onnx_path.name}" in out
    assert f"blocks       {len(project.graph):,}" in out
    assert "BatchNorm" in {block.type for block in project.graph.blocks}
    total = learnable(module) + running_statistics(module)
    assert (f"{total:,} = {learnable(module):,} trainable + {running_statistics(module):,} "
            "non-trainable") in out
    assert "5 classes" in out and "MACs" in out
    assert f"Wrote {target}" in out and f"Wrote {weights}" in out


def test_an_existing_project_is_replaced_only_with_force(capsys, tmp_path):
    onnx_path, _ = small_cnn_onnx(tmp_path)
    target = tmp_path / "net.cnnproj"
    target.write_text("mine", encoding="utf-8")
    code, _, err = run(capsys, str(onnx_path), "-o", str(target))
    assert code == 2 and "already exists" in err and "--force" in err
    assert target.read_text(encoding="utf-8") == "mine"
    assert not target.with_name("net.weights.pt").exists()
    code, _, err = run(capsys, str(onnx_path), "-o", str(target), "--force")
    assert code == 0, err
    assert len(load_project(target).graph) > 0


def test_an_existing_weights_file_is_never_replaced_without_force(capsys, tmp_path):
    onnx_path, _ = small_cnn_onnx(tmp_path)
    weights = tmp_path / "net.weights.pt"
    weights.write_bytes(b"someone else's")
    code, _, err = run(capsys, str(onnx_path), "-o", str(tmp_path / "net.cnnproj"))
    assert code == 2 and "net.weights.pt" in err and "already exists" in err
    assert weights.read_bytes() == b"someone else's"
    assert not (tmp_path / "net.cnnproj").exists()


def test_the_default_output_is_the_model_name_in_the_current_folder(capsys, tmp_path,
                                                                     monkeypatch):
    onnx_path, _ = small_cnn_onnx(tmp_path, "tiny.onnx")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, err = run(capsys, str(onnx_path))
    assert code == 0, err
    assert sorted(p.name for p in here.iterdir()) == ["tiny.cnnproj", "tiny.weights.pt"]


def test_torchvision_squeezenet_takes_its_weights_from_a_file(capsys, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    reference = torchvision.models.squeezenet1_1(weights=None).eval()
    weights_file = tmp_path / "squeezenet1_1-b8a52dc0.pth"
    torch.save(reference.state_dict(), weights_file)
    target = tmp_path / "squeeze.cnnproj"
    code, out, err = run(capsys, "--torchvision", "squeezenet1_1", "--weights",
                         str(weights_file), "--input", "3,64,64", "-o", str(target))
    assert code == 0, err
    project = load_project(target)
    model = build_model(project.graph).eval()
    model.load_state_dict(torch.load(target.with_name("squeeze.weights.pt"), weights_only=True))
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(image), reference(image), atol=1e-4)
    assert f"{learnable(reference):,} (all trainable)" in out and "1,000 classes" in out


def test_an_unknown_torchvision_model_is_a_clear_error(capsys, tmp_path):
    code, out, err = run(capsys, "--torchvision", "resnet_nonesuch", "-o",
                         str(tmp_path / "x.cnnproj"))
    assert code == 2 and "resnet_nonesuch" in err
    assert "Traceback" not in err and "internal error" not in err
    assert list(tmp_path.iterdir()) == []


def test_an_unsupported_operation_is_refused_by_name_and_nothing_is_written(capsys, tmp_path):
    onnx_path, _ = small_cnn_onnx(tmp_path, "sine.onnx", sine=True)
    code, out, err = run(capsys, str(onnx_path), "-o", str(tmp_path / "sine.cnnproj"))
    assert code == 2 and out == ""
    assert err.startswith("cnnstudio: error: ") and "Sin" in err
    assert "Traceback" not in err and "internal error" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sine.onnx"]


def test_a_file_that_is_not_onnx_is_a_clear_error(capsys, tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("these are my notes, not a network\n", encoding="utf-8")
    code, _, err = run(capsys, str(text), "-o", str(tmp_path / "notes.cnnproj"))
    assert code == 2 and "notes.onnx" in err
    assert "Traceback" not in err and "internal error" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.onnx"]


@pytest.mark.parametrize("args, message", [
    ((), "name an ONNX file or a torchvision model"),
    (("missing.onnx",), "does not exist"),
    (("--torchvision", "resnet18", "model.onnx"), "not both"),
    (("model.onnx", "--weights", "w.pth"), "--weights goes with --torchvision"),
])
def test_bad_arguments_say_what_to_do(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"")
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err
