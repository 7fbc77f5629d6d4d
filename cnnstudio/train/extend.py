"""Extending a run by more epochs: the learning-rate rule, and what the run folder records.

A run planned for E epochs that gets N more (while it trains, or after it finished or stopped)
keeps its weights, optimiser state (Adam's step counts and moments), epoch counter, history
and best-so-far tracking; only the schedule has to be told about the new end. The rule, per
schedule (s0: the steps done when extended, T: the steps of the new total):

    constant   unchanged.
    step       unchanged: the rate keeps falling by gamma every step_size epochs.
    cosine     a warm continuation: a new half-cosine from r0 down to 0 over the new epochs,
               r0 being where a cosine planned for the new total stands at s0. Continuing from
               the current rate would do nothing after a finished run (its rate is 0 there);
               r0 is what the run would have had if it had been planned this long from the
               start.
    one_cycle  a new annealing phase, no second warm-up: a half-cosine from r0 (where a cycle
               over the new total stands at s0) down to the cycle's final rate
               (max rate / 25 / 10⁴, torch's defaults that make_schedule uses).

The rates are plain arithmetic here (no torch), so the rule is tested on its own;
`continued_schedule` turns an Extension into the LambdaLR that the engine steps per batch, and
`apply` and `restore` are the engine's two calls (extend now; resume an extended run).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from cnnstudio.train.guards import TrainingError

ONE_CYCLE_PCT_START = 0.3  # torch.optim.lr_scheduler.OneCycleLR's defaults (optim.make_schedule)
ONE_CYCLE_DIV = 25.0
ONE_CYCLE_FINAL_DIV = 1e4
SCHEDULES = ("constant", "step", "cosine", "one_cycle")


class ExtendError(TrainingError):
    """A run that cannot be extended, or a bad number of epochs; the message says what to do.
    A TrainingError, so that the engine and the command line report it as one."""


def cosine_rate(step: int, total_steps: int, base: float) -> float:
    """The cosine schedule's rate at `step` of `total_steps` (optim.make_schedule uses it)."""
    total = max(total_steps, 1)
    return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def one_cycle_rate(step: int, total_steps: int, max_rate: float) -> float:
    """The rate of torch's OneCycleLR (cosine annealing, torch's defaults) at `step`, for a
    cycle over `total_steps` optimiser steps (make_schedule passes epochs × steps + 1)."""
    start = max_rate / ONE_CYCLE_DIV
    end = start / ONE_CYCLE_FINAL_DIV
    peak = ONE_CYCLE_PCT_START * total_steps - 1
    last = total_steps - 1
    if step <= peak:
        return _anneal(start, max_rate, step / peak if peak > 0 else 1.0)
    return _anneal(max_rate, end, min((step - peak) / max(last - peak, 1e-9), 1.0))


def _anneal(start: float, end: float, fraction: float) -> float:
    """A half-cosine from `start` (fraction 0) to `end` (fraction 1)."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * fraction))


@dataclass(frozen=True)
class Extension:
    """One extension of a run, as the checkpoint and final.json record it."""

    schedule: str
    base_rate: float  # the options' learning rate (one_cycle: its peak)
    from_epoch: int  # the epochs done when it was extended
    old_epochs: int  # the planned total before
    new_epochs: int  # the planned total after
    steps_per_epoch: int
    rate_before: float  # the rate the next step would have used without the extension
    start_rate: float  # the rate of the first step after it
    end_rate: float  # the rate of the last step
    gamma: float = 0.1
    step_size: int = 10

    @property
    def from_step(self) -> int:
        return self.from_epoch * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.new_epochs * self.steps_per_epoch

    def rate_at(self, step: int) -> float:
        """The learning rate of optimiser step `step` (counted from 0 over the whole run), for
        the steps after the extension."""
        if self.schedule == "step":
            return self.base_rate * self.gamma ** (step // max(self.step_size
                                                               * self.steps_per_epoch, 1))
        if self.schedule in ("cosine", "one_cycle"):
            span = max(self.total_steps - self.from_step, 1)  # reaches end_rate after the
            fraction = min(max(step - self.from_step, 0) / span, 1.0)  # last step, as
            return _anneal(self.start_rate, self.end_rate, fraction)  # make_schedule's do
        return self.base_rate

    def describe(self) -> str:
        """The rule in words, for the run's notes, the window's status and the CLI."""
        added = self.new_epochs - self.from_epoch
        head = (f"extended after epoch {self.from_epoch} to {self.new_epochs} epochs "
                f"({_plural(added, 'more epoch')})")
        if self.schedule == "step":
            return (f"{head}; the step schedule is unchanged: the rate keeps falling by "
                    f"{self.gamma:g} every {_plural(self.step_size, 'epoch')} "
                    f"(now {self.start_rate:.3g})")
        if self.schedule == "cosine":
            return (f"{head}; the cosine schedule now ends at epoch {self.new_epochs} instead "
                    f"of {self.old_epochs}: it continues from {self.start_rate:.3g} (where a "
                    f"{self.new_epochs}-epoch cosine stands after epoch {self.from_epoch}; it "
                    f"was {self.rate_before:.3g}) down to 0")
        if self.schedule == "one_cycle":
            return (f"{head}; the one-cycle schedule gets a new annealing phase, no second "
                    f"warm-up: from {self.start_rate:.3g} (it was {self.rate_before:.3g}) down "
                    f"to {self.end_rate:.3g} at epoch {self.new_epochs}")
        return f"{head}; the learning rate stays {self.base_rate:.3g}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rule": self.describe()}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Extension:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in names})


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def plan_extension(options: Any, steps_per_epoch: int, done_epochs: int, new_epochs: int,
                   rate_before: float) -> Extension:
    """The extension of a run with these options (schedule, learning_rate, gamma, step_size,
    epochs: the planned total so far) after `done_epochs`, to `new_epochs` in all."""
    if new_epochs <= done_epochs:
        raise ExtendError(f"the run has done {done_epochs} epochs already: extend it to more "
                          f"than that (asked for {new_epochs} in all)")
    schedule = options.schedule if options.schedule in SCHEDULES else "constant"
    base = float(options.learning_rate)
    s0, total = done_epochs * steps_per_epoch, new_epochs * steps_per_epoch
    if schedule == "cosine":
        start, end = cosine_rate(s0, total, base), 0.0
    elif schedule == "one_cycle":
        start = one_cycle_rate(s0, total + 1, base)
        end = base / ONE_CYCLE_DIV / ONE_CYCLE_FINAL_DIV
    elif schedule == "step":
        start = base * options.gamma ** (s0 // max(options.step_size * steps_per_epoch, 1))
        end = start
    else:
        start = end = base
    return Extension(schedule=schedule, base_rate=base, from_epoch=done_epochs,
                     old_epochs=int(options.epochs), new_epochs=new_epochs,
                     steps_per_epoch=steps_per_epoch, rate_before=float(rate_before),
                     start_rate=start, end_rate=end, gamma=float(options.gamma),
                     step_size=int(options.step_size))


def continued_schedule(optimizer: Any, extension: Extension, steps_done: int) -> Any:
    """A LambdaLR that gives `extension.rate_at(step)` from the step after `steps_done`, with
    the optimiser's state (and one_cycle's momentum where the cycle left it) untouched."""
    from torch.optim.lr_scheduler import LambdaLR

    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    bases = [float(group["initial_lr"]) for group in optimizer.param_groups]
    factors = [lambda s, b=b: extension.rate_at(s) / b for b in bases]
    return LambdaLR(optimizer, factors, last_epoch=steps_done - 1)


def extension_records(extensions: list[Extension]) -> list[dict[str, Any]]:
    """What final.json keeps of a run's extensions: from which epoch, to how many, the rule."""
    return [{"from_epoch": e.from_epoch, "to_epoch": e.new_epochs, "rule": e.describe()}
            for e in extensions]


