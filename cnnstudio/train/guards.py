"""The limits a training run can meet, and the messages that say what to change.

- Memory. Before a run on the CPU, the analysis' estimate of one training step
  (`Analysis.memory`) plus the copy of the dataset the run keeps is compared with the memory
  the system has available (Linux: MemAvailable in /proc/meminfo); a run that cannot fit is
  refused with a batch size that fits. Running out anyway (MemoryError, PyTorch's CPU allocator
  or CUDA out of memory) ends the run with the same advice.
- A diverging loss. A loss that is not finite, or that grew to more than GROWTH_LIMIT times its
  first value, stops the run with advice to lower the learning rate: a learning rate of 10 took
  the loss to 1e27 and the run still "completed".

Mostly plain functions of numbers, so each is tested alone; the engine calls them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cnnstudio.core.analysis import TrainingMemory
from cnnstudio.core.summary import format_bytes

MEMINFO = "/proc/meminfo"
CPU_ALLOCATOR_FAILURE = "DefaultCPUAllocator: can't allocate memory"
GROWTH_LIMIT = 100.0
# a first loss below this counts as this much: growing from 0.001 to 0.2 is noise, not divergence
GROWTH_FLOOR = 1.0


class TrainingError(Exception):
    """A run that cannot start or go on: the message says what is wrong and how to fix it."""


# -- memory ----------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes the system can give now without swapping (MemAvailable); None where unknown."""
    try:
        with open(MEMINFO, encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a run needs at a batch size: a fixed part and a part per image of the batch."""

    fixed: int
    per_image: int

    @classmethod
    def of(cls, memory: Callable[[int], TrainingMemory], dataset_bytes: int = 0) -> MemoryNeed:
        """From the analysis' estimate (linear in the batch size) and the dataset's copy."""
        one, two = memory(1).total, memory(2).total
        per_image = max(two - one, 0)
        return cls(fixed=one - per_image + dataset_bytes, per_image=per_image)

    def at(self, batch_size: int) -> int:
        return self.fixed + batch_size * self.per_image

    def largest_batch(self, available: int) -> int:
        """The largest batch size that fits in `available` bytes; 0 when not even one does."""
        if self.at(1) > available:
            return 0
        if self.per_image == 0:
            return 65_536
        return (available - self.fixed) // self.per_image


def suggested_batch(batch_size: int, fits: int | None = None) -> int:
    """A power of two below `batch_size`, and at most `fits` (half the batch when unknown)."""
    limit = min(batch_size - 1, batch_size // 2 if fits is None else fits)
    power = 1
    while power * 2 <= limit:
        power *= 2
    return power


def memory_refusal(need: MemoryNeed, batch_size: int, available: int) -> str | None:
    """Why a run at `batch_size` cannot fit in `available` bytes, or None when it can."""
    needed = need.at(batch_size)
    if needed <= available:
        return None
    fits = need.largest_batch(available)
    if fits < 1:
        return (f"training this network needs about {format_bytes(need.at(1))} of memory even "
                f"one image at a time, and {format_bytes(available)} is available: make the "
                "input images or the network smaller, or close other programs")
    return (f"training at batch size {batch_size} needs about {format_bytes(needed)} of memory, "
            f"and {format_bytes(available)} is available: use a smaller batch size (for example "
            f"{suggested_batch(batch_size, fits)}), or close other programs")


def plan_memory(memory: Callable[[int], TrainingMemory], data: Any, batch_size: int,
                eval_batch: int) -> tuple[MemoryNeed, int]:
    """A CPU run's memory need, and the evaluation batch size (the training one when
    `eval_batch` would not fit); TrainingError when a training step cannot fit at all."""
    copied = 0 if getattr(data, "streaming", False) else sum(  # ResidentBatches copies these
        int(getattr(getattr(data, name, None), "nbytes", 0)) for name in ("train_x", "val_x"))
    need = MemoryNeed.of(memory, copied)
    available = available_memory()
    if available is None:
        return need, eval_batch
    refusal = memory_refusal(need, batch_size, available)
    if refusal:
        raise TrainingError(refusal)
    return need, eval_batch if need.at(eval_batch) <= available else batch_size


def fitting_batch(need: MemoryNeed | None) -> int | None:
    """The largest batch the estimate says fits in the memory available now, where known."""
    available = available_memory() if need is not None else None
    return need.largest_batch(available) if need is not None and available else None


def is_out_of_memory(err: BaseException) -> bool:
    return (isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError))
            or (isinstance(err, RuntimeError) and CPU_ALLOCATOR_FAILURE in str(err)))


def out_of_memory_message(err: BaseException, batch_size: int,
                          fits: int | None = None) -> str | None:
    """The message for running out of memory during a run; None for any other error.

    `fits`: the largest batch the memory estimate says fits now, where known."""
    if not is_out_of_memory(err):
        return None
    where = "the GPU" if isinstance(err, torch.cuda.OutOfMemoryError) else "the computer"
    if batch_size <= 1:
        return (f"{where} ran out of memory even at batch size 1: make the input images or the "
                "network smaller, or close other programs")
    return (f"{where} ran out of memory at batch size {batch_size}: use a smaller batch size "
            f"(for example {suggested_batch(batch_size, fits)})")


# -- the loss --------------------------------------------------------------------------------


def diverged_at(losses: Sequence[float], first_loss: float | None) -> int | None:
    """The index of the first loss that is not finite or over GROWTH_LIMIT times the first
    loss of the run (at least GROWTH_FLOOR); None when all are fine."""
    limit = GROWTH_LIMIT * max(first_loss, GROWTH_FLOOR) if first_loss is not None else math.inf
    return next((i for i, v in enumerate(losses) if not math.isfinite(v) or v > limit), None)


def divergence_message(loss: float, first_loss: float | None, step: int, epoch: int,
                       learning_rate: float) -> str:
    advice = (f"lower the learning rate (now {learning_rate:g}), for example to "
              f"{learning_rate / 10:g}")
    if not math.isfinite(loss) or first_loss is None:
        return f"the loss became {loss} at step {step} (epoch {epoch}); {advice}"
    return (f"the loss grew to {loss:.3g} at step {step} (epoch {epoch}), over "
            f"{GROWTH_LIMIT:g} times its first value {first_loss:.3g}: training is diverging; "
            f"{advice}")


def learning_warnings(history: Sequence[Any], first_loss: float | None, classes: int,
                      learning_rate: float) -> list[str]:
    """Warnings for a run that finished but did not learn: validation accuracy at chance level
    while the training loss ended no lower than it started (a learning rate far too high
    does this without ever diverging enough to stop the run)."""
    if not history or first_loss is None or classes < 2:
        return []
    last = history[-1]
    chance = 1.0 / classes
    if not (last.val_acc <= 1.5 * chance and last.train_loss >= 0.9 * first_loss):
        return []
    grew = (f"grew from {first_loss:.3g} to {last.train_loss:.3g}"
            if last.train_loss > 1.5 * first_loss else f"stayed near {first_loss:.3g}")
    return [f"the network did not learn: validation accuracy {last.val_acc:.1%} is chance "
            f"level for {classes} classes and the training loss {grew}; the learning rate "
            f"{learning_rate:g} is probably too high: try {learning_rate / 10:g}"]


def other_dataset_refusal(run_dir: Any, recorded: str, current: str) -> str:
    return (f"the run in {run_dir} was trained on {recorded}, not {current}: resuming on other "
            f"data would mix two datasets in one run; leave out --dataset to resume on "
            f"{recorded}, or add --force to go on with {current} (the run folder records the "
            "change)")
