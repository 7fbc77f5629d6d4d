"""The `precision` training setting: the project file, the settings form, the command line,
what each choice means on the CPU (and, where there is one, on a CUDA GPU), and the run record.

Which arithmetic a run used is seen from inside: a forward hook on the first convolution
records the dtype of its output in training and in evaluation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cnnstudio.cli import main
from cnnstudio.core.project import ProjectError, load_project, project_to_dict, save_project
from cnnstudio.core.settings import PRECISIONS, TRAINING
from cnnstudio.train import engine
from cnnstudio.train import run_folder as rf
from cnnstudio.train.engine import Trainer, TrainingError, TrainOptions
from cnnstudio.train.events import RunFinished, RunStarted
from cnnstudio.train.precision import Precision, resolve_precision
from tests.train.conftest import mnist_slice, options, tiny_graph, tiny_project

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def traced_run(project, data, run_dir: Path | None = None, **kwargs: Any):
    """Run to the end; returns (trainer, events, {'train': dtypes, 'eval': dtypes}) with the
    dtypes of the first convolution's output, and TF32 as the convolution saw it."""
    trainer = Trainer(project, data, run_dir, **kwargs)
    seen: dict[str, set] = {"train": set(), "eval": set(), "tf32": set()}

    def hook(module, _inputs, output):
        seen["train" if module.training else "eval"].add(output.dtype)
        seen["tf32"].add(torch.backends.cudnn.allow_tf32)

    events = []
    for event in trainer.run():
        if isinstance(event, RunStarted):
            first_conv(trainer.model).register_forward_hook(hook)
        events.append(event)
    assert isinstance(events[-1], RunFinished)
    return trainer, events, seen


@pytest.fixture(scope="module")
def data(mnist_sample):
    return mnist_slice(mnist_sample, 256, 64)


# -- the setting -----------------------------------------------------------------------------


def test_precision_round_trips_through_the_project_file_and_old_files_load_with_auto(tmp_path):
    assert TRAINING.param("precision").choices == PRECISIONS
    assert TRAINING.defaults()["precision"] == "auto"
    path = tmp_path / "net.cnnproj"
    save_project(tiny_project(precision="bf16"), path)
    assert json.loads(path.read_text())["training"]["precision"] == "bf16"
    assert load_project(path).training["precision"] == "bf16"

    old = project_to_dict(tiny_project(precision="float16"))  # a file from before the setting
    del old["training"]["precision"]
    path.write_text(json.dumps(old))
    assert load_project(path).training["precision"] == "auto"

    old["training"]["precision"] = "fp64"
    path.write_text(json.dumps(old))
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    assert caught.value.problems == [
        "training.precision: expected one of 'auto', 'float32', 'float16', 'bf16', got 'fp64'"]


def test_an_unknown_precision_is_a_clear_error(data):
    with pytest.raises(TrainingError,
                       match="training setting precision: expected one of 'auto', 'float32'"):
        TrainOptions.from_settings({"precision": "half"})
    finished = engine.train(tiny_project(), data, options=options(precision="half"))
    assert finished.status == "failed"
    assert finished.message == "unknown precision 'half'; use auto, float32, float16, bf16"


# -- what each choice does on the CPU --------------------------------------------------------


def test_auto_is_float32_on_the_cpu(data, tmp_path):
    assert resolve_precision("auto", torch.device("cpu")).resolved == "float32"
    trainer, events, seen = traced_run(tiny_project(), data, tmp_path / "run",
                                       options=options(device="cpu"))
    assert events[-1].status == "completed", events[-1].message
    assert seen["train"] == seen["eval"] == {torch.float32}
    assert not any("precision" in note for note in events[0].notes)
    final = json.loads((tmp_path / "run" / rf.FINAL).read_text())
    assert final["precision"] == {"requested": "auto", "resolved": "float32"}


