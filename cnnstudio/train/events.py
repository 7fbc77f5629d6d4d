"""What a training run reports, and how a caller steers it (pause, resume, stop).

The engine yields these plain records; the window turns each into a Qt signal, the command line
into a progress line. Nothing here knows about Qt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cnnstudio.train.time_shares import StepBreakdown


@dataclass(frozen=True)
class RunStarted:
    run_dir: str | None
    device: str
    epochs: int
    start_epoch: int
    steps_per_epoch: int
    train_count: int
    val_count: int
    classes: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what the user should know of this run (data, weights, resume)
    # how the run is made fast on this device (layout, warm-up, validation batch, graph
    # capture, max pooling before ReLU): the run folder and the CLI keep them, the window shows
    # them on demand
    speed_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepProgress:
    epoch: int
    step: int  # global step, counted from 1
    epoch_step: int
    steps_per_epoch: int
    step_losses: tuple[float, ...]  # every step since the previous report
    train_loss: float  # mean over the epoch so far
    train_acc: float
    images_per_s: float
    eta_s: float
    learning_rate: float

    @property
    def epoch_progress(self) -> float:
        """Position in epochs, e.g. 2.25 a quarter into the third epoch (x axis of the plots)."""
        return self.epoch - 1 + self.epoch_step / max(self.steps_per_epoch, 1)


@dataclass(frozen=True)
class EpochEnded:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float
    images_per_s: float
    # block id -> L2 norm of the block's parameter gradients, averaged over the epoch's progress
    # reports (every log_every steps); blocks without trainable parameters are absent
    grad_norms: dict[str, float] = field(default_factory=dict, compare=False)
    # where the time of the epoch's steps went (sampled; time_shares.py); None if not timed
    breakdown: StepBreakdown | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, float]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "train_acc": self.train_acc,
            "val_loss": self.val_loss,
            "val_acc": self.val_acc,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
        }


@dataclass(frozen=True)
class RunExtended:
    """The run was given more epochs while it trained (read between two epochs)."""

    epochs: int  # the new planned total
    added: int
    after_epoch: int
    message: str  # the schedule's rule in words (train/extend.py)


@dataclass(frozen=True)
class StateChanged:
    state: str  # "paused" | "running"


@dataclass(frozen=True)
class RunFinished:
    status: str  # "completed" | "stopped" | "early_stopped" | "failed"
    message: str
    epochs_completed: int
    run_dir: str | None = None
    val_acc: float | None = None
    val_loss: float | None = None
    best_val_acc: float | None = None
    seconds: float = 0.0
    images_per_s: float = 0.0
    history: tuple[EpochEnded, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # the run finished but something is wrong (did not learn)
    warmup_s: float = 0.0  # before the clock (train/warmup.py): in seconds, not in images_per_s

    @property
    def ok(self) -> bool:
        return self.status != "failed"


Event = RunStarted | StepProgress | EpochEnded | RunExtended | StateChanged | RunFinished


class TrainingControl:
    """Thread-safe requests from another thread; the engine honours them within one batch."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._extend_lock = threading.Lock()
        self._extra_epochs = 0  # asked for since the engine last looked (request_extension)

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def request_extension(self, epochs: int) -> None:
        """Add `epochs` to the planned total; the engine applies it after the current epoch."""
        if epochs < 1:
            raise ValueError(f"extend by a positive number of epochs, not {epochs}")
        with self._extend_lock:
            self._extra_epochs += epochs

    def take_extension(self) -> int:
        """The epochs asked for since the last call (0 if none); the engine's side."""
        with self._extend_lock:
            epochs, self._extra_epochs = self._extra_epochs, 0
        return epochs

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, poll_s: float = 0.05) -> None:
        while not self._running.wait(poll_s):
            pass
