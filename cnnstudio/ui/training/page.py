"""The Training page: dataset, settings, Train / Pause / Stop, live curves, runs, inspection.

One TrainingSession trains a snapshot of the project on a background thread; the page only
follows its signals, so the window stays usable while it trains. Each run writes a run folder:
<project folder>/runs/<time> for a saved project, else <configuration folder>/runs/<time>.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, Qt, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.adapt import class_mismatch_message, class_mismatches
from cnnstudio.core.analysis import training_diagnostics
from cnnstudio.core.project import ProjectError, load_project
from cnnstudio.core.settings import DATASET, TRAINING
from cnnstudio.ui import theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.settings_store import config_dir
from cnnstudio.ui.training.dataset_panel import DatasetPanel, DatasetPreview, plain_message
from cnnstudio.ui.training.extend_control import ExtendControl
from cnnstudio.ui.training.lr_finder import LearningRateFinderButton
from cnnstudio.ui.training.plots import TrainingPlots
from cnnstudio.ui.training.runs import RunsPanel, read_metrics
from cnnstudio.ui.training.session import TrainingSession
from cnnstudio.ui.training.settings_panel import SettingsPanel
from cnnstudio.ui.training.time_breakdown import TimeBreakdownPanel
from cnnstudio.ui.widgets import scrolled

CHANGED_TEXT = "The network has changed since this run started (the run trains the old one)."
DATASET_TAB, SETTINGS_TAB = 0, 1  # the side tabs
FINISHED_TEXT = {"completed": "Completed", "early_stopped": "Stopped early"}  # + the message


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 2 h 04 min."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def new_run_dir(root: Path) -> Path:
    """root/<date>_<time>, with -2, -3, ... when two runs start within a second."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    path, number = root / stamp, 1
    while path.exists():
        number += 1
        path = root / f"{stamp}-{number}"
    return path