def check_extendable(folder: Any) -> None:
    """Refuse, with what to do, a folder whose run cannot be extended: no run there, or a run
    that has no finished epoch to continue from. `folder` is a run_folder.RunFolder."""
    from cnnstudio.train import run_folder as rf

    path = folder.path
    if not path.is_dir():
        raise ExtendError(f"there is no run folder at {path}: give the folder of a finished or "
                          "stopped run (--out RUN)")
    if not folder.is_run_folder():
        raise ExtendError(f"{path} is not a training run folder: give the folder of a finished "
                          "or stopped run (--out RUN)")
    if folder.file(rf.CHECKPOINT).exists():
        return
    try:
        status = str(folder.read_json(rf.FINAL).get("status", ""))
    except (rf.RunFolderError, AttributeError):
        status = ""
    what = "failed" if status == "failed" else "ended"
    raise ExtendError(f"the run in {path} {what} before its first epoch finished, so there is "
                      "no checkpoint to continue from: start a new run instead")


def apply(trainer: Any, done_epochs: int, new_epochs: int, best: dict[str, Any]) -> Extension:
    """Extend `trainer`'s run (engine.Trainer) after `done_epochs` to `new_epochs` in all, at an
    epoch boundary: its options, schedule and notes; a fresh early-stopping count (the user
    asked for more epochs); and the run folder's project, so that resuming it later goes on to
    the new total. The optimiser and its state are kept as they are."""
    o = trainer.options
    rate_before = float(trainer.optimizer.param_groups[0]["lr"])
    extension = plan_extension(o, trainer.steps_per_epoch, done_epochs, new_epochs, rate_before)
    trainer.options = replace(o, epochs=new_epochs)
    trainer.scheduler = continued_schedule(trainer.optimizer, extension,
                                           done_epochs * trainer.steps_per_epoch)
    trainer.extensions.append(extension)
    best["bad_epochs"] = 0
    trainer.notes.append(extension.describe())
    if trainer.folder is not None and trainer.rank == 0:
        trainer.project.training["epochs"] = new_epochs
        trainer.folder.save_project(trainer.project)
    return extension


def restore(trainer: Any, checkpoint: Mapping[str, Any], epoch: int) -> None:
    """Resuming after `epoch`: the extensions the checkpoint records, and the schedule the
    latest one set (make_schedule's would start over from the options)."""
    trainer.extensions = [Extension.from_dict(r) for r in checkpoint.get("extensions", [])]
    if trainer.extensions:
        trainer.scheduler = continued_schedule(trainer.optimizer, trainer.extensions[-1],
                                               epoch * trainer.steps_per_epoch)


def more_epochs_on_resume(trainer: Any, epoch: int, best: dict[str, Any]) -> None:
    """A resume asked for more epochs than the run planned (`--resume --epochs N`, N above
    its project's epochs): the same as extending it to N. Otherwise the schedule built for N
    would meet the checkpoint's position of the old plan (a one-cycle schedule stepped past its
    end and the run failed)."""
    from cnnstudio.train.options import TrainOptions

    planned = TrainOptions.from_settings(trainer.project.training).epochs
    wanted = int(trainer.options.epochs)
    if wanted > max(planned, epoch):
        trainer.options = replace(trainer.options, epochs=planned)
        apply(trainer, epoch, wanted, best)
