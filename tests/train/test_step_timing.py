"""Where the time of a training step goes: sampled phase timing sent with each epoch, its
plain-language reading, and the command line's line per epoch."""

from __future__ import annotations

import io

import pytest
import torch

from cnnstudio.cli_train import _Progress
from cnnstudio.train.engine import Trainer
from cnnstudio.train.events import EpochEnded
from cnnstudio.train.step_timing import StepTimer
from cnnstudio.train.time_shares import PHASES, StepBreakdown

from .conftest import mnist_slice, options, tiny_project


@pytest.fixture(scope="module")
def two_thousand(mnist_sample):
    """32 steps of 64: more than one sampling period (every 10th step is timed)."""
    return mnist_slice(mnist_sample, 2048, 128)


def epochs_of(project, data, timing_every: int | None = None,
              **overrides) -> tuple[Trainer, list[EpochEnded]]:
    trainer = Trainer(project, data, None, options=options(**overrides))
    if timing_every is not None:
        trainer.timing_every = timing_every
    events = list(trainer.run())
    assert events[-1].ok, events[-1].message
    return trainer, [e for e in events if isinstance(e, EpochEnded)]


def test_every_epoch_reports_shares_that_cover_its_steps(two_thousand):
    trainer, epochs = epochs_of(tiny_project(), two_thousand, epochs=2)
    for epoch in epochs:
        breakdown = epoch.breakdown
        assert breakdown is not None and breakdown.sampled_steps == 3  # steps 5, 15, 25
        shares = breakdown.shares()
        assert list(shares) == list(PHASES)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert all(breakdown.seconds[p] > 0 for p in ("data", "forward", "backward",
                                                       "optimiser"))
        # the timed phases are the step: their sum is close to the epoch's time per step
        per_step = epoch.seconds / trainer.steps_per_epoch
        assert 0.5 * per_step < breakdown.step_seconds < 1.5 * per_step
        assert breakdown.images_per_s == pytest.approx(epoch.images_per_s)
        assert breakdown.memory_bytes is None
        assert breakdown.memory_text() == "memory: not measured on the CPU"


def test_heavy_augmentation_shows_a_larger_data_share(two_thousand):
    # every step timed (32, not 3): one slow step of a busy machine does not decide it
    plain = epochs_of(tiny_project(), two_thousand, timing_every=1)[1][0].breakdown
    heavy = epochs_of(tiny_project(), two_thousand, timing_every=1,
                      augment=("flip", "rotate", "translate", "scale"))[1][0].breakdown
    assert heavy.augmented and not plain.augmented
    assert heavy.seconds["data"] > 2 * plain.seconds["data"]
    assert heavy.shares()["data"] > plain.shares()["data"]


def test_timing_switched_off_sends_no_breakdown(small_data):
    trainer = Trainer(tiny_project(), small_data, None, options=options())
    trainer.timing_every = 0
    events = list(trainer.run())
    (epoch,) = [e for e in events if isinstance(e, EpochEnded)]
    assert events[-1].ok and epoch.breakdown is None


def test_a_short_epoch_times_every_step_and_a_pause_drops_its_step():
    timer = StepTimer(torch.device("cpu"), every=10)
    timer.start_epoch(3)  # fewer steps than the period: every step is timed
    for i, _ in enumerate(timer.batches(range(3))):
        if i == 1:
            timer.discard()  # a pause fell into this step
            continue
        for phase in PHASES:
            timer.mark(phase)
    breakdown = timer.breakdown(100.0)
    assert breakdown is not None and breakdown.sampled_steps == 2
    with pytest.raises(AssertionError, match="forward marked out of order"):
        timer.start_epoch(3)
        next(iter(timer.batches(range(3))))
        timer.mark("forward")


def _breakdown(device: str = "cpu", augmented: bool = False, streamed: bool = False,
               **seconds: float) -> StepBreakdown:
    values = dict.fromkeys(PHASES, 0.001) | seconds
    return StepBreakdown(values, 3, 1000.0, device, augmented, streamed)


def test_the_hint_names_what_dominates():
    assert _breakdown(augmented=True, data=0.03).hint().startswith(
        "augmentation takes 88 % of each step: the network waits for its data")
    assert _breakdown(streamed=True, data=0.03).hint().startswith("reading the images takes")
    assert _breakdown(data=0.03).hint().startswith("the network is small: most time (88 %)")
    assert _breakdown(forward=0.01, backward=0.02).hint().startswith(
        "the layers themselves take 91 % of each step (forward 30 %, backward 61 %)")
    small = dict.fromkeys(PHASES, 0.0005)  # 2.5 ms a step
    assert "too small to fill this GPU (a step takes 2.5 ms" in _breakdown("cuda:0",
                                                                           **small).hint()
    assert _breakdown("cuda:0", forward=0.01, backward=0.02).dominant == "layers"
    assert _breakdown(optimiser=0.002).hint() == ""  # 33 %: nothing dominates
    cuda = StepBreakdown(dict.fromkeys(PHASES, 0.01), 3, 10.0, "cuda:0",
                         memory_bytes=3 * 2**20, peak_memory_bytes=5 * 2**30)
    assert cuda.memory_text() == "GPU memory 3.0 MiB in use, peak 5.0 GiB"


def test_the_command_line_prints_the_shares_once_per_epoch(two_thousand):
    stream = io.StringIO()
    progress = _Progress(stream)
    trainer = Trainer(tiny_project(), two_thousand, None, options=options(epochs=2))
    for event in trainer.run():
        progress(event)
    lines = stream.getvalue().splitlines()
    timed = [line for line in lines if line.startswith("  time: a step ")]
    assert len(timed) == 2
    assert all("data " in line and "backward " in line and "memory: not measured on the CPU"
               in line for line in timed)
    epoch_lines = [i for i, line in enumerate(lines) if line.startswith("epoch ")]
    assert [lines[i + 1].startswith("  time: ") for i in epoch_lines] == [True, True]
    hints = [line for line in lines if line.startswith("  hint: ")]
    assert len(hints) <= 2  # said again only when what dominates changes