class TrainingPage(QWidget):
    """Everything about training the document's network."""

    open_project_requested = Signal(object)  # Path of a run's project snapshot
    health_changed = Signal()  # `health` changed

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.session = TrainingSession(self)
        self._context: Any = None  # the InspectionContext, made on first use (it loads torch)
        self.health: tuple[dict[str, float], int] = ({}, 0)  # the last epoch's gradient norms
        self.failure_box: QMessageBox | None = None
        self.last_result: Any = None
        self._resumed = False
        self._running_text = ""  # what the status line says while the run trains
        self._graph = document.graph  # the graph object the run started from
        self._shown = False

        self.dataset_panel = DatasetPanel(document)
        self.settings_panel = SettingsPanel(document)
        self.side_tabs = QTabWidget()
        self.side_tabs.setDocumentMode(True)
        self.side_tabs.addTab(scrolled(self.dataset_panel), "Dataset")
        self.side_tabs.addTab(scrolled(self.settings_panel), "Settings")
        self.side_tabs.setMinimumWidth(400)

        self._build_controls()
        self.plots = TrainingPlots()
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        self.views.addTab(self.plots, "Curves")
        self.runs = RunsPanel()
        self._build_layout()

        session = self.session
        session.started.connect(self._on_started)
        session.progress.connect(self._on_progress)
        session.epoch_ended.connect(self._on_epoch)
        session.state_changed.connect(self._on_state)
        session.finished.connect(self._on_finished)
        self.dataset_panel.preview_ready.connect(self._on_preview)
        self.runs.overlays_changed.connect(self.plots.set_overlays)
        self.runs.open_project_requested.connect(self.open_project_requested)
        self.runs.resume_requested.connect(self.resume_run)
        self.runs.extend_requested.connect(self.extend_run)
        session.extended.connect(self._on_extended)
        self.extend_control.requested.connect(self.extend_running)
        document.graph_event.connect(self._on_graph_event)
        document.analysis_changed.connect(self._show_readiness)
        document.settings_changed.connect(self._show_readiness)
        document.project_replaced.connect(self._update_changed)
        document.project_replaced.connect(self._show_start_weights)
        document.path_changed.connect(self._on_path_changed)
        self._on_state(session.state)
        self._show_readiness()
        self._show_start_weights()
        self.rate_finder = LearningRateFinderButton(self)  # beside the learning-rate field
        self.apply_theme()

    def _build_controls(self) -> None:
        self.train_action = QAction("&Train", self)
        self.train_action.setStatusTip("Train the network on the dataset with these settings")
        self.pause_action = QAction("&Pause/Resume", self)
        self.stop_action = QAction("&Stop", self)
        self.stop_action.setStatusTip("Stop training; the run folder keeps the last checkpoint")
        self.train_action.triggered.connect(self.train)
        self.pause_action.triggered.connect(self.toggle_pause)
        self.stop_action.triggered.connect(self.stop)
        self.train_button = QPushButton("Train")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.train_button.clicked.connect(self.train)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.status = QLabel("Ready to train.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.speed = QLabel()
        self.eta = QLabel()
        self.rate = QLabel()
        self.epoch_bar = QProgressBar()
        self.overall_bar = QProgressBar()
        for bar in (self.epoch_bar, self.overall_bar):
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setTextVisible(True)
        self.epoch_bar.setFormat("Epoch")
        self.overall_bar.setFormat("Overall")
        self.changed = QLabel(CHANGED_TEXT)
        self.changed.setWordWrap(True)
        self.changed.hide()
        self.start_weights = QCheckBox()
        self.start_weights.setToolTip(
            "Start training from the weights saved beside the project (an imported network's "
            "pretrained weights). Untick to start from random weights.")
        self.start_weights.hide()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.hide()
        self.time_breakdown = TimeBreakdownPanel()  # shown once a run's first epoch ends
        self.extend_control = ExtendControl()  # more epochs for the run that trains

    def _build_layout(self) -> None:
        controls = QGridLayout()
        controls.setHorizontalSpacing(8)
        buttons = QHBoxLayout()
        for button in (self.train_button, self.pause_button, self.stop_button):
            button.setMinimumWidth(84)
            buttons.addWidget(button)
        controls.addLayout(buttons, 0, 0)
        controls.addWidget(self.status, 0, 1, 1, 3)
        controls.addWidget(self.epoch_bar, 1, 0, 1, 2)
        controls.addWidget(self.overall_bar, 1, 2, 1, 2)
        facts = QHBoxLayout()
        facts.setSpacing(20)
        for label in (self.speed, self.eta, self.rate):
            facts.addWidget(label)
        facts.addStretch(1)
        facts.addWidget(self.extend_control)
        controls.addLayout(facts, 2, 0, 1, 4)
        controls.addWidget(self.start_weights, 3, 0, 1, 4)
        controls.addWidget(self.time_breakdown, 4, 0, 1, 4)
        controls.setColumnStretch(1, 1)
        controls.setColumnStretch(3, 1)
        right_split = QSplitter(Qt.Vertical)
        right_split.addWidget(self.views)
        right_split.addWidget(self.runs)
        right_split.setStretchFactor(0, 3)
        right_split.setStretchFactor(1, 1)
        right_split.setSizes([600, 190])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 8, 8, 8)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.changed)
        right_layout.addWidget(self.error)
        right_layout.addWidget(right_split, 1)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.side_tabs)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([430, 970])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    @property
    def context(self) -> Any:
        """The InspectionContext behind the inspection tabs, which sit beside the curves."""
        return self._ensure_context()

    def _ensure_context(self) -> Any:
        """Made on first use (the page's first showing, or the first run), not with the window:
        the inspection modules import torch, and the window shows before torch is loaded."""
        if self._context is None:
            from cnnstudio.ui.training.inspect.views import InspectionContext, inspection_tabs

            self._context = InspectionContext(self.session, self.document, self)
            for title, widget in inspection_tabs(self._context):
                self.views.addTab(widget, title)
        return self._context

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if not self._shown:  # the first look: load the preview, find the devices, list runs
            self._shown = True
            self._ensure_context()
            self.dataset_panel.ensure_loaded()
            self.settings_panel.probe_devices()
            self.runs.set_root(self.runs_root())

    def menu_actions(self) -> list[tuple[str, QAction, str]]:
        """(key, action, shortcut) for the window's Training menu."""
        return [("train", self.train_action, "F5"), ("pause_resume", self.pause_action, "F6"),
                ("stop_training", self.stop_action, "Shift+F5")]

    # -- where runs go -------------------------------------------------------------------

    def _on_path_changed(self, _path: Path | None) -> None:
        self.runs.set_root(self.runs_root())

    def runs_root(self) -> Path:
        path = self.document.path
        return path.parent / "runs" if path is not None else config_dir() / "runs"

    # -- commands ------------------------------------------------------------------------

    def train(self) -> bool:
        """Start a run of the project as it is now; False when it cannot start."""
        if self.session.running:
            return False
        problem = self.network_problem()
        if problem:
            self._show_error(problem)
            return False
        problem, tab = self.setup_problem()
        if problem:
            self._show_error(problem)
            self.side_tabs.setCurrentIndex(tab)  # where the fix is
            return False
        return self._start(self.document.project, new_run_dir(self.runs_root()), resume=False,
                           revision=self.document.graph.revision)

    def network_problem(self) -> str:
        """Why the network itself cannot train ('' if it can): the analysis' errors."""
        errors = self.document.analysis.errors
        if not errors:
            return ""
        return (f"The network has {len(errors)} problem(s); fix them on the Network page "
                f"first. The first: {errors[0].message}.")

    def setup_problem(self) -> tuple[str, int]:
        """Why the project cannot train with its settings and the loaded dataset ('' if it
        can), and the side tab with the fix; asked before a run folder is made. The engine
        asks the same core checks."""
        project = self.document.project
        training, _problems = TRAINING.normalize(project.training)
        diagnostics = training_diagnostics(project.graph, batch_size=training["batch_size"])
        if diagnostics:
            return f"{diagnostics[0].message}: {diagnostics[0].fix}.", SETTINGS_TAB
        preview = self.dataset_panel.preview
        spec = DATASET.normalize(project.dataset)[0]["spec"]
        if preview is None or self.dataset_panel.loading or preview.spec != spec:
            return "", DATASET_TAB  # not known yet: the engine refuses it before writing
        mismatches = class_mismatches(project.graph, len(preview.classes), preview.spec,
                                      self.document.analysis)
        if not mismatches:
            return "", DATASET_TAB
        return (f"Training cannot start: {class_mismatch_message(mismatches)}. The Dataset "
                "tab offers the fix.", DATASET_TAB)

    def resume_run(self, run_dir: Path) -> bool:
        """Continue a stopped run from its checkpoint, with the network it was trained on."""
        if self.session.running:
            return False
        return self._continue(Path(run_dir), "resume")

    def extend_run(self, run_dir: Path, epochs: int | None = None) -> bool:
        """Train a finished or stopped run `epochs` more (asked for when None) from its
        checkpoint, in the same folder; the schedule's rule shows in the status."""
        if self.session.running:
            return False
        if epochs is None:
            epochs, ok = QInputDialog.getInt(
                self, "Extend the run", f"Train run {Path(run_dir).name} this many more epochs:",
                self.extend_control.epochs.value(), 1, self.extend_control.epochs.maximum())
            if not ok:
                return False
        return self._continue(Path(run_dir), "extend", extend_by=epochs)

    def _continue(self, run_dir: Path, verb: str, extend_by: int = 0) -> bool:
        """Resume or extend a run with the network it was trained on (its project file)."""
        try:
            project = load_project(run_dir / "project.cnnproj")
        except ProjectError as err:
            self._show_error(f"Cannot {verb} this run: {err.summary}")
            return False
        return self._start(project, run_dir, resume=True, revision=-1, extend_by=extend_by)

    def extend_running(self, epochs: int) -> None:
        """More epochs for the run that trains; the engine takes them after this epoch."""
        if self.session.extend(epochs):
            self.status.setText(f"{epochs} more epoch{'s' if epochs != 1 else ''} asked for: "
                                "they are added after the current epoch …")

    def _start(self, project: Any, run_dir: Path, resume: bool, revision: int,
               extend_by: int = 0) -> bool:
        self._show_error("")
        self.last_result = None
        self._ensure_context()  # it follows the run from its first signal
        try:
            self.session.start(project, run_dir, resume=resume, graph_revision=revision,
                               start_weights=self.start_weights.isChecked(),
                               extend_by=extend_by)
        except Exception as err:  # a bad setting (TrainingError): said plainly
            self._fail(str(err))
            return False
        self._resumed = resume
        self._graph = self.document.graph
        self.plots.clear()
        for bar in (self.epoch_bar, self.overall_bar):
            bar.setValue(0)
        self.epoch_bar.setFormat("Epoch")
        self.overall_bar.setFormat("Overall")
        self._set_facts("", "", "")
        self.time_breakdown.clear()
        self.health = ({}, 0)
        self.health_changed.emit()
        self._running_text = ""
        self.status.setText(f"Loading the dataset for run {run_dir.name} …")
        self.runs.add_session_run(run_dir)
        self._update_changed()
        return True

    def toggle_pause(self) -> None:
        if self.session.state == "running":
            self.session.pause()
        elif self.session.state == "paused":
            self.session.resume()

    def stop(self) -> None:
        self.session.stop()

    def ask_stop_training(self) -> bool:
        """Asked when the window closes during a run: True for Stop & Close."""
        box = QMessageBox(QMessageBox.Icon.Question, "CNN Studio", "Stop training and close?",
                          QMessageBox.StandardButton.NoButton, self.window())
        box.setInformativeText("Nothing is lost: the run folder keeps the last finished epoch, "
                               "and Resume in the runs list continues it.")
        stop = box.addButton("Stop && Close", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is stop

    def stop_and_wait(self, timeout_ms: int = 60_000) -> bool:
        """Stop a run and wait for its thread (closing the window); True when it ended.

        The session quits its thread through a queued call into this thread, so the wait keeps
        this thread's events turning (user input excluded) instead of blocking outright.
        """
        if not self.session.running:
            return True
        self.session.stop()
        deadline = time.monotonic() + timeout_ms / 1000
        while self.session.running and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 50)
            self.session.wait(20)
        return not self.session.running

    # -- session events ------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        idle = state == "idle"
        self.train_button.setEnabled(idle)
        self.train_action.setEnabled(idle)
        can_pause = state in ("running", "paused")
        self.pause_button.setEnabled(can_pause)
        self.pause_action.setEnabled(can_pause)
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        stoppable = state in ("loading", "running", "paused")
        self.stop_button.setEnabled(stoppable)
        self.extend_control.setEnabled(stoppable)
        self.stop_action.setEnabled(stoppable)
        self.runs.set_busy(not idle)
        if state == "paused":
            self.status.setText("Paused. Resume continues with the next batch.")
        elif state == "running" and self._running_text:  # resumed: what it said before
            self.status.setText(self._running_text)
        elif state == "stopping":
            self.status.setText("Stopping after this batch …")
        if not idle and self.session.run_dir is not None:
            self.runs.set_live(self.session.run_dir, state)
        self._update_changed()

    def _on_started(self, event: Any) -> None:
        self.plots.set_smoothing(event.steps_per_epoch)
        if event.start_epoch > 1 and event.run_dir:
            self.plots.add_history(read_metrics(Path(event.run_dir)))
        notes = "".join(f" {note[:1].upper()}{note[1:]}." for note in event.notes)
        self._running_text = (
            f"Training on {event.device}: {event.train_count:,} training and "
            f"{event.val_count:,} validation images, {len(event.classes)} classes.{notes}")
        self.status.setText(self._running_text)
        speed = "".join(f"<li>{html.escape(note[:1].upper() + note[1:])}.</li>"
                        for note in event.speed_notes)
        self.status.setToolTip(f"How this run is made fast on {event.device}:<ul>{speed}</ul>"
                               if speed else "")
        self.runs.set_live(self.session.run_dir, "running")

    def _on_progress(self, event: Any) -> None:
        epochs = self.session_epochs()
        self.epoch_bar.setValue(int(1000 * event.epoch_step / max(event.steps_per_epoch, 1)))
        self.epoch_bar.setFormat(f"Epoch {event.epoch} of {epochs}: %p %")
        overall = event.epoch_progress / max(epochs, 1)
        self.overall_bar.setValue(int(1000 * min(overall, 1.0)))
        self.overall_bar.setFormat("Overall: %p %")
        self._set_facts(f"{event.images_per_s:,.0f} images/s",
                        f"about {duration(event.eta_s)} left",
                        f"learning rate {event.learning_rate:.3g}")
        self.plots.add_steps(event)

    def _on_extended(self, event: Any) -> None:
        self._running_text = f"{event.message[:1].upper()}{event.message[1:]}."
        self.status.setText(self._running_text)
        self.epoch_bar.setFormat(f"Epoch {event.after_epoch} of {event.epochs}: %p %")
        self.overall_bar.setValue(int(1000 * event.after_epoch / max(event.epochs, 1)))

    def session_epochs(self) -> int:
        project = self.session.project
        return int(project.training.get("epochs", 1)) if project is not None else 1

    def _on_epoch(self, event: Any) -> None:
        self.plots.add_epoch(event)
        self.time_breakdown.show_breakdown(getattr(event, "breakdown", None), event.epoch)
        self.health = (dict(event.grad_norms), int(event.epoch))
        self.health_changed.emit()
        self.runs.set_live(self.session.run_dir, self.session.state)

    def _on_finished(self, result: Any) -> None:
        self.last_result = result
        self.plots.flush()
        self.runs.set_live(None, None)
        if result.run_dir:
            self.runs.add_session_run(Path(result.run_dir))
        done = result.status != "failed" and result.images_per_s > 0
        self._set_facts(f"{result.images_per_s:,.0f} images/s on average" if done else "",
                        f"took {duration(result.seconds)}" if done else "", self.rate.text())
        if result.status == "failed":
            self._fail(result.message)
            return
        if result.status == "completed":
            self.overall_bar.setValue(self.overall_bar.maximum())
        prefix = FINISHED_TEXT.get(result.status)
        text = (f"{prefix}: {result.message}." if prefix else f"{plain_message(result.message)}.")
        if result.val_acc is not None:
            text += (f" Validation accuracy {result.val_acc * 100:.1f} %"
                     f" (best {result.best_val_acc * 100:.1f} %).")
        if result.status == "stopped":
            text += " The run folder keeps the last finished epoch: Resume in the runs list."
        for warning in getattr(result, "warnings", ()):
            text += f" Warning: {plain_message(warning)}."
        self.status.setText(text)
        self._update_changed()

    def _set_facts(self, speed: str, eta: str, rate: str) -> None:
        """The line under the progress bars; an empty fact takes no room."""
        for label, text in ((self.speed, speed), (self.eta, eta), (self.rate, rate)):
            label.setText(text)
            label.setVisible(bool(text))

    def _fail(self, message: str) -> None:
        """A failed run: a message box and the same message on the page."""
        message = plain_message(message)
        self._show_error(message)
        self.status.setText("Training failed.")
        box = QMessageBox(QMessageBox.Icon.Warning, "Training failed", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.finished.connect(lambda _result: setattr(self, "failure_box", None))
        self.failure_box = box
        box.open()  # window-modal and not blocking: the page carries on

    def _show_start_weights(self) -> None:
        """The 'start from the weights file' choice, shown for projects that have one (an
        imported network); ticked again for every project opened."""
        path = self.document.project.weights_file()
        self.start_weights.setVisible(path is not None)
        if path is None:
            return
        name = Path(path).name
        present = Path(path).is_file()
        self.start_weights.setEnabled(present)
        self.start_weights.setChecked(present)
        self.start_weights.setText(
            f"Start from the weights in {name}" if present
            else f"Start from the weights in {name} (missing: put it back beside the project)")

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def _on_graph_event(self, _event: Any) -> None:
        self._update_changed()

    def _update_changed(self) -> None:
        session = self.session
        changed = session.running and not self._resumed and (
            self.document.graph is not self._graph
            or self.document.graph.revision != session.graph_revision)
        self.changed.setVisible(changed)

    def _on_preview(self, preview: DatasetPreview | None) -> None:
        self.settings_panel.set_samples(preview.images if preview is not None else None)
        self._show_readiness()

    def _show_readiness(self, *_: Any) -> None:
        """Before any run, the status line says whether Train would start (the problem itself
        and its fix are shown on the Network page or the side tab it names)."""
        if self.session.running or self.last_result is not None:
            return
        network = self.network_problem()
        if network:
            self.status.setText(f"Not ready to train. {network}")
            return
        problem, tab = self.setup_problem()
        where = self.side_tabs.tabText(tab) if problem else ""
        self.status.setText(f"Not ready to train: see the {where} tab." if problem
                            else "Ready to train.")

    # -- theme ---------------------------------------------------------------------------

    def apply_theme(self) -> None:
        t = theme.current()
        self.error.setStyleSheet(f"color: {t.error.name()};")
        self.changed.setStyleSheet(f"color: {t.warning.name() if t.dark else '#8a5300'};")

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self.apply_theme()
