"""The learning-rate finder: a short sweep that shows which learning rates train this network.

    result = lr_find(project, data)  # 100 mini-batches, the rate growing from 1e-7 to 1
    result.suggestion                # a rate, or None when the sweep shows no clear one
    result.message                   # the suggestion with its rule, or why there is none

Leslie Smith's range test (2015, as fastai's lr_find): a fresh copy of the network, built the
way the engine builds a run (Trainer._build: the same device, precision, model, loss, optimiser
with its momentum and weight decay, augmentation and batches), trains one mini-batch per
learning rate while the rate grows exponentially from `start` to `end`. The loss is smoothed by
an exponential moving average with bias correction (the first values are not pulled towards 0).
The sweep stops early once the smoothed loss exceeds DIVERGENCE times its lowest value or the
loss is not finite: larger rates only diverge further.

The suggestion is SUGGESTION_RULE: a tenth of the rate at which the smoothed loss is lowest.
At the minimum the loss is about to blow up; a tenth of it is still on the steep, falling part
of the curve, a rate that trains fast and stays stable. A sweep whose smoothed loss never fell
by MIN_FALL of its first value shows no descent to read, and gives no suggestion.

Nothing of the project changes: the model is built from the graph for the sweep and dropped
afterwards, and a weights file the project starts from is only read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cnnstudio.core.project import Project
from cnnstudio.train.engine import Trainer
from cnnstudio.train.events import TrainingControl
from cnnstudio.train import guards
from cnnstudio.train.guards import TrainingError
from cnnstudio.train.options import TrainOptions

START_RATE = 1e-7
END_RATE = 1.0
STEPS = 100
MIN_STEPS, MAX_STEPS = 10, 10_000
# the weight of the running average against each new loss: it follows the loss about ten steps
# behind. fastai's 0.98 lags some 50 steps, half of a 100-step sweep: on the Keras-book network
# with SGD it hid the descent (its smoothed loss fell 7 % where the loss itself fell 38 %)
SMOOTHING = 0.9
DIVERGENCE = 4.0  # stop once the smoothed loss exceeds this many times its lowest value
MIN_FALL = 0.1  # the smoothed loss must fall by a tenth of its first value for a suggestion
SUGGESTION_RULE = "a tenth of the learning rate at which the smoothed loss is lowest"
TABLE_ROWS = 12


@dataclass(frozen=True)
class SweepPoint:
    """One mini-batch of the sweep: its learning rate, its loss and the smoothed loss."""

    step: int  # from 1
    rate: float
    loss: float
    smoothed: float


@dataclass(frozen=True)
class LRFindResult:
    points: tuple[SweepPoint, ...]
    steps: int  # the steps asked for (points holds fewer when the sweep stopped early)
    start: float
    end: float
    suggestion: float | None
    message: str  # the suggestion with its rule, or why there is none
    stop_reason: str  # why the sweep ended ("" when it swept the whole range)
    device: str
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def rates(self) -> list[float]:
        return [p.rate for p in self.points]

    @property
    def smoothed(self) -> list[float]:
        return [p.smoothed for p in self.points]

    @property
    def lowest(self) -> SweepPoint | None:
        """The point with the lowest smoothed loss."""
        return min(self.points, key=lambda p: p.smoothed, default=None)


def sweep_rates(start: float, end: float, steps: int) -> list[float]:
    """`steps` learning rates from `start` to `end`, each a constant factor above the last."""
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def check_range(start: float, end: float, steps: int) -> None:
    """Raise TrainingError, saying what to change, for a sweep that cannot be run."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end <= 10):
        raise TrainingError(f"the sweep goes from a start rate above 0 to a larger end rate of "
                            f"at most 10; got {start:g} to {end:g}")
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise TrainingError(f"the sweep takes from {MIN_STEPS} to {MAX_STEPS:,} steps, got "
                            f"{steps}: 100 is usually enough")


