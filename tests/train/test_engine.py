"""The training engine: events, run folder, repeatability, control, failures, losses, schedules.

Everything trains on slices of the bundled MNIST sample with tiny networks (conftest.py), so
the whole file runs in well under a minute on two CPU cores; one test (keras-mnist on 2,000
images) checks that real learning happens.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnstudio.core.project import Project, load_project
from cnnstudio.core.templates import new_project
from cnnstudio.nn import build_model
from cnnstudio.train import run_folder as rf
from cnnstudio.train import warmup
from cnnstudio.train.data import StreamingDataset, load_dataset
from cnnstudio.train.engine import Trainer, TrainingError, pick_device, train
from cnnstudio.train.events import (
    EpochEnded,
    RunStarted,
    StateChanged,
    StepProgress,
    TrainingControl,
)
from cnnstudio.train.transfer import freeze_all_but_last, set_trainable
from tests.train.conftest import (
    MNIST_SHAPE,
    mnist_slice,
    options,
    run,
    tiny_graph,
    tiny_project,
)

METRIC_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds",
               "images_per_s"}


def block_id(project: Project, name: str) -> str:
    block = project.graph.find(name)
    assert block is not None, name
    return block.id


def block_state(weights: dict[str, torch.Tensor], bid: str) -> dict[str, torch.Tensor]:
    prefix = f"blocks.{bid}."
    found = {k: v for k, v in weights.items() if k.startswith(prefix)}
    assert found, f"no tensors for block {bid}"
    return found


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def initial_model(project: Project, seed: int) -> torch.nn.Module:
    """The engine's starting weights: the model built right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return build_model(project.graph)


def normalised(data, x: np.ndarray) -> torch.Tensor:
    mean = torch.as_tensor(data.mean).view(1, -1, 1, 1)
    std = torch.as_tensor(data.std).view(1, -1, 1, 1)
    return (torch.from_numpy(x).float() / 255 - mean) / std


@pytest.fixture(scope="module")
def full_batch(mnist_sample):
    """128 training images taken as ONE batch: the first reported loss is the loss of the
    starting weights on all of them, whatever the shuffled order."""
    return mnist_slice(mnist_sample, 128, 64)


# -- 1. events -------------------------------------------------------------------------------


