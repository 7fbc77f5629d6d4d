"""A training run on a background thread, driven from the window.

The engine stays Qt-free: a worker object on a QThread iterates the engine's event generator
and re-emits each event as a Qt signal (queued to the GUI thread). Pause, resume and stop go
through the engine's thread-safe TrainingControl and take effect within one batch. The run
trains a snapshot of the project, so editing the graph meanwhile does not touch it.
"""

from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from cnnstudio.core.project import Project


class _Worker(QObject):
    event = Signal(object)  # an engine event (RunStarted, StepProgress, ...)
    data_ready = Signal(object)  # the loaded dataset
    weights_ready = Signal(object, int)  # CPU state dict, epoch
    failed = Signal(str)  # a set-up problem that is not a RunFinished (bad dataset, ...)
    done = Signal()

    def __init__(self, project: Project, run_dir: Path, options: Any, control: Any,
                 resume: bool, extend_by: int = 0) -> None:
        super().__init__()
        self.project, self.run_dir = project, run_dir
        self.options, self.control, self.resume = options, control, resume
        self.extend_by = extend_by

    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # the window shows it as a message, never a traceback
            message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            self.failed.emit(message)
            traceback.print_exc()
        finally:
            self.done.emit()

    def _run(self) -> None:
        from cnnstudio.ui import torch_threads

        torch_threads.for_training()  # see torch_threads: the other threads use one each
        from cnnstudio.core.adapt import input_block_id
        from cnnstudio.core.analysis import analyze
        from cnnstudio.train.data import DatasetError, load_with_settings
        from cnnstudio.train.engine import Trainer
        from cnnstudio.train.events import EpochEnded, RunFinished

        settings = self.project.dataset
        shape = analyze(self.project.graph).blocks[input_block_id(self.project.graph)].output_shape
        try:
            data = load_with_settings(settings.get("spec", "mnist-sample"), shape, settings)
        except DatasetError as err:
            self.failed.emit(str(err))
            return
        self.data_ready.emit(data)
        trainer = Trainer(self.project, data, self.run_dir, options=self.options,
                          control=self.control, resume=self.resume, extend_by=self.extend_by)
        for event in trainer.run():
            self.event.emit(event)
            if isinstance(event, EpochEnded) or (
                    isinstance(event, RunFinished) and hasattr(trainer, "model")):
                epoch = getattr(event, "epoch", getattr(event, "epochs_completed", 0))
                self.weights_ready.emit(trainer.state_dict(), epoch)


class TrainingSession(QObject):
    """One run at a time. Signals arrive on the GUI thread."""

    started = Signal(object)  # RunStarted
    progress = Signal(object)  # StepProgress
    epoch_ended = Signal(object)  # EpochEnded
    extended = Signal(object)  # RunExtended: more epochs, asked for while it trained
    state_changed = Signal(str)  # "loading" | "running" | "paused" | "stopping" | "idle"
    finished = Signal(object)  # RunFinished (also for set-up failures)
    data_ready = Signal(object)  # the dataset of the run
    weights_ready = Signal(object, int)  # CPU state dict after each epoch, epoch number

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._control: Any = None
        self.state = "idle"
        self.project: Project | None = None  # the snapshot being trained
        self.run_dir: Path | None = None
        self.graph_revision = -1  # the editor's graph revision when the run started

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, project: Project, run_dir: Path, options: Any = None, *,
              resume: bool = False, graph_revision: int = -1,
              start_weights: bool = True, extend_by: int = 0) -> None:
        """Train a snapshot of `project` into `run_dir` on a background thread; from the
        project's weights file when it has one and `start_weights` is on. `extend_by` with
        `resume`: a finished or stopped run trains that many more epochs (train/extend.py)."""
        if self.running:
            raise RuntimeError("a training run is already going")
        from cnnstudio.train.engine import TrainOptions
        from cnnstudio.train.events import TrainingControl
        from cnnstudio.ui import torch_threads

        torch_threads.single_threaded()  # the GUI thread, before it ever runs a torch op
        snapshot = Project(project.graph.copy(), project.name, project.description,
                           project.template, copy.deepcopy(project.dataset),
                           copy.deepcopy(project.training),
                           weights=project.weights if start_weights else None,
                           folder=project.folder)
        self.project, self.run_dir, self.graph_revision = snapshot, Path(run_dir), graph_revision
        self._control = TrainingControl()
        options = options or TrainOptions.from_settings(snapshot.training)
        self._worker = _Worker(snapshot, self.run_dir, options, self._control, resume,
                               extend_by)
        self._thread = QThread(self)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.event.connect(self._on_event)
        self._worker.data_ready.connect(self.data_ready)
        self._worker.weights_ready.connect(self.weights_ready)
        self._worker.failed.connect(self._on_failed)
        # direct: quit the thread's loop from the worker's own thread, so wait() can return
        # even while the GUI thread is blocked in it (closing the window)
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._set_state("loading")
        self._thread.start()

    def pause(self) -> None:
        if self._control is not None and self.state == "running":
            self._control.pause()

    def resume(self) -> None:
        if self._control is not None and self.state == "paused":
            self._control.resume()

    def stop(self) -> None:
        if self._control is not None and self.running:
            self._control.stop()
            self._set_state("stopping")

    def extend(self, epochs: int) -> bool:
        """Ask the running run for `epochs` more; it takes them after its current epoch and
        says so with `extended`. False when no run goes on."""
        if self._control is None or self.state not in ("loading", "running", "paused"):
            return False
        self._control.request_extension(epochs)
        return True

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ends (closing the window); True when it did."""
        thread = self._thread
        if thread is None:
            return True
        return thread.wait(timeout_ms)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    @Slot(object)
    def _on_event(self, event: Any) -> None:
        from cnnstudio.train import events as ev

        if isinstance(event, ev.RunStarted):
            if self.project is not None:  # the engine's plan (an extended run's new total)
                self.project.training["epochs"] = event.epochs
            self._set_state("running")
            self.started.emit(event)
        elif isinstance(event, ev.StepProgress):
            self.progress.emit(event)
        elif isinstance(event, ev.EpochEnded):
            self.epoch_ended.emit(event)
        elif isinstance(event, ev.RunExtended):
            if self.project is not None:  # the planned total the progress bars count to
                self.project.training["epochs"] = event.epochs
            self.extended.emit(event)
        elif isinstance(event, ev.StateChanged):
            if self.state != "stopping":
                self._set_state(event.state)
        elif isinstance(event, ev.RunFinished):
            self._finished = event

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        from cnnstudio.train.events import RunFinished

        self._finished = RunFinished(status="failed", message=message, epochs_completed=0,
                                     run_dir=str(self.run_dir) if self.run_dir else None)

    @Slot()
    def _on_thread_finished(self) -> None:
        finished = getattr(self, "_finished", None)
        self._finished = None
        if self._thread is not None:
            self._thread.deleteLater()
        if self._worker is not None:
            self._worker.deleteLater()
        self._thread, self._worker, self._control = None, None, None
        self._set_state("idle")
        if finished is not None:
            self.finished.emit(finished)