def suggest(points: list[SweepPoint] | tuple[SweepPoint, ...]) -> tuple[float | None, str]:
    """The suggested rate by SUGGESTION_RULE and the sentence that says it, or (None, why)."""
    if len(points) < 3:
        count = f"{len(points)} step" + ("" if len(points) == 1 else "s")
        return None, (f"no clear suggestion: the sweep stopped after {count}, "
                      "too few to show a descent; try a smaller start rate, or check the data, "
                      "the network and the weights it starts from")
    first = points[0].smoothed
    lowest = min(points, key=lambda p: p.smoothed)
    if lowest.smoothed > (1 - MIN_FALL) * first:
        return None, (f"no clear suggestion: the loss did not fall (smoothed {first:.3g} at the "
                      f"start, lowest {lowest.smoothed:.3g} at rate {lowest.rate:.2g}); try a "
                      "larger end rate or more steps, check the data and the network, or keep "
                      "the current rate")
    rate = float(f"{max(lowest.rate / 10, points[0].rate):.2g}")
    message = (f"suggested learning rate {rate:.2g}: {SUGGESTION_RULE} "
               f"(lowest {lowest.smoothed:.3g} at {lowest.rate:.2g})")
    if lowest is points[-1]:
        message += "; the loss was still falling where the sweep ended"
    return rate, message


def table_points(result: LRFindResult, rows: int = TABLE_ROWS) -> list[SweepPoint]:
    """`rows` points spread evenly over the sweep (log rate), the first and the last, and the
    lowest smoothed loss among them."""
    points = result.points
    if len(points) <= rows:
        return list(points)
    picked = {round(i * (len(points) - 1) / (rows - 1)) for i in range(rows)}
    lowest = result.lowest
    picked.add(points.index(lowest) if lowest is not None else 0)
    return [points[i] for i in sorted(picked)]


def lr_find(project: Project, data: Any, options: TrainOptions | None = None, *,
            start: float = START_RATE, end: float = END_RATE, steps: int = STEPS,
            control: TrainingControl | None = None,
            on_point: Callable[[SweepPoint], None] | None = None) -> LRFindResult:
    """Sweep the learning rate on a copy of the project's network; see the module's text.

    `control.stop()` cancels between two mini-batches (the result keeps what was swept, with
    no suggestion); `on_point` sees each point as it comes (a progress display). Raises
    TrainingError or DatasetError for what the engine refuses (a bad setting, a network that
    does not fit the data, not enough memory).
    """
    check_range(start, end, steps)
    options = options or TrainOptions.from_settings(project.training)
    control = control or TrainingControl()
    started = time.perf_counter()
    trainer = Trainer(project, data, None, options=options)
    try:
        trainer.build()  # the device, precision, model copy, optimiser and batches of a run
        points, stop_reason = _sweep(trainer, sweep_rates(start, end, steps), control, on_point)
    except Exception as err:  # running out of memory: the message says what to change
        message = guards.out_of_memory_message(err, options.batch_size,
                                               guards.fitting_batch(trainer.memory_need))
        if message is None:
            raise
        raise TrainingError(message) from None
    if stop_reason == "cancelled":
        suggestion, message = None, f"cancelled after {len(points)} of {steps} steps"
    else:
        suggestion, message = suggest(points)
        if suggestion is None and stop_reason:
            message += f" ({stop_reason})"
    return LRFindResult(tuple(points), steps, start, end, suggestion, message, stop_reason,
                        str(trainer.device), time.perf_counter() - started,
                        tuple(trainer.notes))


def _sweep(trainer: Trainer, rates: list[float], control: TrainingControl,
           on_point: Callable[[SweepPoint], None] | None) -> tuple[list[SweepPoint], str]:
    """Train one mini-batch per rate; the points and why the sweep ended early ('' if not)."""
    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    for module in trainer.frozen_norms:
        module.eval()  # as in training: a frozen BatchNorm keeps its running statistics
    generator = torch.Generator(device=trainer.device)
    generator.manual_seed(trainer.options.seed)
    batches = _endless(trainer, generator)
    points: list[SweepPoint] = []
    average, lowest = 0.0, math.inf
    for i, rate in enumerate(rates):
        if control.stop_requested:
            return points, "cancelled"
        for group in optimizer.param_groups:
            group["lr"] = rate
        loss = float(trainer.train_step(*next(batches), generator))  # read now: stop in time
        if not math.isfinite(loss):
            return points, f"the loss was not finite at rate {rate:.2g}"
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed = average / (1 - SMOOTHING ** (i + 1))  # bias correction
        point = SweepPoint(i + 1, rate, loss, smoothed)
        points.append(point)
        if on_point is not None:
            on_point(point)
        lowest = min(lowest, smoothed)
        if smoothed > DIVERGENCE * lowest:
            return points, (f"the smoothed loss exceeded {DIVERGENCE:g} times its lowest value "
                            f"at rate {rate:.2g}")
    return points, ""


def _endless(trainer: Trainer, generator: torch.Generator):
    """Training batches, epoch after epoch (each in a new order), for as long as asked."""
    while True:
        yield from trainer.batches.train_batches(generator)