def test_bf16_on_the_cpu_trains_in_bfloat16_with_float32_weights(data, tmp_path):
    trainer, events, seen = traced_run(tiny_project(), data, tmp_path / "run",
                                       options=options(device="cpu", precision="bf16",
                                                       epochs=2, learning_rate=3e-3))
    finished = events[-1]
    assert finished.status == "completed", finished.message
    assert seen["train"] == seen["eval"] == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    losses = [e.train_loss for e in finished.history]
    assert all(math.isfinite(v) for v in losses) and losses[1] < losses[0]
    (note,) = [n for n in events[0].notes if "precision" in n]
    assert "bf16 → bfloat16" in note and "slower than float32" in note
    final = json.loads((tmp_path / "run" / rf.FINAL).read_text())
    assert final["precision"] == {"requested": "bf16", "resolved": "bfloat16"}
    assert note in json.loads((tmp_path / "run" / rf.DATA).read_text())["notes"]


def test_float32_has_no_autocast(data):
    _, events, seen = traced_run(tiny_project(), data,
                                 options=options(device="cpu", precision="float32"))
    assert events[-1].status == "completed"
    assert seen["train"] == seen["eval"] == {torch.float32}


def test_float16_on_the_cpu_is_refused_before_the_run_folder_is_made(data, tmp_path):
    finished = engine.train(tiny_project(), data, tmp_path / "run",
                            options=options(device="cpu", precision="float16"))
    assert finished.status == "failed"
    assert finished.message == ("precision float16 needs a CUDA GPU and this run is on cpu: "
                                "choose precision auto, float32 or bf16")
    assert not (tmp_path / "run").exists()


def test_mps_refuses_float16_and_bf16():
    mps = torch.device("mps")  # resolving touches no device
    assert resolve_precision("auto", mps).resolved == "float32"
    with pytest.raises(ValueError, match="float16 needs a CUDA GPU.*choose precision auto or "
                                         "float32$"):
        resolve_precision("float16", mps)
    with pytest.raises(ValueError, match="bf16 runs on a CUDA GPU or the CPU, not on mps"):
        resolve_precision("bf16", mps)


def test_loss_scaling_measures_unscaled_gradients_and_resumes_with_its_scale(
        data, tmp_path, monkeypatch):
    """float16 with a GradScaler, run on the CPU (torch's CPU autocast knows float16, the
    engine refuses it only because it is slow there): the gradient norms of training health
    are those of the true gradients, and the loss scale travels with the checkpoint."""
    monkeypatch.setattr(engine, "resolve_precision",
                        lambda requested, device: Precision(requested, "float16", device.type))
    project = tiny_project(tiny_graph(before_output=[("Dense", {"units": 10})]))
    steps = math.ceil(data.num_train / 64)
    trainer, events, seen = traced_run(project, data, tmp_path / "run",
                                       options=options(device="cpu", precision="float16",
                                                       log_every=steps + 1))
    assert events[-1].status == "completed", events[-1].message
    assert seen["train"] == {torch.float16}
    assert trainer.scaler is not None and trainer.scaler.get_scale() > 1
    (epoch,) = events[-1].history
    for bid, norm in epoch.grad_norms.items():  # one report: the last step's gradients
        grads = [p.grad for name, p in trainer.model.named_parameters()
                 if name.startswith(f"blocks.{bid}.")]
        assert norm == pytest.approx(math.sqrt(sum(float(g.pow(2).sum()) for g in grads)),
                                     rel=1e-4)
        assert norm < 100  # a scaled gradient would be tens of thousands of times larger
    saved = torch.load(tmp_path / "run" / rf.CHECKPOINT, weights_only=True)
    assert saved["scaler"]["scale"] == trainer.scaler.get_scale()

    resumed = Trainer(project, data, tmp_path / "run", resume=True,
                      options=options(device="cpu", precision="float16", epochs=2))
    for event in resumed.run():
        if isinstance(event, RunStarted):
            assert resumed.scaler.get_scale() == saved["scaler"]["scale"]
    assert event.status == "completed" and event.epochs_completed == 2