def test_events_arrive_in_order_with_consistent_progress(small_data):
    result = run(tiny_project(), small_data,
                 options=options(epochs=2, batch_size=32, log_every=3))
    events = result.events
    assert isinstance(events[0], RunStarted)
    started = events[0]
    assert (started.epochs, started.start_epoch, started.steps_per_epoch) == (2, 1, 16)
    assert (started.train_count, started.val_count) == (512, 256)
    assert started.classes == tuple(small_data.classes)
    assert result.finished.status == "completed" and result.finished.ok
    assert result.finished.epochs_completed == 2

    # RunStarted, then per epoch: StepProgress..., EpochEnded; then RunFinished
    kinds = [type(e).__name__ for e in events]
    pattern = "RunStarted(StepProgress)+EpochEnded(StepProgress)+EpochEndedRunFinished"
    assert re.fullmatch(pattern, "".join(kinds)), kinds
    assert [e.epoch for e in result.epochs] == [1, 2]

    steps = result.steps
    previous = 0
    for report in steps:
        assert len(report.step_losses) == report.step - previous  # every step since the last
        assert all(math.isfinite(v) for v in report.step_losses)
        assert report.images_per_s > 0
        assert report.learning_rate == pytest.approx(1e-3)
        assert 0 <= report.train_acc <= 1
        previous = report.step
    assert previous == 2 * 16
    # reports every 3 steps and at each epoch's end
    assert [r.epoch_step for r in steps if r.epoch == 1] == [3, 6, 9, 12, 15, 16]
    progress = [r.epoch_progress for r in steps]
    assert all(b > a for a, b in zip(progress, progress[1:]))
    assert progress[-1] == pytest.approx(2.0)
    # ETA = images still to train / measured rate; it falls over the run to 0 at the end
    for r in steps:
        assert r.eta_s == pytest.approx((2 * 16 - r.step) * 32 / r.images_per_s, rel=1e-6)
    etas = [r.eta_s for r in steps]
    assert etas[-1] == 0.0 and etas[0] > 0
    first, second = etas[:len(etas) // 2], etas[len(etas) // 2:]
    assert sum(second) / len(second) < sum(first) / len(first), etas
    # the epoch's mean loss in EpochEnded is the mean of its step losses (full batches)
    for epoch in (1, 2):
        losses = [v for r in steps if r.epoch == epoch for v in r.step_losses]
        assert len(losses) == 16
        assert result.epochs[epoch - 1].train_loss == pytest.approx(np.mean(losses), rel=1e-5)
    assert result.finished.history == tuple(result.epochs)


# -- 2. run folder ---------------------------------------------------------------------------


def test_run_folder_holds_every_file(small_data, tmp_path):
    folder = tmp_path / "run"
    project = tiny_project()
    result = run(project, small_data, folder, options=options(epochs=2))
    assert result.finished.status == "completed"
    assert result.finished.run_dir == str(folder)
    assert result.of(RunStarted)[0].run_dir == str(folder)

    saved = load_project(folder / rf.PROJECT)
    assert [b.type for b in saved.graph.blocks] == [b.type for b in project.graph.blocks]
    model = build_model(saved.graph)
    weights = torch.load(folder / rf.MODEL, weights_only=True)
    model.load_state_dict(weights, strict=True)
    assert_same_weights(weights, result.weights())

    lines = (folder / rf.METRICS).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2]
    for record, ended in zip(records, result.epochs):
        assert set(record) == METRIC_KEYS
        assert record == ended.to_dict()

    final = json.loads((folder / rf.FINAL).read_text(encoding="utf-8"))
    assert final["status"] == "completed"
    assert final["epochs_completed"] == 2
    assert final["val_acc"] == result.finished.val_acc

    data = json.loads((folder / rf.DATA).read_text(encoding="utf-8"))
    assert data["classes"] == small_data.classes
    assert data["mean"] == pytest.approx([float(v) for v in small_data.mean])
    assert data["std"] == pytest.approx([float(v) for v in small_data.std])
    assert data["input_shape"] == list(MNIST_SHAPE)
    assert (data["train_count"], data["val_count"]) == (512, 256)
    assert (folder / rf.CHECKPOINT).exists()
    assert not list(folder.glob(".*.tmp"))  # no leftovers of the atomic writes

    # a second fresh run into the same folder is refused and leaves the folder alone
    before = (folder / rf.MODEL).read_bytes()
    again = train(project, small_data, folder, options=options(epochs=2))
    assert again.status == "failed" and not again.ok
    assert "--resume" in again.message and str(folder) in again.message
    assert (folder / rf.MODEL).read_bytes() == before
    assert json.loads((folder / rf.FINAL).read_text(encoding="utf-8"))["status"] == "completed"


# -- 3. repeatability ------------------------------------------------------------------------


def test_same_seed_gives_identical_weights_and_another_seed_does_not(small_data):
    project = tiny_project()
    chosen = options(epochs=2, augment=("rotate", "flip"), seed=5)
    first = run(project, small_data, options=chosen)
    second = run(project, small_data, options=chosen)
    assert_same_weights(first.weights(), second.weights())
    assert [e.train_loss for e in first.epochs] == [e.train_loss for e in second.epochs]
    other = run(project, small_data, options=options(epochs=2, augment=("rotate", "flip"),
                                                     seed=6))
    assert any(not torch.equal(first.weights()[k], other.weights()[k])
               for k in first.weights())


def test_dropout_runs_are_repeatable(small_data):
    graph = tiny_graph(units=32, before_output=[("Dropout", {"rate": 0.3}),
                                                ("Dense", {"units": 10})])
    project = tiny_project(graph)
    first = run(project, small_data, options=options(seed=2))
    second = run(project, small_data, options=options(seed=2))
    assert_same_weights(first.weights(), second.weights())


