"""Optional TensorBoard logging of a run (the `tensorboard` training setting; off by default).

A listener of the engine's events: `logged(trainer, events)` passes every event through and,
when the setting is on and the run has a folder, writes TensorBoard event files into the run
folder's `tensorboard/` subfolder (open with `tensorboard --logdir RUN/tensorboard`):

    at the start   the network's graph, traced once on a batch of two validation images
    every epoch    the scalars of SCALAR_TAGS (the values of metrics.jsonl), the learning rate
                   of the epoch's last step, each phase's share of a step (time_share/...),
                   each block's gradient norm (gradient_norm/...) and a histogram of its last
                   step's gradients (gradients/...), and the first Conv2D block's filters as
                   a grey picture (filters/...)

Logging never ends a run: a graph that cannot be traced is left out with a note, and a write
that fails (a full disk, a folder that cannot be created) becomes one note and logging stops.
Notes from the start join the run's notes (RunStarted); later ones join the finished run's
warnings. A resumed run writes a new event file with purge_step at its first epoch, so
TensorBoard shows one continuous run. torch's SummaryWriter (and with it the tensorboard
package) is imported only when the setting is on.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Generator, TypeVar

import numpy as np
import torch

from cnnstudio.train.events import EpochEnded, Event, RunFinished, RunStarted, StepProgress
from cnnstudio.train.inspect import conv_filters
from cnnstudio.train.learned_kernels import maps_picture
from cnnstudio.train.run_folder import _unwritable_reason
from cnnstudio.train.time_shares import PHASES

FOLDER = "tensorboard"  # inside the run folder
# TensorBoard tag -> the EpochEnded field (and metrics.jsonl key) it shows
SCALAR_TAGS = {
    "loss/train": "train_loss",
    "loss/validation": "val_loss",
    "accuracy/train": "train_acc",
    "accuracy/validation": "val_acc",
    "speed/images_per_s": "images_per_s",
    "speed/epoch_seconds": "seconds",
}
LEARNING_RATE_TAG = "learning_rate"
TIME_SHARE_TAG = "time_share/"  # + a phase of time_shares.PHASES
GRADIENT_NORM_TAG = "gradient_norm/"  # + a block's name
FILTERS_TAG = "filters/"  # + the first Conv2D block's name
GRADIENTS_TAG = "gradients/"  # + a block's name: a histogram of its last step's gradients
HISTOGRAM_BINS = 30
GRAPH_BATCH = 2  # images the graph is traced on

Returned = TypeVar("Returned")


def logged(trainer: Any, events: Generator[Event, None, Returned]
           ) -> Generator[Event, None, Returned]:
    """The run's events, unchanged when TensorBoard logging is off or the run has no folder;
    else each also logged (RunStarted and RunFinished with this log's notes added)."""
    if not trainer.options.tensorboard or trainer.folder is None:
        return (yield from events)
    log = TensorBoardLog(trainer)
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as end:
                return end.value
            yield log.observe(event)
    finally:
        log.close()
        events.close()


class TensorBoardLog:
    """Writes one run's TensorBoard events; `observe` takes each engine event in turn."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.folder: Path = Path(trainer.folder.path) / FOLDER
        self.writer: Any = None  # a SummaryWriter once the run has started
        self.stopped = False  # a write failed: nothing more is written
        self.notes: list[str] = []  # said after the start: they join the run's warnings
        self.learning_rate: float | None = None  # of the epoch's last reported step

    def observe(self, event: Event) -> Event:
        """Log the event; return it, or for RunStarted and RunFinished a copy with notes."""
        if isinstance(event, RunStarted):
            return replace(event, notes=event.notes + tuple(self._start(event)))
        if isinstance(event, StepProgress):
            self.learning_rate = event.learning_rate
        elif isinstance(event, EpochEnded):
            self._write(f"after epoch {event.epoch}", self._epoch, event)
        elif isinstance(event, RunFinished):
            self.close()
            if self.notes:
                return replace(event, warnings=event.warnings + tuple(self.notes))
        return event

    def close(self) -> None:
        """Write what is queued and close the event file (once; a failure is one note)."""
        if self.writer is not None:
            self._write("at the end of the run", self.writer.close)
        self.writer = None

    # -- the start ---------------------------------------------------------------------------

    def _start(self, event: RunStarted) -> list[str]:
        """Open the event file and log the graph; the notes for the run's start."""
        if getattr(self.trainer, "rank", 0) != 0:  # under torch.distributed rank 0 logs
            self.stopped = True
            return []
        from torch.utils.tensorboard import SummaryWriter

        _quiet_writer_threads()
        try:
            # purge_step: TensorBoard drops what an earlier file logged from this epoch on
            self.writer = SummaryWriter(
                str(self.folder), purge_step=event.start_epoch if event.start_epoch > 1 else None)
        except Exception as err:  # noqa: BLE001 (any failure to write ends logging, not the run)
            self.stopped = True
            return [f"TensorBoard logging is off for this run: cannot write {self.folder}: "
                    f"{self._reason(err)}"]
        graph_note = self._graph()
        notes = [graph_note] if graph_note else []
        if self.notes:  # writing the graph failed
            notes += self.notes
            self.notes.clear()
        return notes

    def _graph(self) -> str:
        """Log the network's graph; a note when it cannot be traced, else ''."""
        try:
            x = self._graph_input()
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # the tracer's warnings about Python values
                self.writer.add_graph(self.trainer.model, x)
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            reason = reason.split(". ")[0].rstrip(".")  # the first sentence says enough
            return (f"TensorBoard shows no graph of this network: tracing it failed "
                    f"({reason}); the other logs are written")
        except Exception as err:  # noqa: BLE001 (a failed write: one note, logging stops)
            self._stop("at the start", err)
        return ""

    def _graph_input(self) -> torch.Tensor:
        """Two validation images as the model takes them (a zero batch if there are none)."""
        trainer = self.trainer
        for images, _ in trainer.batches.val_batches(GRAPH_BATCH):
            return trainer._prepare(images, False, None)
        shape = tuple(trainer.data.image_shape)
        return torch.zeros((GRAPH_BATCH, *shape), device=trainer.device)

    # -- every epoch -----------------------------------------------------------------------

    def _epoch(self, event: EpochEnded) -> None:
        step, writer = event.epoch, self.writer
        for tag, name in SCALAR_TAGS.items():
            writer.add_scalar(tag, float(getattr(event, name)), step)
        if self.learning_rate is not None:
            writer.add_scalar(LEARNING_RATE_TAG, self.learning_rate, step)
        if event.breakdown is not None and event.breakdown.sampled_steps:
            shares = event.breakdown.shares()
            for phase in PHASES:
                writer.add_scalar(TIME_SHARE_TAG + phase, shares[phase], step)
        graph = self.trainer.project.graph
        for block_id, norm in event.grad_norms.items():
            name = graph.block(block_id).name if block_id in graph else block_id
            writer.add_scalar(GRADIENT_NORM_TAG + name, norm, step)
        for block_id, histogram in gradient_histograms(self.trainer).items():
            name = graph.block(block_id).name if block_id in graph else block_id
            writer.add_histogram_raw(GRADIENTS_TAG + name, global_step=step, **histogram)
        filters = first_conv_filters(self.trainer.model, graph)
        if filters is not None:
            name, picture = filters
            writer.add_image(FILTERS_TAG + name, picture, step, dataformats="HW")
        writer.flush()  # a failed write shows here, in this epoch

    # -- failures --------------------------------------------------------------------------

    def _write(self, when: str, write: Any, *args: Any) -> None:
        """Call write(*args) unless logging has stopped; a failure stops it with one note."""
        if self.writer is None or self.stopped:
            return
        try:
            write(*args)
        except Exception as err:  # noqa: BLE001 (any failure to write ends logging, not the run)
            self._stop(when, err)

    def _stop(self, when: str, err: BaseException) -> None:
        self.stopped = True
        self.notes.append(f"TensorBoard logging stopped {when}: cannot write {self.folder}: "
                          f"{self._reason(err)}; the run went on, and the logs written before "
                          "stay readable")
        writer, self.writer = self.writer, None
        with contextlib.suppress(Exception):  # the file is already failing; close what we can
            writer.close()

    def _reason(self, err: BaseException) -> str:
        if self.folder.exists() and not self.folder.is_dir():
            return "a file of that name is in the way; move or rename it"
        if isinstance(err, OSError):
            return _unwritable_reason(err, self.folder.parent)
        return str(err) or type(err).__name__


def _quiet_writer_threads() -> None:
    """The event file's writer thread records a failed write for the next call in this
    thread (which makes it a note here) and then re-raises it, which Python prints as a
    traceback; leave that print out, for those threads only."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    previous = threading.excepthook
    if getattr(previous, "quiet_tensorboard_writers", False):
        return

    def hook(args: Any) -> None:
        if not isinstance(args.thread, _AsyncWriterThread):
            previous(args)

    hook.quiet_tensorboard_writers = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def gradient_histograms(trainer: Any) -> dict[str, dict[str, Any]]:
    """Block id -> add_histogram_raw's arguments for the gradients of the block's parameters
    left by the epoch's last step (unscaled under float16). Counted on the device with one
    shared range per block, two small reads per block and no copy of the gradients; a block
    whose gradients are not finite (a skipped float16 step) is left out."""
    by_block: dict[int, list[torch.Tensor]] = {}
    for index, parameter in trainer.grad_params:
        if parameter.grad is not None:
            by_block.setdefault(index, []).append(parameter.grad.detach())
    histograms = {}
    for index, grads in by_block.items():
        ends = torch.stack([torch.stack(g.aminmax()).float() for g in grads])
        low, high = torch.stack([ends[:, 0].min(), ends[:, 1].max()]).tolist()
        if not (np.isfinite(low) and np.isfinite(high)):
            continue
        high = max(high, low + 1e-12)  # one value everywhere: one narrow bucket
        counted = sum(torch.cat([torch.histc(g.float(), HISTOGRAM_BINS, min=low, max=high),
                                 torch.stack([g.float().sum(), g.float().square().sum()])])
                      for g in grads)
        values = counted.tolist()  # the counts, then the sum and the sum of squares
        histograms[trainer.grad_blocks[index]] = {
            "min": low, "max": high, "num": sum(g.numel() for g in grads),
            "sum": values[-2], "sum_squares": values[-1],
            "bucket_limits": np.linspace(low, high, HISTOGRAM_BINS + 1)[1:].tolist(),
            "bucket_counts": values[:-2],
        }
    return histograms


def first_conv_filters(model: Any, graph: Any) -> tuple[str, np.ndarray] | None:
    """(name, picture) of the first Conv2D block in the network's order: a grey grid of its
    filters, each stretched from its own minimum to maximum (learned_kernels.maps_picture); a
    filter over several input channels shows their mean. None when the network has none."""
    order, _ = graph.topological_order()
    for block_id in order:
        if graph.block(block_id).type != "Conv2D" or block_id not in model.blocks:
            continue
        weights = conv_filters(model, block_id)  # (filters, channels, kh, kw)
        return graph.block(block_id).name, maps_picture(weights.mean(axis=1))
    return None
