"""Extending a run by more epochs (train/extend.py): the learning-rate rule per schedule, a
finished run continued from its checkpoint, a running run given more epochs between two
epochs, and resuming an extended run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cnnstudio.core.project import load_project
from cnnstudio.train import run_folder as rf
from cnnstudio.train.engine import TrainingError
from cnnstudio.train.events import EpochEnded, RunExtended, RunStarted, TrainingControl
from cnnstudio.train.extend import (
    Extension,
    cosine_rate,
    one_cycle_rate,
    plan_extension,
)
from cnnstudio.train.optim import make_schedule
from tests.train.conftest import options, run, tiny_project

STEPS = 8  # 512 training images in batches of 64 (small_data)


def step_rates(result) -> list[float]:
    """The learning rate of every optimiser step, in order (log_every=1 reports each)."""
    return [e.learning_rate for e in result.steps]


# -- the rule, as arithmetic --------------------------------------------------------------------


def test_one_cycle_rate_is_torchs_one_cycle() -> None:
    total = 41
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total)
    for step in range(total):
        assert one_cycle_rate(step, total, 0.1) == pytest.approx(
            optimizer.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        optimizer.step()
        schedule.step()


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "one_cycle"])
def test_a_finished_run_continues_by_its_schedules_rule(schedule: str) -> None:
    o = options(epochs=10, schedule=schedule, learning_rate=0.01, step_size=3, gamma=0.5)
    end_rate = {"cosine": 0.0, "one_cycle": 0.01 / 25 / 1e4}.get(schedule)
    extension = plan_extension(o, 5, 10, 15, rate_before=end_rate or 0.01)
    rates = [extension.rate_at(s) for s in range(50, 75)]
    if schedule == "constant":
        assert rates == [0.01] * 25
    elif schedule == "step":  # every 3 epochs of 5 steps the rate halves, on and on
        assert rates == [0.01 * 0.5 ** (s // 15) for s in range(50, 75)]
    else:
        stretched = (cosine_rate(50, 75, 0.01) if schedule == "cosine"
                     else one_cycle_rate(50, 76, 0.01))
        assert rates[0] == pytest.approx(stretched)
        assert rates[0] > 10 * (end_rate or 1e-9)  # a finished run gets a rate that trains
        assert all(a > b for a, b in zip(rates, rates[1:]))  # no second warm-up
        assert extension.rate_at(75) == pytest.approx(end_rate, abs=1e-15)


def test_cosine_rule_is_said_with_the_numbers() -> None:
    o = options(epochs=10, schedule="cosine", learning_rate=1e-3)
    extension = plan_extension(o, 5, 10, 15, rate_before=0.0)
    text = extension.describe()
    assert "now ends at epoch 15 instead of 10" in text
    assert f"continues from {cosine_rate(50, 75, 1e-3):.3g}" in text and "down to 0" in text
    assert Extension.from_dict(json.loads(json.dumps(extension.to_dict()))) == extension


def test_extending_to_fewer_epochs_than_done_is_refused() -> None:
    with pytest.raises(TrainingError, match="has done 4 epochs already"):
        plan_extension(options(epochs=4), 5, 4, 4, rate_before=1e-3)


# -- a finished run ---------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["cosine", "one_cycle", "step"])
def test_extend_a_finished_run(small_data, tmp_path: Path, schedule: str) -> None:
    folder = tmp_path / "run"
    chosen = options(epochs=2, schedule=schedule, log_every=1, step_size=1, gamma=0.5)
    first = run(tiny_project(), small_data, folder, options=chosen)
    assert first.finished.status == "completed"
    adam_steps = first.trainer.optimizer.state_dict()["state"][0]["step"]
    assert int(adam_steps) == 2 * STEPS

    more = run(tiny_project(), small_data, folder, options=chosen, resume=True, extend_by=2)

    assert more.finished.status == "completed", more.finished.message
    assert more.of(RunStarted)[0].epochs == 4 and more.of(RunStarted)[0].start_epoch == 3
    assert [e.epoch for e in more.epochs] == [3, 4]
    assert [r["epoch"] for r in rf.RunFolder(folder).read_metrics()] == [1, 2, 3, 4]
    assert [h.epoch for h in more.finished.history] == [1, 2, 3, 4]
    # the optimiser went on from its state: Adam's step count continues, not restarted
    state = more.trainer.optimizer.state_dict()["state"][0]
    assert int(state["step"]) == 4 * STEPS
    extension = more.trainer.extensions[-1]
    rates = step_rates(more)
    assert rates == pytest.approx([extension.rate_at(s) for s in range(2 * STEPS, 4 * STEPS)])
    if schedule == "step":  # halving after every epoch, as before the extension
        assert rates[0] == pytest.approx(1e-3 * 0.5 ** 2)
    else:  # a fresh, falling rate, well above where the finished schedule had left it
        assert rates[0] > 10 * step_rates(first)[-1]
    final = json.loads((folder / rf.FINAL).read_text())
    assert final["epochs"] == 4 and final["epochs_completed"] == 4
    assert final["extended"][0]["from_epoch"] == 2 and final["extended"][0]["to_epoch"] == 4
    assert load_project(folder / rf.PROJECT).training["epochs"] == 4
    assert any("extended after epoch 2 to 4 epochs" in n for n in more.of(RunStarted)[0].notes)


def test_extended_then_stopped_run_resumes_on_the_continued_schedule(small_data,
                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "run"
    chosen = options(epochs=2, schedule="cosine", log_every=1)
    run(tiny_project(), small_data, folder, options=chosen)
    control = TrainingControl()

    def stop_after_epoch_3(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 3:
            control.stop()

    stopped = run(tiny_project(), small_data, folder, options=chosen, resume=True,
                  extend_by=3, control=control, on_event=stop_after_epoch_3)
    assert stopped.finished.status == "stopped"
    extension = stopped.trainer.extensions[-1]

    resumed = run(tiny_project(), small_data, folder, options=options(
        epochs=5, schedule="cosine", log_every=1), resume=True)

    assert resumed.finished.status == "completed" and resumed.finished.epochs_completed == 5
    assert step_rates(resumed) == pytest.approx(
        [extension.rate_at(s) for s in range(3 * STEPS, 5 * STEPS)])
    assert resumed.trainer.extensions == [extension]


def test_resume_with_more_epochs_than_planned_extends_by_the_rule(small_data,
                                                                  tmp_path: Path) -> None:
    """`--resume --epochs 4` after a finished 2-epoch one-cycle run: before, the one-cycle
    schedule stepped past its end and the run failed with an internal error."""
    folder = tmp_path / "run"
    project = tiny_project(epochs=2, schedule="one_cycle")
    run(project, small_data, folder, options=options(epochs=2, schedule="one_cycle"))

    more = run(tiny_project(), small_data, folder, options=options(
        epochs=4, schedule="one_cycle", log_every=1), resume=True)

    assert more.finished.status == "completed", more.finished.message
    assert more.finished.epochs_completed == 4
    [extension] = more.trainer.extensions
    assert (extension.from_epoch, extension.old_epochs, extension.new_epochs) == (2, 2, 4)
    assert step_rates(more) == pytest.approx(
        [extension.rate_at(s) for s in range(2 * STEPS, 4 * STEPS)])


# -- a running run ----------------------------------------------------------------------------


def test_extend_a_running_run_between_epochs(small_data, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    control = TrainingControl()
    asked: list[int] = []

    def extend_in_epoch_1(event) -> None:
        if not asked and getattr(event, "epoch", 0) == 1:
            control.request_extension(2)
            asked.append(2)

    chosen = options(epochs=2, schedule="cosine", log_every=1)
    result = run(tiny_project(), small_data, folder, options=chosen, control=control,
                 on_event=extend_in_epoch_1)

    assert result.finished.status == "completed" and result.finished.epochs_completed == 4
    [extended] = result.of(RunExtended)
    assert (extended.epochs, extended.added, extended.after_epoch) == (4, 2, 1)
    assert "now ends at epoch 4 instead of 2" in extended.message
    rates = step_rates(result)
    assert rates[:STEPS] == pytest.approx(  # epoch 1 on the 2-epoch cosine
        [0.5 * 1e-3 * (1 + math.cos(math.pi * s / (2 * STEPS))) for s in range(STEPS)])
    extension = result.trainer.extensions[0]
    assert rates[STEPS:] == pytest.approx(
        [extension.rate_at(s) for s in range(STEPS, 4 * STEPS)])
    assert int(result.trainer.optimizer.state_dict()["state"][0]["step"]) == 4 * STEPS
    assert json.loads((folder / rf.FINAL).read_text())["extended"][0]["from_epoch"] == 1


def test_extension_request_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TrainingControl().request_extension(0)


# -- what cannot be extended ------------------------------------------------------------------


def test_extend_refuses_a_missing_folder(small_data, tmp_path: Path) -> None:
    result = run(tiny_project(), small_data, tmp_path / "nothing", options=options(),
                 resume=True, extend_by=2)
    assert result.finished.status == "failed"
    assert "not a training run folder" in result.finished.message


def test_extend_refuses_a_run_without_a_checkpoint(small_data, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    control = TrainingControl()
    control.stop()  # stopped in its first batch: final.json, no checkpoint
    first = run(tiny_project(), small_data, folder, options=options(), control=control)
    assert first.finished.status == "stopped" and not (folder / rf.CHECKPOINT).exists()
    result = run(tiny_project(), small_data, folder, options=options(), resume=True,
                 extend_by=2)
    assert result.finished.status == "failed"
    assert "no checkpoint to continue from" in result.finished.message


def test_make_schedule_is_what_the_first_epochs_follow(small_data, tmp_path: Path) -> None:
    """The comparison the tests above lean on: before an extension, the steps follow
    optim.make_schedule (the rates the extension starts from are its continuation)."""
    chosen = options(epochs=2, schedule="one_cycle", log_every=1)
    result = run(tiny_project(), small_data, tmp_path / "run", options=chosen)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=chosen.learning_rate)
    schedule = make_schedule(optimizer, chosen, STEPS)
    expected = []
    for _ in range(2 * STEPS):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert step_rates(result) == pytest.approx(expected)