# -- 4. stop and resume ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["after_epoch", "mid_epoch"])
def test_stop_then_resume_matches_an_uninterrupted_run(small_data, tmp_path, where):
    project = tiny_project()
    chosen = options(epochs=3, batch_size=64, log_every=2, seed=1)
    whole = run(project, small_data, options=chosen)

    folder = tmp_path / "run"
    control = TrainingControl()

    def stop_early(event):
        if where == "after_epoch" and isinstance(event, EpochEnded) and event.epoch == 1:
            control.stop()
        if where == "mid_epoch" and isinstance(event, StepProgress) and event.epoch == 2 \
                and event.epoch_step >= 4:
            control.stop()

    stopped = run(project, small_data, folder, options=chosen, control=control,
                  on_event=stop_early)
    assert stopped.finished.status == "stopped" and stopped.finished.ok
    assert "epoch 2" in stopped.finished.message
    assert stopped.finished.epochs_completed == 1
    assert (folder / rf.MODEL).exists() and (folder / rf.CHECKPOINT).exists()
    assert json.loads((folder / rf.FINAL).read_text())["status"] == "stopped"
    # model.pt holds the weights at the moment of the stop
    assert_same_weights(torch.load(folder / rf.MODEL, weights_only=True), stopped.weights())
    if where == "after_epoch":  # the stop took effect at the first batch of epoch 2
        assert not [s for s in stopped.steps if s.epoch == 2]

    resumed = run(project, small_data, folder, options=chosen, resume=True)
    assert resumed.finished.status == "completed"
    started = resumed.of(RunStarted)[0]
    assert started.start_epoch == 2
    assert any("resumed after epoch 1" in note for note in started.notes)
    assert [e.epoch for e in resumed.epochs] == [2, 3]
    assert [h.epoch for h in resumed.finished.history] == [1, 2, 3]
    assert resumed.finished.epochs_completed == 3

    assert_same_weights(resumed.weights(), whole.weights())
    assert_same_weights(torch.load(folder / rf.MODEL, weights_only=True), whole.weights())
    records = [json.loads(x) for x in (folder / rf.METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["val_loss"] for r in records] == [e.val_loss for e in whole.epochs]


def test_a_run_stopped_in_its_first_epoch_resumes_from_the_start(small_data, tmp_path):
    project = tiny_project()
    chosen = options(epochs=2, log_every=2)
    folder = tmp_path / "run"
    control = TrainingControl()
    stopped = run(project, small_data, folder, options=chosen, control=control,
                  on_event=lambda e: isinstance(e, StepProgress) and control.stop())
    assert stopped.finished.status == "stopped" and stopped.finished.epochs_completed == 0
    assert not (folder / rf.CHECKPOINT).exists()
    assert train(project, small_data, folder, options=chosen).status == "failed"  # refused
    resumed = run(project, small_data, folder, options=chosen, resume=True)
    assert resumed.finished.status == "completed", resumed.finished.message
    assert any("starts again from epoch 1" in n for n in resumed.of(RunStarted)[0].notes)
    assert_same_weights(resumed.weights(), run(project, small_data, options=chosen).weights())
    records = [json.loads(x) for x in (folder / rf.METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_resume_of_a_finished_run_has_nothing_to_do(small_data, tmp_path):
    folder = tmp_path / "run"
    project = tiny_project()
    assert train(project, small_data, folder, options=options()).status == "completed"
    again = train(project, small_data, folder, options=options(), resume=True)
    assert again.status == "completed" and "already done" in again.message


def test_resume_without_a_checkpoint_fails_clearly(small_data, tmp_path):
    result = train(tiny_project(), small_data, tmp_path / "nothing", options=options(),
                   resume=True)
    assert result.status == "failed"
    assert "project.cnnproj" in result.message and "does not exist" in result.message
    assert not (tmp_path / "nothing").exists()


# -- 5. pause, resume and stop from another thread -------------------------------------------


def _start_in_thread(project, data, control, **kwargs):
    events: list = []
    lock = threading.Lock()
    first_step = threading.Event()
    paused = threading.Event()
    box: dict = {}

    def on_event(event):
        with lock:
            events.append(event)
        if isinstance(event, StepProgress):
            first_step.set()
        if event == StateChanged("paused"):
            paused.set()

    def target():
        box["finished"] = train(project, data, on_event=on_event, control=control, **kwargs)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, events, lock, first_step, paused, box


def test_pause_and_resume_from_another_thread(small_data):
    control = TrainingControl()
    thread, events, lock, first_step, paused, box = _start_in_thread(
        tiny_project(), small_data, control, options=options(epochs=2, batch_size=16,
                                                             log_every=1))
    assert first_step.wait(30), "no progress report"
    control.pause()
    assert paused.wait(10), "the engine did not report the pause"
    assert control.paused
    with lock:
        count = sum(isinstance(e, StepProgress) for e in events)
    time.sleep(0.3)
    with lock:
        assert sum(isinstance(e, StepProgress) for e in events) == count  # nothing while paused
        assert events[-1] == StateChanged("paused")
    assert thread.is_alive()
    control.resume()
    thread.join(60)
    assert not thread.is_alive()
    assert box["finished"].status == "completed"
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states == ["paused", "running"]
    after = events[events.index(StateChanged("running")) + 1:]
    assert any(isinstance(e, StepProgress) for e in after)
    assert sum(isinstance(e, EpochEnded) for e in events) == 2


def test_stop_takes_effect_within_one_batch(small_data):
    control = TrainingControl()
    thread, events, lock, first_step, _, box = _start_in_thread(
        tiny_project(), small_data, control, options=options(epochs=20, batch_size=16,
                                                             log_every=1))
    assert first_step.wait(30), "no progress report"
    control.stop()
    with lock:
        before = sum(isinstance(e, StepProgress) for e in events)
    thread.join(30)
    assert not thread.is_alive()
    after = sum(isinstance(e, StepProgress) for e in events)
    assert after - before <= 1  # at most the batch already under way
    assert box["finished"].status == "stopped"
    assert box["finished"].epochs_completed < 20


def test_stop_while_paused_ends_the_run(small_data):
    control = TrainingControl()
    thread, events, _, first_step, paused, box = _start_in_thread(
        tiny_project(), small_data, control, options=options(epochs=5, batch_size=16,
                                                             log_every=1))
    assert first_step.wait(30)
    control.pause()
    assert paused.wait(10)
    control.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert box["finished"].status == "stopped"
    assert not control.paused


# -- 6. a diverging loss ---------------------------------------------------------------------


def test_diverging_loss_fails_naming_the_step_and_the_process_stays_usable(small_data,
                                                                          tmp_path):
    folder = tmp_path / "run"
    result = run(tiny_project(), small_data, folder,
                 options=options(optimizer="sgd", momentum=0.0, learning_rate=1e6))
    assert result.finished.status == "failed"
    message = result.finished.message
    found = re.search(r"at step (\d+)", message)
    assert found, message
    assert 1 <= int(found.group(1)) <= result.trainer.steps_per_epoch
    assert "lower the learning rate" in message and "1e+06" in message
    assert json.loads((folder / rf.FINAL).read_text())["status"] == "failed"

    fine = train(tiny_project(), small_data, options=options())
    assert fine.status == "completed"
    assert math.isfinite(fine.val_loss)


def test_the_failing_step_number_is_exact(small_data, monkeypatch):
    original = Trainer._output_loss
    calls = {"train": 0}

    def poisoned(self, output_id, values, y, train):
        loss = original(self, output_id, values, y, train)
        if train:
            calls["train"] += 1
            if calls["train"] == 7 + 8:  # global step 15: second epoch (8 steps each), step 7
                return loss * float("nan")
        return loss

    monkeypatch.setattr(Trainer, "_output_loss", poisoned)
    monkeypatch.setitem(warmup.WARMUP_STEPS, "cpu", 0)  # count the run's own steps only
    result = run(tiny_project(), small_data, options=options(epochs=2, log_every=5))
    assert result.finished.status == "failed"
    assert "at step 15 (epoch 2)" in result.finished.message
    assert "nan" in result.finished.message
    assert result.finished.epochs_completed == 1
    # the report window that held the bad step was never yielded
    assert max(s.step for s in result.steps) == 13


# -- 7. early stopping -----------------------------------------------------------------------


def test_early_stopping_when_validation_loss_stops_improving(small_data, tmp_path):
    # a learning rate of 0 leaves the weights, hence the validation loss, exactly as they are
    folder = tmp_path / "run"
    result = run(tiny_project(), small_data, folder,
                 options=options(epochs=5, optimizer="sgd", momentum=0.0, learning_rate=0.0,
                                 early_stopping_patience=1))
    assert result.finished.status == "early_stopped" and result.finished.ok
    assert result.finished.epochs_completed == 2
    assert "after epoch 2" in result.finished.message
    losses = [e.val_loss for e in result.epochs]
    assert losses[0] == losses[1]
    assert json.loads((folder / rf.FINAL).read_text())["status"] == "early_stopped"


def test_early_stopping_counts_epochs_since_the_best(small_data, monkeypatch):
    losses = iter([1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.7])
    monkeypatch.setattr(Trainer, "evaluate", lambda self: (next(losses), 0.5))
    result = run(tiny_project(), small_data,
                 options=options(epochs=7, early_stopping_patience=2))
    assert result.finished.status == "early_stopped"
    assert result.finished.epochs_completed == 6  # best at 4, then 5 and 6 are worse


def test_patience_is_not_reported_on_the_last_epoch(small_data, monkeypatch):
    losses = iter([1.0, 2.0])
    monkeypatch.setattr(Trainer, "evaluate", lambda self: (next(losses), 0.5))
    result = run(tiny_project(), small_data, options=options(epochs=2,
                                                             early_stopping_patience=1))
    assert result.finished.status == "completed"


# -- 8. mismatches between network and data --------------------------------------------------


def test_too_few_outputs_for_the_classes(small_data, tmp_path):
    result = train(tiny_project(tiny_graph(units=5)), small_data, tmp_path / "run",
                   options=options())
    assert result.status == "failed"
    assert "5 class scores" in result.message and "10 classes" in result.message
    assert "Dense block 'fc'" in result.message and "set its units to 10" in result.message
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start


def test_input_shape_mismatch_names_the_shape_to_set(small_data):
    graph = tiny_graph(input_shape=(1, 32, 32))
    result = train(tiny_project(graph), small_data, options=options())
    assert result.status == "failed"
    assert "set the Input block to 1,28,28" in result.message
    graph = tiny_graph(input_shape=(3, 28, 28))
    assert "set the Input block to 1,28,28" in train(tiny_project(graph), small_data,
                                                     options=options()).message


def test_too_small_a_training_split_fails_clearly(mnist_sample):
    data = mnist_slice(mnist_sample, 1, 8)
    result = train(tiny_project(), data, options=options())
    assert result.status == "failed" and "fewer than two per batch" in result.message


# -- 9. real learning and a frozen backbone --------------------------------------------------


@pytest.fixture(scope="module")
def keras_run(mnist_sample, tmp_path_factory):
    """keras-mnist trained one epoch on 2,000 images, in a run folder."""
    folder = tmp_path_factory.mktemp("keras") / "run"
    project = new_project("keras-mnist", MNIST_SHAPE, 10)
    data = mnist_slice(mnist_sample, 2000, 500)
    result = run(project, data, folder,
                 options=options(batch_size=32, learning_rate=2e-3, log_every=20))
    return folder, result


def test_keras_mnist_learns(keras_run):
    _, result = keras_run
    assert result.finished.status == "completed"
    assert result.finished.val_acc > 0.85
    assert result.epochs[0].train_loss < math.log(10)


def test_frozen_backbone_keeps_its_weights_and_the_last_dense_learns(keras_run, small_data):
    folder, _ = keras_run
    before = torch.load(folder / rf.MODEL, weights_only=True)
    project = new_project("keras-mnist", MNIST_SHAPE, 10)
    changed = freeze_all_but_last(project.graph)
    assert changed
    tuned = run(project, small_data, init_from=folder,
                options=options(learning_rate=1e-2, seed=4))
    assert tuned.finished.status == "completed"
    assert "loaded 5 of 5 weighted blocks" in tuned.of(RunStarted)[0].notes
    after = tuned.weights()
    for name in ("conv1", "conv2", "conv3", "fc1"):
        bid = block_id(project, name)
        assert_same_weights(block_state(before, bid), block_state(after, bid))
    last = block_id(project, "fc2")
    assert not torch.equal(block_state(before, last)[f"blocks.{last}.linear.weight"],
                           block_state(after, last)[f"blocks.{last}.linear.weight"])
    # fine-tuning started from the first run's weights, not from random ones
    assert tuned.epochs[0].val_acc > 0.85


def _batchnorm_graph():
    graph = tiny_graph()
    conv = graph.find("conv").id
    pool = graph.find("pool").id
    edge = next(e for e in graph.edges if e.src == conv and e.dst == pool)
    graph.disconnect(edge)
    norm = graph.add_block("BatchNorm", {}, name="bn")
    graph.connect(conv, norm.id)
    graph.connect(norm.id, pool)
    return graph, norm.id


@pytest.mark.parametrize("frozen", [True, False])
def test_frozen_batchnorm_keeps_its_running_statistics(small_data, frozen):
    graph, norm = _batchnorm_graph()
    if frozen:
        set_trainable(graph, [norm], False)
    project = tiny_project(graph)
    start = {k: v.clone() for k, v in initial_model(project, 0).state_dict().items()}
    result = run(project, small_data, options=options(seed=0, learning_rate=1e-2))
    assert result.finished.status == "completed"
    after = result.weights()
    norm_tensors = block_state(after, norm)
    assert any(k.endswith("running_mean") for k in norm_tensors)
    same = all(torch.equal(v, start[k]) for k, v in norm_tensors.items())
    assert same == frozen
    conv = graph.find("conv").id
    assert not torch.equal(after[f"blocks.{conv}.conv.weight"],
                           start[f"blocks.{conv}.conv.weight"])


# -- 10. auxiliary outputs -------------------------------------------------------------------


def test_inception_small_trains_with_weighted_auxiliary_loss(mnist_sample, monkeypatch):
    project = new_project("inception-small", MNIST_SHAPE, 10)
    outputs = {b.id: b.params["loss_weight"] for b in project.graph.blocks
               if b.type == "Output"}
    assert sorted(outputs.values()) == [0.3, 0.7]
    seen: list[tuple[str, bool, float]] = []
    original = Trainer._output_loss

    def recording(self, output_id, values, y, train):
        loss = original(self, output_id, values, y, train)
        seen.append((output_id, train, float(loss.detach())))
        return loss

    monkeypatch.setattr(Trainer, "_output_loss", recording)
    monkeypatch.setitem(warmup.WARMUP_STEPS, "cpu", 0)  # count the run's own steps only
    data = mnist_slice(mnist_sample, 256, 64)
    result = run(project, data, options=options(batch_size=32, log_every=1))
    assert result.finished.status == "completed"
    assert math.isfinite(result.finished.val_loss)

    training = [(o, v) for o, t, v in seen if t]
    assert len(training) == 2 * 8  # both outputs, 8 steps
    assert {o for o, _ in training} == set(outputs)
    assert {o for o, t, _ in seen if not t} == {result.trainer.model.main_output_id}
    losses = [s.step_losses[0] for s in result.steps]
    for step, reported in enumerate(losses):
        parts = dict(training[2 * step:2 * step + 2])
        expected = sum(outputs[o] * parts[o] for o in outputs)
        assert reported == pytest.approx(expected, rel=1e-5)
        assert reported != pytest.approx(sum(parts.values()), rel=1e-3)


# -- 11. L1 and L2 penalties -----------------------------------------------------------------


@pytest.mark.parametrize("penalty, strength, norm", [("l2", 0.2, 2), ("l1", 0.01, 1)])
def test_weight_penalty_shrinks_the_dense_weights(small_data, penalty, strength, norm):
    def dense_norm(params):
        project = tiny_project(tiny_graph(dense=params))
        result = run(project, small_data, options=options(epochs=2, optimizer="sgd",
                                                          momentum=0.0, learning_rate=0.05))
        assert result.finished.status == "completed"
        bid = block_id(project, "fc")
        return float(result.weights()[f"blocks.{bid}.linear.weight"].norm(p=norm)), result

    plain, plain_run = dense_norm({})
    penalised, penalised_run = dense_norm({penalty: strength})
    assert penalised < 0.9 * plain
    # the penalty is part of the reported training loss
    assert penalised_run.steps[0].step_losses[0] > plain_run.steps[0].step_losses[0]


# -- 12. optimisers and schedules ------------------------------------------------------------


@pytest.mark.parametrize("settings", [
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "learning_rate": 0.02},
    {"optimizer": "rmsprop", "momentum": 0.5, "learning_rate": 1e-3},
    {"optimizer": "adam", "learning_rate": 1e-3},
    {"optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 0.01},
])
def test_every_optimizer_trains(small_data, settings):
    project = tiny_project()
    start = initial_model(project, 0).state_dict()
    result = run(project, small_data, options=options(**settings))
    assert result.finished.status == "completed"
    assert math.isfinite(result.finished.val_loss)
    assert result.finished.val_acc > 0.3
    assert type(result.trainer.optimizer).__name__.lower() == settings["optimizer"]
    weights = result.weights()
    assert all(not torch.equal(weights[k], start[k]) for k in weights)


def test_nesterov_without_momentum_is_refused(small_data):
    result = train(tiny_project(), small_data,
                   options=options(optimizer="sgd", momentum=0.0, nesterov=True))
    assert result.status == "failed" and "Nesterov" in result.message


def _rates(small_data, **settings) -> list[tuple[int, float]]:
    result = run(tiny_project(), small_data,
                 options=options(epochs=2, log_every=1, learning_rate=0.01, **settings))
    assert result.finished.status == "completed"
    assert len(result.steps) == 16
    return [(s.epoch, s.learning_rate) for s in result.steps]


def test_constant_schedule(small_data):
    assert {lr for _, lr in _rates(small_data, schedule="constant")} == {0.01}


def test_step_schedule_drops_by_gamma_after_step_size_epochs(small_data):
    rates = _rates(small_data, schedule="step", step_size=1, gamma=0.5)
    assert {lr for epoch, lr in rates if epoch == 1} == {0.01}
    assert [lr for epoch, lr in rates if epoch == 2] == [pytest.approx(0.005)] * 8


def test_cosine_schedule_decreases(small_data):
    rates = [lr for _, lr in _rates(small_data, schedule="cosine")]
    assert rates[0] == pytest.approx(0.01)
    assert all(b < a for a, b in zip(rates, rates[1:]))
    assert rates[-1] < 0.001


def test_one_cycle_schedule_rises_then_falls(small_data):
    rates = [lr for _, lr in _rates(small_data, schedule="one_cycle")]
    peak = int(np.argmax(rates))
    assert 0 < peak < len(rates) - 1
    assert rates[peak] == pytest.approx(0.01, rel=0.05)
    assert all(b > a for a, b in zip(rates[:peak], rates[1:peak + 1]))
    assert all(b < a for a, b in zip(rates[peak:], rates[peak + 1:]))
    assert rates[0] < 0.01 / 5 and rates[-1] < 0.01 / 5


# -- 13. MSE loss ----------------------------------------------------------------------------


def test_mse_loss_is_half_the_summed_squared_error(full_batch):
    project = tiny_project()
    result = run(project, full_batch, options=options(loss="mse", batch_size=128, log_every=1,
                                                     channels_last=False, precision="float32"))
    assert result.finished.status == "completed"
    reported = result.steps[0].step_losses[0]
    with torch.no_grad():
        p = initial_model(project, 0)(normalised(full_batch, full_batch.train_x)).softmax(1)
    expected = F.one_hot(torch.from_numpy(full_batch.train_y), 10).float()
    manual = float((0.5 * ((expected - p) ** 2).sum(dim=1)).mean())
    assert reported == pytest.approx(manual, rel=1e-5)
    assert 0 < reported < 1  # ½Σ(t − p)² ≤ 1 for probabilities; cross-entropy would be ~2.3


def test_mse_learns(small_data):
    result = run(tiny_project(), small_data,
                 options=options(loss="mse", epochs=3, batch_size=32, learning_rate=3e-3))
    assert result.finished.status == "completed"
    losses = [e.train_loss for e in result.epochs]
    assert losses[-1] < losses[0]
    assert result.finished.val_acc > 0.6


# -- 14. label smoothing ---------------------------------------------------------------------


def test_label_smoothing_changes_the_training_loss_but_not_the_validation_loss(full_batch):
    project = tiny_project()

    def frozen_run(smoothing):  # SGD at rate 0: the starting weights throughout
        return run(project, full_batch, options=options(
            batch_size=128, log_every=1, optimizer="sgd", momentum=0.0, learning_rate=0.0,
            label_smoothing=smoothing, channels_last=False, precision="float32"))

    plain, smoothed = frozen_run(0.0), frozen_run(0.2)
    model = initial_model(project, 0).eval()
    with torch.no_grad():
        logits = model(normalised(full_batch, full_batch.train_x))
        val_logits = model(normalised(full_batch, full_batch.val_x))
    y = torch.from_numpy(full_batch.train_y)
    assert plain.steps[0].step_losses[0] == pytest.approx(float(F.cross_entropy(logits, y)),
                                                          rel=1e-5)
    assert smoothed.steps[0].step_losses[0] == pytest.approx(
        float(F.cross_entropy(logits, y, label_smoothing=0.2)), rel=1e-5)
    assert smoothed.steps[0].step_losses[0] != pytest.approx(plain.steps[0].step_losses[0],
                                                             rel=1e-3)
    val_loss = float(F.cross_entropy(val_logits, torch.from_numpy(full_batch.val_y)))
    assert plain.finished.val_loss == pytest.approx(val_loss, rel=1e-5)
    assert smoothed.finished.val_loss == pytest.approx(val_loss, rel=1e-5)


# -- 15. softmax before the Output -----------------------------------------------------------


def test_softmax_before_output_is_not_applied_twice(full_batch, small_data):
    project = tiny_project(tiny_graph(before_output=[("Activation", {"function": "softmax"})]))
    first = run(project, full_batch, options=options(batch_size=128, log_every=1,
                                                    channels_last=False, precision="float32"))
    with torch.no_grad():
        p = initial_model(project, 0)(normalised(full_batch, full_batch.train_x))
    assert torch.allclose(p.sum(dim=1), torch.ones(len(p)))  # the model outputs probabilities
    manual = float(F.nll_loss(p.log(), torch.from_numpy(full_batch.train_y)))
    assert first.steps[0].step_losses[0] == pytest.approx(manual, rel=1e-5)

    result = run(project, small_data, options=options(epochs=3, batch_size=32,
                                                      learning_rate=3e-3))
    assert result.finished.status == "completed"
    losses = [e.train_loss for e in result.epochs]
    assert all(math.isfinite(v) for v in losses)
    assert losses[2] < losses[1] < losses[0]
    assert losses[2] < 1.0  # a double softmax would stay near ln 10 ≈ 2.3
    assert result.finished.val_acc > 0.7


# -- 16. device ------------------------------------------------------------------------------


def test_pick_device():
    if not torch.cuda.is_available():
        mps = getattr(torch.backends, "mps", None)
        if not (mps and mps.is_available()):
            assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(TrainingError, match="unknown device 'tpu'"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_asking_for_a_missing_gpu_is_a_clear_error(small_data):
    with pytest.raises(TrainingError, match="no CUDA GPU.*--device auto or cpu"):
        pick_device("cuda")
    result = train(tiny_project(), small_data, options=options(device="cuda"))
    assert result.status == "failed" and "no CUDA GPU" in result.message


# -- 17. streaming from a folder -------------------------------------------------------------


def _write_folder(root: Path, per_class: int = 30) -> None:
    rng = np.random.default_rng(0)
    for k, name in enumerate(["left", "right"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (28, 28), dtype=np.uint8)
            image[:, :14] += 150 if k == 0 else 0
            image[:, 14:] += 150 if k == 1 else 0
            Image.fromarray(image, mode="L").save(root / name / f"{i:03d}.png")


def test_streaming_folder_dataset_trains(tmp_path):
    _write_folder(tmp_path / "images")
    data = load_dataset(f"folder:{tmp_path / 'images'}", MNIST_SHAPE, memory_limit_bytes=1)
    assert isinstance(data, StreamingDataset) and data.streaming
    assert data.classes == ["left", "right"]
    project = tiny_project(tiny_graph(units=2))
    result = run(project, data, tmp_path / "run",
                 options=options(epochs=2, batch_size=16, learning_rate=1e-2))
    assert result.finished.status == "completed", result.finished.message
    started = result.of(RunStarted)[0]
    assert (started.train_count, started.val_count) == (data.num_train, data.num_val)
    assert started.steps_per_epoch == math.ceil(data.num_train / 16)
    assert sum(len(s.step_losses) for s in result.steps) == 2 * started.steps_per_epoch
    assert result.finished.val_acc > 0.8  # the two classes are easy to tell apart
    assert (tmp_path / "run" / rf.MODEL).exists()


# -- gradient norms per block (training health) --------------------------------------------


def test_epoch_gradient_norms_per_block_match_the_last_steps_gradients(small_data):
    graph = tiny_graph(before_output=[("Dense", {"units": 10})])
    set_trainable(graph, [graph.find("conv").id], False)  # a frozen block has no gradient
    project = tiny_project(graph)
    steps = math.ceil(small_data.num_train / 64)
    # one report per epoch (log_every >= steps): the norm is the last step's gradients'
    result = run(project, small_data, options=options(log_every=steps + 1))
    (epoch,) = result.epochs
    fc, extra = graph.find("fc").id, graph.find("extra0").id
    assert set(epoch.grad_norms) == {fc, extra}
    for bid in (fc, extra):
        grads = [p.grad for name, p in result.trainer.model.named_parameters()
                 if name.startswith(f"blocks.{bid}.")]
        expected = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
        assert epoch.grad_norms[bid] == pytest.approx(expected, rel=1e-5)
    assert "grad_norms" not in epoch.to_dict()  # a live view: metrics.jsonl is unchanged
