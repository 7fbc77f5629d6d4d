"""`cnnstudio train` and `cnnstudio export` on the real bundled MNIST sample."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cnnstudio.cli import main
from cnnstudio.core.summary import format_bytes


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    code = main(["train", "--template", "keras-mnist", "--dataset", "mnist-sample",
                 "--epochs", "1", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"project.cnnproj", "model.pt", "checkpoint.pt", "metrics.jsonl", "final.json",
            "data.json"} <= names
    final = json.loads((trained_run / "final.json").read_text())
    assert final["status"] == "completed" and final["val_acc"] > 0.9
    (metrics,) = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert set(metrics) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds",
                            "images_per_s"}


@pytest.mark.slow
@pytest.mark.parametrize("template, goal", [("keras-mnist", 0.98), ("lenet5", 0.97)])
def test_five_epochs_reach_the_accuracy_goal(capsys, tmp_path, template, goal):
    code, out, _ = run(capsys, "train", "--template", template, "--dataset", "mnist-sample",
                       "--epochs", "5", "--out", tmp_path / template)
    assert code == 0, out
    final = json.loads((tmp_path / template / "final.json").read_text())
    assert final["val_acc"] >= goal, final


@pytest.mark.slow
def test_export_onnx_runs_in_onnxruntime(capsys, trained_run, tmp_path):
    import onnxruntime as ort

    from cnnstudio.train.data import load_dataset

    path = tmp_path / "model.onnx"
    code, out, err = run(capsys, "export", trained_run, "--format", "onnx", "--out", path)
    assert code == 0, err
    assert "largest difference of log-probabilities from PyTorch" in out
    assert "Time for one image" not in out  # the benchmark runs only with --bench
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    data = load_dataset("mnist-sample", (1, 28, 28))
    images = data.val_x[:200].astype(np.float32) / 255.0  # a person's pixels in [0, 1]
    (probabilities,) = session.run(None, {session.get_inputs()[0].name: images})
    assert probabilities.shape == (200, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert (probabilities.argmax(axis=1) == data.val_y[:200]).mean() > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("fmt, name", [("torchscript", "model.ts"), ("python", "model.py"),
                                       ("state_dict", "weights.pt")])
def test_other_export_formats(capsys, trained_run, tmp_path, fmt, name):
    code, out, err = run(capsys, "export", trained_run, "--format", fmt, "--out", tmp_path / name)
    assert code == 0, err
    size = (tmp_path / name).stat().st_size
    assert size > 0
    # the size in binary units, labelled as such (the same figure as the export dialog)
    assert f"Wrote {tmp_path / name} ({fmt}, {format_bytes(size)})" in out
    assert re.search(r"\d (KiB|MiB)\)", out), out


@pytest.mark.slow
def test_resume_of_a_finished_run_does_nothing_more(capsys, trained_run):
    code, out, _ = run(capsys, "train", "--resume", "--out", trained_run)
    assert code == 0 and "already done" in out


@pytest.mark.slow
def test_a_second_fresh_run_into_the_same_folder_is_refused(capsys, trained_run):
    code, _, err = run(capsys, "train", "--template", "keras-mnist", "--out", trained_run)
    assert code == 1 and "--resume" in err


@pytest.mark.parametrize("args, message", [
    (["--dataset", "imagenet:x"], "imagenet"),
    (["--dataset", "mnist:{empty}"], "MNIST"),
    (["--dataset", "idx:{empty}/a,{empty}/b"], "{empty}/a"),
    (["--lr", "-1"], "learning rate"),
])
def test_bad_training_input_gives_a_message(capsys, tmp_path, args, message):
    args = [a.format(empty=tmp_path) for a in args]
    code, _, err = run(capsys, "train", "--template", "keras-mnist", *args, "--out",
                       tmp_path / "run")
    assert code == 2
    assert message.format(empty=tmp_path) in err
    assert "Traceback" not in err


def test_weights_go_with_every_template_built_after_torchvision(capsys, tmp_path):
    import torch

    not_squeezenet = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, not_squeezenet)
    code, _, err = run(capsys, "train", "--template", "squeezenet1.1", "--dataset",
                       "mnist-sample", "--weights", not_squeezenet, "--out", tmp_path / "a")
    assert code == 1 and "Traceback" not in err
    assert "also holds fc" in err and "(expected squeezenet1_1-b8a52dc0.pth)" in err
    code, _, err = run(capsys, "train", "--template", "lenet5", "--dataset", "mnist-sample",
                       "--weights", not_squeezenet, "--out", tmp_path / "b")
    assert code == 2 and "alexnet, vgg11, vgg16, resnet18, resnet50" in err


def test_export_of_a_folder_that_is_not_a_run(capsys, tmp_path):
    code, _, err = run(capsys, "export", tmp_path, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 1 and "Traceback" not in err and err.strip()
    assert not (tmp_path / "m.onnx").exists()
