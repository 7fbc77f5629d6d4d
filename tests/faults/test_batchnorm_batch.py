"""BatchNorm with a batch size of 1: found by the analysis, refused by the engine, the command
line and the Training page before any run folder is written, and no partial batch of one image
ever reaches a BatchNorm in training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnstudio.cli import main
from cnnstudio.core.analysis import MIN_NORM_BATCH, training_diagnostics
from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project, save_project
from cnnstudio.train import run_folder as rf
from cnnstudio.train.batches import ResidentBatches, train_steps
from cnnstudio.train.engine import Trainer, train
from tests.train.conftest import (  # noqa: F401 (fixtures used by name)
    mnist_sample,
    mnist_slice,
    one_torch_thread,
    options,
    small_data,
    tiny_graph,
    tiny_project,
)

MESSAGE = "BatchNorm needs batches of at least 2"


def vector_batchnorm_graph(trainable: bool = True) -> Graph:
    """… Flatten → Dense 16 → BatchNorm (on vectors: PyTorch refuses 1 sample) → Dense 10."""
    return tiny_graph(units=16, before_output=[("BatchNorm", {"trainable": trainable}),
                                               ("Dense", {"units": 10})])


def batchnorm_id(graph: Graph) -> str:
    return next(b.id for b in graph.blocks if b.type == "BatchNorm")


# -- the analysis ------------------------------------------------------------------------------


def test_the_diagnostic_names_the_block_and_offers_a_batch_size():
    graph = vector_batchnorm_graph()
    (problem,) = training_diagnostics(graph, batch_size=1)
    assert problem.is_error and problem.code == "batchnorm_batch"
    assert problem.block_id == batchnorm_id(graph)
    assert problem.message.startswith(MESSAGE) and "batch size is 1" in problem.message
    assert "set the batch size to 2 or more" in problem.fix
    assert problem.repair == {"action": "set_setting", "group": "training",
                              "param": "batch_size", "value": MIN_NORM_BATCH}
    assert training_diagnostics(graph, batch_size=2) == []


def test_no_diagnostic_without_batchnorm_or_with_a_frozen_one():
    assert training_diagnostics(tiny_graph(), batch_size=1) == []
    # frozen BatchNorm keeps its running statistics (evaluation mode) while the rest trains
    assert training_diagnostics(vector_batchnorm_graph(trainable=False), batch_size=1) == []


# -- the engine --------------------------------------------------------------------------------


def test_the_engine_refuses_batch_size_1_before_writing(small_data, tmp_path):
    finished = train(tiny_project(vector_batchnorm_graph()), small_data, tmp_path / "run",
                     options=options(batch_size=1))
    assert finished.status == "failed" and MESSAGE in finished.message
    assert "set the batch size to 2 or more" in finished.message
    assert not (tmp_path / "run").exists()


def test_a_frozen_batchnorm_trains_at_batch_size_1(mnist_sample):
    data = mnist_slice(mnist_sample, 24, 8)
    finished = train(tiny_project(vector_batchnorm_graph(trainable=False)), data,
                     options=options(batch_size=1))
    assert finished.status == "completed", finished.message


# -- the last partial batch ---------------------------------------------------------------------


@pytest.mark.parametrize("count, batch, steps", [
    (128, 64, 2), (129, 64, 2), (130, 64, 3), (1, 64, 0), (2, 64, 1), (7, 1, 7),
])
def test_a_remainder_of_one_image_is_not_a_step(count, batch, steps):
    assert train_steps(count, batch) == steps


def test_no_training_batch_holds_a_single_image(mnist_sample):
    data = mnist_slice(mnist_sample, 129, 16)
    batches = ResidentBatches(data, torch.device("cpu"), 64)
    sizes = [len(y) for _, y in batches.train_batches(torch.Generator().manual_seed(0))]
    assert sizes == [64, 64]
    data = mnist_slice(mnist_sample, 131, 16)
    batches = ResidentBatches(data, torch.device("cpu"), 64)
    sizes = [len(y) for _, y in batches.train_batches(torch.Generator().manual_seed(0))]
    assert sizes == [64, 64, 3]


def test_vector_batchnorm_trains_when_the_last_batch_would_hold_one_image(mnist_sample):
    data = mnist_slice(mnist_sample, 65, 16)
    finished = train(tiny_project(vector_batchnorm_graph()), data, options=options(epochs=2))
    assert finished.status == "completed", finished.message


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def project_file(tmp_path):
    path = tmp_path / "bn.cnnproj"
    save_project(Project.new(vector_batchnorm_graph(), name="bn"), path)
    return path


def cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_the_cli_refuses_batch_size_1_and_writes_no_folder(capsys, tmp_path, project_file):
    out = tmp_path / "run"
    code, err = cli(capsys, "train", project_file, "--dataset", "mnist-sample",
                    "--batch-size", "1", "--epochs", "1", "--out", out)
    assert code == 1
    assert MESSAGE in err and "set the batch size to 2 or more" in err
    assert "internal error" not in err and "ValueError" not in err
    assert not out.exists()


def test_the_cli_leaves_an_existing_folder_as_it_was(capsys, tmp_path, project_file):
    out = tmp_path / "run"
    out.mkdir()
    code, err = cli(capsys, "train", project_file, "--dataset", "mnist-sample",
                    "--batch-size", "1", "--out", out)
    assert code == 1 and MESSAGE in err
    assert list(out.iterdir()) == []


def test_an_unexpected_error_in_the_first_epoch_leaves_no_half_written_folder(
        capsys, tmp_path, project_file, monkeypatch):
    """A bug that escapes the engine (here a fault put into the first step) must not leave a
    folder that neither resumes nor exports: what the run wrote is taken back."""
    def broken_epoch(self, epoch):
        raise ValueError("a bug in the training step")
        yield  # a generator, as the real one

    monkeypatch.setattr(Trainer, "_train_epoch", broken_epoch)
    out = tmp_path / "run"
    code, err = cli(capsys, "train", project_file, "--dataset", "mnist-sample",
                    "--epochs", "1", "--out", out)
    assert code == 2 and "internal error" in err
    assert not out.exists()
    out.mkdir()  # a folder that was there before the run is kept, empty as it was
    code, err = cli(capsys, "train", project_file, "--dataset", "mnist-sample", "--epochs", "1",
                    "--out", out)
    assert code == 2 and "internal error" in err
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_failure_after_a_checkpoint_keeps_a_resumable_folder(small_data, tmp_path,
                                                               monkeypatch):
    real_epoch = Trainer._train_epoch

    def second_epoch_breaks(self, epoch):
        if epoch == 2:
            raise ValueError("a bug in epoch 2")
        return (yield from real_epoch(self, epoch))

    monkeypatch.setattr(Trainer, "_train_epoch", second_epoch_breaks)
    project = tiny_project(vector_batchnorm_graph())
    with pytest.raises(ValueError):
        train(project, small_data, tmp_path / "run", options=options(epochs=2))
    assert (tmp_path / "run" / rf.CHECKPOINT).exists()
    monkeypatch.setattr(Trainer, "_train_epoch", real_epoch)
    finished = train(project, small_data, tmp_path / "run", options=options(epochs=2),
                     resume=True)
    assert finished.status == "completed" and finished.epochs_completed == 2
    record = json.loads((tmp_path / "run" / rf.FINAL).read_text())
    assert record["status"] == "completed"
    assert np.isfinite(record["val_loss"])
