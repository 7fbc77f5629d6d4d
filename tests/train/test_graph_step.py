"""The graph-captured training step: what is captured, what trains eagerly and why (any
machine), and on a CUDA GPU that a captured run learns like an eager one, faster."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from cnnstudio.train import graph_step
from cnnstudio.train.engine import Trainer
from cnnstudio.train.events import EpochEnded, RunFinished, RunStarted
from cnnstudio.train.graph_step import CaptureFacts, capture_plan, dropped_images

from .conftest import mnist_slice, options, tiny_graph, tiny_project

CAPTURABLE = CaptureFacts(
    device_type="cuda", distributed=False, streaming=False, train_count=512, batch_size=64,
    epochs=10, optimizer="adam", schedule="cosine", precision="bfloat16",
    augment=("flip", "rotate"), compiled=False,
    block_types=("Conv2D", "Dense", "Dropout", "Input", "Output"))


def test_a_resident_adam_run_on_cuda_is_captured_whole() -> None:
    capture, reason = capture_plan(CAPTURABLE)
    assert capture
    assert "one captured CUDA graph" in reason and "partial" not in reason


def test_the_last_partial_batch_is_left_out_and_said_so() -> None:
    capture, reason = capture_plan(replace(CAPTURABLE, train_count=520))
    assert capture
    assert "the last partial batch (8 images, a different one each epoch) is left out" in reason


@pytest.mark.parametrize(("count", "batch", "dropped"), [
    (512, 64, 0),  # no remainder
    (520, 64, 8),  # a remainder the eager engine trains on
    (513, 64, 0),  # one image: the eager engine drops it too (BatchNorm needs two)
])
def test_dropped_images_are_those_the_eager_engine_trains_on(count: int, batch: int,
                                                             dropped: int) -> None:
    assert dropped_images(count, batch) == dropped


@pytest.mark.parametrize(("change", "words"), [
    ({"device_type": "cpu"}, "needs a CUDA GPU; this run is on cpu"),
    ({"device_type": "mps"}, "this run is on mps"),
    ({"compiled": True}, "torch.compile"),
    ({"distributed": True}, "DDP"),
    ({"streaming": True}, "read from disk"),
    ({"precision": "float16"}, "float16 loss scaling"),
    ({"optimizer": "sgd"}, "sgd trains eagerly"),
    ({"optimizer": "rmsprop"}, "rmsprop trains eagerly"),
    ({"schedule": "one_cycle"}, "one-cycle schedule"),
    ({"augment": ("flip", "grayscale")}, "grayscale"),
    ({"train_count": 40}, "smaller than one batch of 64"),
    ({"epochs": 6}, "the run is short (48 steps)"),
])
def test_what_trains_eagerly_says_why(change: dict, words: str) -> None:
    capture, reason = capture_plan(replace(CAPTURABLE, **change))
    assert not capture
    assert words in reason


def test_a_block_that_refuses_keeps_the_step_eager() -> None:
    capture, reason = capture_plan(CAPTURABLE, refusing={"Dropout": "it reads a host value"})
    assert not capture
    assert reason == "the Dropout block cannot be captured: it reads a host value"


def test_float32_and_adamw_are_captured() -> None:
    capture, reason = capture_plan(replace(CAPTURABLE, precision="float32", optimizer="adamw"))
    assert capture and "AdamW" in reason


def _run(trainer: Trainer) -> tuple[RunStarted, RunFinished]:
    events = list(trainer.run())
    started = next(e for e in events if isinstance(e, RunStarted))
    assert isinstance(events[-1], RunFinished)
    return started, events[-1]


def test_on_the_cpu_capture_is_never_attempted_nor_mentioned(small_data, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a CPU run must not build a captured step")

    monkeypatch.setattr(graph_step.CapturedStep, "__init__", refuse)
    trainer = Trainer(tiny_project(), small_data, options=options(epochs=8, device="cpu"))
    started, finished = _run(trainer)
    assert finished.ok, finished.message
    assert not trainer.capture and trainer.captured is None
    assert trainer.steps_per_epoch == 8  # no batch left out
    said = " ".join(started.notes + started.speed_notes).lower()
    assert "graph" not in said and "captur" not in said and "eagerly" not in said


def test_a_capture_that_raises_falls_back_to_eager_with_the_reason(mnist_sample,
                                                                   monkeypatch) -> None:
    """The plan forced to yes on the CPU: the capture raises (no CUDA stream here), the run
    trains eagerly, its notes say why, and it learns exactly as a plain eager run of the same
    full batches."""
    data = mnist_slice(mnist_sample, 520, 128)  # 8 full batches and 8 images left over
    monkeypatch.setattr(graph_step, "capture_plan", lambda facts: (True, "forced"))
    forced = Trainer(tiny_project(), data, options=options(epochs=7, device="cpu"))
    started, finished = _run(forced)
    assert finished.ok, finished.message
    assert forced.capture and forced.captured is None
    assert forced.steps_per_epoch == 8  # the partial batch was left out for the graph
    assert "forced" not in started.speed_notes  # what a working capture would have said
    failure = next(n for n in started.speed_notes if "could not be captured" in n)
    assert failure.startswith("the training step could not be captured as a CUDA graph "
                              "(capture: ") and failure.endswith("it runs eagerly")
    # the fallback trains like the eager engine on the same 8 full batches per epoch
    monkeypatch.setattr(graph_step, "capture_plan", lambda facts: (False, "off"))
    original = graph_step.plan_run

    def full_batches_only(trainer: Trainer) -> tuple[bool, str]:
        result = original(trainer)
        trainer.batches.steps_per_epoch = trainer.steps_per_epoch = 8
        return result

    monkeypatch.setattr(graph_step, "plan_run", full_batches_only)
    eager = Trainer(tiny_project(), data, options=options(epochs=7, device="cpu"))
    assert _run(eager)[1].ok
    for name, value in forced.model.state_dict().items():
        assert torch.equal(value, eager.model.state_dict()[name]), name


def test_a_checkpoint_of_a_captured_run_steps_on_the_cpu() -> None:
    """Adam's capturable flag comes back with a checkpoint; the CPU has no capturable step."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([weight], lr=0.1, foreach=True)
    optimizer.param_groups[0]["capturable"] = True  # as loaded from a CUDA run's checkpoint
    weight.grad = torch.ones(3)
    with pytest.raises((RuntimeError, AssertionError)):
        optimizer.step()
    graph_step.settle_capturable(optimizer, capture=False)
    optimizer.step()
    assert not optimizer.param_groups[0]["capturable"]
    assert torch.all(weight < 1)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _cuda_run(data, capture: bool, monkeypatch) -> tuple[Trainer, list[EpochEnded]]:
    if not capture:
        monkeypatch.setattr(graph_step, "capture_plan", lambda facts: (False, "eager on purpose"))
    trainer = Trainer(tiny_project(tiny_graph(units=32)), data,
                      options=options(epochs=4, device="cuda", batch_size=64))
    events = list(trainer.run())
    monkeypatch.undo()
    assert events[-1].ok, events[-1].message
    return trainer, [e for e in events if isinstance(e, EpochEnded)]


