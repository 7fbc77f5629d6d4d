"""Sampled timing of training steps in phases (time_shares.PHASES), at a negligible cost.

Every `every`-th step of an epoch is timed: a mark before its batch is gathered and one after
each phase. On the CPU a mark is a perf_counter read (each operation has finished when it
returns); on CUDA it is a recorded CUDA event, read once at the end of the epoch, so the host
never waits for the GPU on account of the timing; on MPS the device is synchronised at each
mark of a sampled step. The sampled steps sit halfway between the engine's progress reports,
whose host reads would otherwise fall into "other". Epochs shorter than `every` steps time
every step.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator, TypeVar

import torch

from cnnstudio.train.time_shares import PHASES, StepBreakdown

SAMPLE_EVERY = 10
T = TypeVar("T")


class StepTimer:
    """Marks the phases of sampled steps; `breakdown()` sums them up at the end of an epoch.

    every=0 switches the timing off (the engine's loop then runs exactly as without it).
    """

    def __init__(self, device: torch.device, every: int = SAMPLE_EVERY, *,
                 augmented: bool = False, streamed: bool = False) -> None:
        self.device = device
        self.every = every
        self.augmented, self.streamed = augmented, streamed
        self.cuda = device.type == "cuda"
        self._samples: list[list[object]] = []  # per sampled step: its marks, in PHASES order
        self._current: list[object] | None = None
        self._period, self._offset = max(every, 1), 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def start_epoch(self, steps: int) -> None:
        """Forget the previous epoch's samples; an epoch of `steps` steps follows."""
        self._samples, self._current = [], None
        self._period = self.every if 0 < self.every <= steps else 1
        self._offset = self._period // 2

    def _now(self) -> object:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        if self.device.type == "mps":
            torch.mps.synchronize()
        return time.perf_counter()

    def batches(self, batches: Iterable[T]) -> Iterator[T]:
        """The batches, with a mark before gathering each sampled one (the gather is the
        first part of its data phase)."""
        if not self.enabled:
            yield from batches
            return
        iterator = iter(batches)
        index = 0
        while True:
            if index % self._period == self._offset:
                self._current = [self._now()]
            try:
                batch = next(iterator)
            except StopIteration:
                self._current = None
                return
            yield batch
            index += 1

    def mark(self, phase: str) -> None:
        """The end of `phase` of the step being timed (nothing on other steps); the phases
        come in PHASES order."""
        current = self._current
        if current is None:
            return
        assert PHASES[len(current) - 1] == phase, f"{phase} marked out of order"
        current.append(self._now())
        if len(current) == len(PHASES) + 1:
            self._samples.append(current)
            self._current = None

    def discard(self) -> None:
        """Drop the step being timed (a pause fell into it)."""
        self._current = None

    def breakdown(self, images_per_s: float) -> StepBreakdown | None:
        """Mean seconds per phase over the epoch's sampled steps (after the epoch's last host
        read, so CUDA events have completed); None when nothing was timed."""
        if not self._samples:
            return None
        totals = dict.fromkeys(PHASES, 0.0)
        for marks in self._samples:
            for phase, begin, end in zip(PHASES, marks, marks[1:]):
                totals[phase] += self._seconds(begin, end)
        count = len(self._samples)
        memory = peak = None
        if self.cuda:
            memory = int(torch.cuda.memory_allocated(self.device))
            peak = int(torch.cuda.max_memory_allocated(self.device))
        return StepBreakdown(
            seconds={phase: total / count for phase, total in totals.items()},
            sampled_steps=count, images_per_s=images_per_s, device=str(self.device),
            augmented=self.augmented, streamed=self.streamed,
            memory_bytes=memory, peak_memory_bytes=peak)

    def _seconds(self, begin: object, end: object) -> float:
        if self.cuda:
            assert isinstance(begin, torch.cuda.Event) and isinstance(end, torch.cuda.Event)
            end.synchronize()
            return begin.elapsed_time(end) / 1000
        assert isinstance(begin, float) and isinstance(end, float)
        return end - begin
