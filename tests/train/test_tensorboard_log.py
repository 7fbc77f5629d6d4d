"""TensorBoard logging of a run (train/tensorboard_log.py): real tiny runs, the event files read
back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

from cnnstudio.core.graph import Graph
from cnnstudio.train import tensorboard_log as tb
from cnnstudio.train.engine import Trainer
from cnnstudio.train.events import EpochEnded, RunStarted
from cnnstudio.train.run_folder import MARKER, METRICS
from cnnstudio.train.time_shares import PHASES
from tests.train.conftest import options, run, tiny_graph, tiny_project


def read_log(folder: Path) -> EventAccumulator:
    """Every event file in `folder`, as TensorBoard reads it (nothing sampled away)."""
    log = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    log.Reload()
    return log


def metrics_history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


def test_a_logged_run_writes_the_metrics_graph_and_filters(small_data, tmp_path):
    out = tmp_path / "run"
    result = run(tiny_project(), small_data, out, options=options(epochs=2, tensorboard=True))
    assert result.finished.status == "completed" and result.finished.warnings == ()
    assert not [t for t in threading.enumerate() if isinstance(t, _AsyncWriterThread)]  # closed

    log = read_log(out / tb.FOLDER)
    tags = log.Tags()
    names = {b.id: b.name for b in result.trainer.project.graph.blocks}
    expected = {*tb.SCALAR_TAGS, tb.LEARNING_RATE_TAG,
                *(tb.TIME_SHARE_TAG + phase for phase in PHASES),
                *(tb.GRADIENT_NORM_TAG + names[b] for b in result.epochs[0].grad_norms)}
    assert set(tags["scalars"]) == expected
    history = metrics_history(out)
    assert [h["epoch"] for h in history] == [1, 2]
    for tag, key in tb.SCALAR_TAGS.items():
        logged = [(s.step, s.value) for s in log.Scalars(tag)]
        assert [step for step, _ in logged] == [1, 2], tag
        assert [v for _, v in logged] == pytest.approx([h[key] for h in history], rel=1e-6), tag
    last_rate = [s.learning_rate for s in result.steps if s.epoch_step == s.steps_per_epoch]
    assert [s.value for s in log.Scalars(tb.LEARNING_RATE_TAG)] == pytest.approx(last_rate)
    for epoch, event in zip((1, 2), result.epochs, strict=True):
        shares = [log.Scalars(tb.TIME_SHARE_TAG + p)[epoch - 1].value for p in PHASES]
        assert sum(shares) == pytest.approx(1.0, abs=1e-5)
        for block_id, norm in event.grad_norms.items():
            value = log.Scalars(tb.GRADIENT_NORM_TAG + names[block_id])[epoch - 1].value
            assert value == pytest.approx(norm, rel=1e-6)

    parameters = {b: 0 for b in result.trainer.grad_blocks}
    for index, parameter in result.trainer.grad_params:
        parameters[result.trainer.grad_blocks[index]] += parameter.numel()
    assert set(tags["histograms"]) == {tb.GRADIENTS_TAG + names[b] for b in parameters}
    for block_id, count in parameters.items():
        histograms = log.Histograms(tb.GRADIENTS_TAG + names[block_id])
        assert [h.step for h in histograms] == [1, 2]
        last = histograms[-1].histogram_value  # the last step's gradients, every one counted
        assert last.num == count and sum(last.bucket) == count
        assert last.min < 0 < last.max

    assert tags["graph"] is True
    assert "conv" in str(log.Graph())  # the traced network holds its convolution
    assert tags["images"] == [tb.FILTERS_TAG + "conv"]
    images = log.Images(tb.FILTERS_TAG + "conv")
    assert [i.step for i in images] == [1, 2]
    assert images[0].width > 3 * 4 and images[0].height > 3  # four 3×3 filters, enlarged


def test_the_filter_picture_is_the_first_convolution_stretched_per_filter(small_data):
    graph = tiny_graph()
    result = run(tiny_project(graph), small_data, options=options(epochs=1))
    name, picture = tb.first_conv_filters(result.trainer.model, graph)
    assert name == "conv" and picture.dtype == np.uint8
    assert picture.min() == 0 and picture.max() == 255  # each filter from black to white

    no_conv = Graph()
    no_conv.chain([("Input", {"channels": 1, "height": 28, "width": 28}, "input"),
                   ("Flatten", {}, "flatten"), ("Dense", {"units": 10}, "fc"),
                   ("Output", {}, "output")])
    dense_only = run(tiny_project(no_conv), small_data, options=options(epochs=1))
    assert tb.first_conv_filters(dense_only.trainer.model, no_conv) is None


def test_off_by_default_no_folder_appears(small_data, tmp_path):
    out = tmp_path / "run"
    result = run(tiny_project(), small_data, out, options=options(epochs=1))
    assert result.finished.status == "completed"
    assert not (out / tb.FOLDER).exists()


def test_logging_does_not_change_the_run(small_data, tmp_path):
    plain = run(tiny_project(), small_data, tmp_path / "a", options=options(epochs=2))
    logged = run(tiny_project(), small_data, tmp_path / "b",
                 options=options(epochs=2, tensorboard=True))
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert ([[getattr(e, k) for k in keys] for e in plain.epochs]
            == [[getattr(e, k) for k in keys] for e in logged.epochs])


def test_a_folder_that_cannot_be_made_gives_a_note_and_the_run_finishes(small_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"format": "cnnstudio-run", "version": 1}))
    (out / tb.FOLDER).write_text("a file where the log folder should go")
    result = run(tiny_project(), small_data, out, options=options(epochs=2, tensorboard=True))
    assert result.finished.status == "completed" and result.finished.epochs_completed == 2
    notes = [n for n in result.of(RunStarted)[0].notes if "TensorBoard" in n]
    assert len(notes) == 1 and "logging is off for this run" in notes[0]
    assert str(out / tb.FOLDER) in notes[0] and "a file of that name is in the way" in notes[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no traceback
def test_a_full_disk_mid_run_stops_logging_with_one_note(small_data, tmp_path):
    """After epoch 1 the event file is replaced by /dev/full: each later write fails with
    ENOSPC, as on a full disk."""
    out = tmp_path / "run"
    folder = out / tb.FOLDER

    def fill_disk(event):
        if isinstance(event, EpochEnded) and event.epoch == 1:
            for path in folder.iterdir():
                path.unlink()
                path.symlink_to("/dev/full")

    result = run(tiny_project(), small_data, out, on_event=fill_disk,
                 options=options(epochs=3, tensorboard=True))
    assert result.finished.status == "completed" and result.finished.epochs_completed == 3
    notes = [w for w in result.finished.warnings if "TensorBoard" in w]
    assert len(notes) == 1
    assert "stopped after epoch 2" in notes[0] and "disk" in notes[0].lower()


def test_a_resumed_run_appends_to_the_log(small_data, tmp_path):
    out = tmp_path / "run"
    first = run(tiny_project(), small_data, out, options=options(epochs=1, tensorboard=True))
    assert first.finished.status == "completed"
    resumed = run(tiny_project(), small_data, out, resume=True,
                  options=options(epochs=2, tensorboard=True))
    assert resumed.finished.status == "completed"
    assert len(list((out / tb.FOLDER).iterdir())) == 2  # one event file per session
    history = metrics_history(out)
    logged = read_log(out / tb.FOLDER).Scalars("loss/validation")
    assert [s.step for s in logged] == [1, 2]
    assert [s.value for s in logged] == pytest.approx([h["val_loss"] for h in history])


class _DictOutput(torch.nn.Module):
    """A network whose output is a dict: TensorBoard's strict tracer refuses it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"scores": self.model(x)}


def test_a_network_that_cannot_be_traced_is_logged_without_its_graph(small_data, tmp_path):
    trainer = Trainer(tiny_project(), small_data, tmp_path / "run",
                      options=options(tensorboard=True))
    trainer.build()
    model, trainer.model = trainer.model, _DictOutput(trainer.model)
    log = tb.TensorBoardLog(trainer)
    started = RunStarted(run_dir=str(tmp_path / "run"), device="cpu", epochs=1, start_epoch=1,
                         steps_per_epoch=8, train_count=512, val_count=256, classes=("0", "1"))
    notes = log.observe(started).notes
    assert len(notes) == 1 and "no graph of this network: tracing it failed" in notes[0]
    trainer.model = model
    log.observe(EpochEnded(epoch=1, train_loss=2.0, train_acc=0.25, val_loss=1.5, val_acc=0.5,
                           seconds=1.0, images_per_s=512.0))
    log.close()
    assert log.notes == []
    written = read_log(tmp_path / "run" / tb.FOLDER)
    assert written.Tags()["graph"] is False
    assert [s.value for s in written.Scalars("accuracy/validation")] == [0.5]