@CUDA
def test_a_captured_run_learns_like_an_eager_one(mnist_sample, monkeypatch) -> None:
    data = mnist_slice(mnist_sample, 4096, 512)
    captured, graph_epochs = _cuda_run(data, True, monkeypatch)
    eager, eager_epochs = _cuda_run(data, False, monkeypatch)
    assert captured.captured is not None and captured.captured.replays > 0
    assert any("runs as one captured CUDA graph" in n for n in captured.speed_notes)
    assert any(n.startswith("the training step runs eagerly: eager on purpose")
               for n in eager.speed_notes)
    assert eager.captured is None
    for a, b in zip(graph_epochs, eager_epochs, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=0.05, abs=0.02)
        assert a.val_acc == pytest.approx(b.val_acc, abs=0.03)


@CUDA
def test_a_captured_run_is_faster(mnist_sample, monkeypatch) -> None:
    data = mnist_slice(mnist_sample, 8000, 512)
    _, graph_epochs = _cuda_run(data, True, monkeypatch)
    _, eager_epochs = _cuda_run(data, False, monkeypatch)
    graph_rate = max(e.images_per_s for e in graph_epochs[1:])
    eager_rate = max(e.images_per_s for e in eager_epochs[1:])
    assert graph_rate > 1.5 * eager_rate, (graph_rate, eager_rate)


def test_the_captured_body_is_the_engines_training_step(small_data) -> None:
    """What is recorded into the graph trains exactly as the eager step (checked eagerly on
    the CPU): augmentation, dropout, the losses, backward and Adam."""
    trainers = []
    for _ in range(2):
        trainer = Trainer(tiny_project(tiny_graph(before_output=[("Dropout", {"rate": 0.3})])),
                          small_data, options=options(device="cpu", augment=("flip", "rotate")))
        trainer.build()
        trainers.append(trainer)
    images, labels = trainers[0].batches.train_x[:64], trainers[0].batches.train_y[:64]
    results = []
    for k, trainer in enumerate(trainers):
        generator = torch.Generator().manual_seed(5)
        torch.manual_seed(11)
        if k == 0:
            trainer.optimizer.zero_grad(set_to_none=True)
            loss, hits = graph_step.step_body(trainer)(images, labels, generator)
            assert 0 <= int(hits) <= 64
        else:
            loss = trainer.train_step(images, labels, generator)
        results.append(float(loss))
    assert results[0] == results[1]
    for name, value in trainers[0].model.state_dict().items():
        assert torch.equal(value, trainers[1].model.state_dict()[name]), name