# -- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("cli")
    npz = folder / "tiny.npz"
    np.savez(npz, x=data.train_x[:, 0], y=data.train_y)
    project = folder / "tiny.cnnproj"
    save_project(tiny_project(), project)
    return project, f"npz:{npz}"


def cli(capsys, cli_inputs, out: Path, *args: str) -> tuple[int, str, str]:
    project, spec = cli_inputs
    code = main(["train", str(project), "--dataset", spec, "--epochs", "1", "--device", "cpu",
                 *args, "--out", str(out)])
    printed, errors = capsys.readouterr()
    return code, printed, errors


def test_the_precision_flag_reaches_the_run_record(capsys, cli_inputs, tmp_path):
    code, printed, errors = cli(capsys, cli_inputs, tmp_path / "run", "--precision", "bf16")
    assert code == 0, errors
    assert "note: mixed precision bf16 → bfloat16 (autocast)" in printed
    assert load_project(tmp_path / "run" / rf.PROJECT).training["precision"] == "bf16"
    final = json.loads((tmp_path / "run" / rf.FINAL).read_text())
    assert final["precision"] == {"requested": "bf16", "resolved": "bfloat16"}


@pytest.mark.parametrize("value, code, message", [
    ("fp64", 2, "argument --precision: invalid choice: 'fp64'"),
    ("float16", 1, "precision float16 needs a CUDA GPU and this run is on cpu"),
])
def test_a_bad_precision_flag_gives_a_message(capsys, cli_inputs, tmp_path, value, code,
                                              message):
    found, _, errors = cli(capsys, cli_inputs, tmp_path / "run", "--precision", value)
    assert found == code and message in errors and "Traceback" not in errors
    assert not (tmp_path / "run").exists()


# -- on a CUDA GPU ---------------------------------------------------------------------------


@needs_cuda
def test_auto_on_a_gpu_trains_in_bfloat16(data, tmp_path):
    trainer, events, seen = traced_run(tiny_project(), data, tmp_path / "run",
                                       options=options(device="cuda"))
    assert events[-1].status == "completed", events[-1].message
    assert seen["train"] == seen["eval"] == {torch.bfloat16}
    assert trainer.scaler is None
    assert any("mixed precision auto → bfloat16" in note for note in events[0].notes)
    final = json.loads((tmp_path / "run" / rf.FINAL).read_text())
    assert final["precision"] == {"requested": "auto", "resolved": "bfloat16"}


@needs_cuda
def test_float32_on_a_gpu_is_float32_without_tf32(data):
    before = torch.backends.cudnn.allow_tf32
    _, events, seen = traced_run(tiny_project(), data,
                                 options=options(device="cuda", precision="float32"))
    assert events[-1].status == "completed", events[-1].message
    assert seen["train"] == seen["eval"] == {torch.float32}
    assert seen["tf32"] == {False}
    assert torch.backends.cudnn.allow_tf32 == before  # restored after each step


@needs_cuda
def test_float16_on_a_gpu_scales_the_loss_and_reports_true_gradient_norms(data):
    project = tiny_project(tiny_graph(before_output=[("Dense", {"units": 10})]))
    steps = math.ceil(data.num_train / 64)
    trainer, events, seen = traced_run(project, data, options=options(
        device="cuda", precision="float16", log_every=steps + 1))
    assert events[-1].status == "completed", events[-1].message
    assert seen["train"] == {torch.float16}
    assert trainer.scaler is not None and trainer.scaler.get_scale() > 1
    (epoch,) = events[-1].history
    assert epoch.grad_norms
    for bid, norm in epoch.grad_norms.items():  # fused Adam: .grad is unscaled by hand
        grads = [p.grad for name, p in trainer.model.named_parameters()
                 if name.startswith(f"blocks.{bid}.")]
        assert norm == pytest.approx(math.sqrt(sum(float(g.pow(2).sum()) for g in grads)),
                                     rel=1e-4)
