"""The learning-rate finder of the Training page: a button beside the learning-rate field and
the dialog it opens.

The dialog runs train/lr_find.py's sweep on a snapshot of the project on a background thread
(BackgroundTask), draws the loss against the learning rate on a log axis as the points come,
marks the suggested rate and says the rule behind it. "Use this rate" sets the project's
learning rate with Document.update_settings: one undo step. The button is off while a run
trains and while the network or the dataset has a problem; its tooltip says which.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.project import Project
from cnnstudio.core.settings import DATASET
from cnnstudio.ui import theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.dataset_panel import plain_message
from cnnstudio.ui.training.inspect.common import BackgroundTask

BUTTON_TEXT = "Find learning rate…"
BUTTON_TIP = ("Train a copy of the network for a short while as the learning rate grows from "
              "very small to large, and get a suggested rate. The project changes only if you "
              "use the rate.")
RUNNING_TIP = "Not while a run trains: wait for it to end, or stop it."


def snapshot(project: Project, start_weights: bool) -> Project:
    """What the sweep trains: the project as it is now, from its weights file where it has one
    and `start_weights` is on (as the Train button would), unaffected by later edits."""
    return dataclasses.replace(project, graph=project.graph.copy(),
                               dataset=copy.deepcopy(project.dataset),
                               training=copy.deepcopy(project.training),
                               weights=project.weights if start_weights else None)


class LearningRateFinderDialog(QDialog):
    """Runs the sweep when shown; Cancel stops it within one mini-batch."""

    def __init__(self, document: Document, start_weights: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from cnnstudio.train import lr_find  # torch: the dialog trains at once anyway

        self.start_rate, self.end_rate = lr_find.START_RATE, lr_find.END_RATE
        self.steps = steps = lr_find.STEPS
        self.setWindowTitle("Find a learning rate")
        self.document = document
        self.project = snapshot(document.project, start_weights)
        self.result: Any = None  # the LRFindResult
        self.points: list[Any] = []  # filled by the sweep's thread, read on this one
        self.control: Any = None  # the sweep's TrainingControl
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._on_progress)
        self.task.done.connect(self._on_done)
        self.task.failed.connect(self._on_failed)

        self.intro = QLabel(
            f"A copy of the network trains on {steps} mini-batches while the learning rate "
            f"grows from {self.start_rate:g} to {self.end_rate:g}. The suggested rate is "
            f"{lr_find.SUGGESTION_RULE}: there the loss still falls steeply, well before it "
            "blows up. Nothing changes in the project until you use the rate.")
        self.intro.setWordWrap(True)
        self.graphics = pg.PlotWidget()
        self.plot: pg.PlotItem = self.graphics.getPlotItem()
        self.plot.setLogMode(x=True, y=False)
        self.plot.showGrid(x=True, y=True)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "loss")
        self.plot.setMenuEnabled(False)
        self.plot.getViewBox().setMouseEnabled(x=False, y=False)
        self.plot.addLegend(offset=(10, -10), labelTextSize="9pt")  # bottom left: the curve
        self.raw_curve = self.plot.plot([], [], name="loss")  # starts high, ends high on the right
        self.smooth_curve = self.plot.plot([], [], name="smoothed")
        self.lowest_mark = self.plot.plot([], [], name="lowest smoothed", pen=None, symbol="o",
                                          symbolSize=9)
        self.marker = pg.InfiniteLine(angle=90, movable=False)
        self.marker.hide()
        self.plot.addItem(self.marker, ignoreBounds=True)
        self.marker_label = pg.TextItem(anchor=(0, 0))
        self.marker_label.hide()
        self.plot.addItem(self.marker_label, ignoreBounds=True)
        self.graphics.setMinimumSize(560, 300)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(3 * self.status.fontMetrics().lineSpacing())  # the result
        self.status.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, steps)
        self.bar.setFormat("%v of %m steps")
        self.buttons = QDialogButtonBox()
        self.use_button = QPushButton("Use this rate")
        self.again_button = QPushButton("Run again")
        self.cancel_button = QPushButton("Cancel")
        self.buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.use_button.clicked.connect(self.use_rate)
        self.again_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._on_cancel_or_close)

        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(680, 520)
        self.apply_theme()
        self.start()

    # -- the sweep -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.task.running

    def start(self) -> None:
        """Sweep (again) on a background thread."""
        if self.running:
            return
        from cnnstudio.train.events import TrainingControl

        self.result, self.points = None, []
        self.control = TrainingControl()
        control, points, project, steps = self.control, self.points, self.project, self.steps

        def work(progress: Any) -> Any:
            from cnnstudio.core.adapt import input_block_id
            from cnnstudio.core.analysis import analyze
            from cnnstudio.train.data import load_with_settings
            from cnnstudio.train.lr_find import lr_find
            from cnnstudio.ui import torch_threads

            torch_threads.for_training()  # no run trains meanwhile: the button is off then
            graph = project.graph
            shape = analyze(graph).blocks[input_block_id(graph)].output_shape
            spec = DATASET.normalize(project.dataset)[0]["spec"]
            data = load_with_settings(spec, shape, project.dataset)
            progress(0, steps)

            def on_point(point: Any) -> None:
                points.append(point)
                progress(point.step, steps)

            return lr_find(project, data, control=control, on_point=on_point)

        self.bar.setValue(0)
        self.bar.show()
        self.status.setText("Loading the dataset …")
        self._set_colour(False)
        self._draw()
        self._set_buttons(running=True)
        self.task.start(work)

    def cancel(self) -> None:
        if self.running and self.control is not None:
            self.control.stop()
            self.status.setText("Cancelling after this mini-batch …")

    def _on_progress(self, done: int, total: int) -> None:
        self.bar.setValue(done)
        if not self.points:
            self.status.setText("Sweeping …")
            return
        point = self.points[min(done, len(self.points)) - 1]  # the thread may be further on
        self.status.setText(f"Step {point.step} of {total}: learning rate {point.rate:.2g}, "
                            f"smoothed loss {point.smoothed:.3g}")
        self._draw()

    def _on_done(self, result: Any) -> None:
        self.result = result
        self.points = list(result.points)
        self._draw()
        self.bar.hide()
        text = result.message[:1].upper() + result.message[1:] + "."
        if result.suggestion is not None and len(result.points) < result.steps:
            text += (f" The sweep stopped after {len(result.points)} of {result.steps} steps: "
                     f"{result.stop_reason}.")
        text += f" Took {result.seconds:.1f} s on {result.device}."
        self.status.setText(text)
        self._set_colour(result.suggestion is None and result.stop_reason != "cancelled")
        self._set_buttons(running=False)

    def _on_failed(self, message: str) -> None:
        self.bar.hide()
        self.status.setText(f"The sweep could not run. {plain_message(message).rstrip('.')}.")
        self._set_colour(True)
        self._set_buttons(running=False)

    def _set_buttons(self, running: bool) -> None:
        suggestion = self.suggestion
        self.use_button.setEnabled(not running and suggestion is not None)
        self.use_button.setText(f"Use {suggestion:.2g}" if suggestion is not None
                                else "Use this rate")
        self.use_button.setDefault(suggestion is not None)
        self.again_button.setEnabled(not running)
        self.cancel_button.setText("Cancel" if running else "Close")

    def _set_colour(self, problem: bool) -> None:
        self.status.setStyleSheet(f"color: {theme.current().error.name()};" if problem else "")

    @property
    def suggestion(self) -> float | None:
        return self.result.suggestion if self.result is not None else None

    # -- the answer ------------------------------------------------------------------------

    def use_rate(self) -> None:
        """Set the project's learning rate to the suggestion (one undo step) and close."""
        if self.suggestion is None or self.running:
            return
        self.document.update_settings("training", {"learning_rate": self.suggestion})
        self.accept()

    def _on_cancel_or_close(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        """Closing (Escape, the title bar) during the sweep cancels it first."""
        if self.running:
            self.cancel()
            self.task.wait(60_000)
        super().reject()

    # -- drawing ---------------------------------------------------------------------------

    def _draw(self) -> None:
        points = list(self.points)
        rates = [p.rate for p in points]
        self.raw_curve.setData(rates, [p.loss for p in points])
        self.smooth_curve.setData(rates, [p.smoothed for p in points])
        self.plot.setXRange(math.log10(self.start_rate), math.log10(self.end_rate),
                            padding=0.02)
        self.lowest_mark.setData([], [])
        if points:
            lowest = min(range(len(points)), key=lambda i: points[i].smoothed)
            if self.result is not None:
                self.lowest_mark.setData([points[lowest].rate], [points[lowest].smoothed])
            top = 1.25 * max(p.smoothed for p in points[:lowest + 1])
            bottom = max(0.0, 0.85 * min(p.loss for p in points))
            self.plot.setYRange(bottom, max(top, bottom + 1e-6), padding=0)
        suggestion = self.suggestion
        self.marker.setVisible(suggestion is not None)
        self.marker_label.setVisible(suggestion is not None)
        if suggestion is not None:
            x = math.log10(suggestion)  # the view's x is log10(rate) on a log axis
            self.marker.setPos(x)
            self.marker_label.setText(f"suggested {suggestion:.2g}")
            self.marker_label.setPos(x, self.plot.getViewBox().viewRange()[1][1])

    def apply_theme(self) -> None:
        t = theme.current()
        background = QColor("#1e2126") if t.dark else QColor("#ffffff")
        line = QColor("#64b5f6") if t.dark else QColor("#1565c0")
        mark = QColor("#ffb74d") if t.dark else QColor("#e65100")
        self.graphics.setBackground(background)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(t.subtext))
            axis.setTextPen(pg.mkPen(t.text))
            axis.label.setDefaultTextColor(t.text)
        self.raw_curve.setPen(pg.mkPen(theme.mix(background, line, 0.3), width=1))
        self.smooth_curve.setPen(pg.mkPen(line, width=2))
        self.marker.setPen(pg.mkPen(mark, width=2, style=Qt.DashLine))
        self.lowest_mark.setSymbolBrush(line)
        self.lowest_mark.setSymbolPen(pg.mkPen(background, width=1))
        self.marker_label.setColor(mark)
        legend = self.plot.legend
        if legend is not None:
            for _sample, label in legend.items:
                label.setText(label.text, color=t.text)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self.apply_theme()


class LearningRateFinderButton(QPushButton):
    """'Find learning rate…' beside the learning-rate field of the page's settings."""

    def __init__(self, page: Any) -> None:
        super().__init__(BUTTON_TEXT)
        self.page = page
        self.dialog: LearningRateFinderDialog | None = None
        self.clicked.connect(self.open_dialog)
        page.settings_panel.add_beside("learning_rate", self)
        page.session.state_changed.connect(self.update_state)
        page.document.analysis_changed.connect(self.update_state)
        page.document.settings_changed.connect(self.update_state)
        page.document.project_replaced.connect(self.update_state)
        page.dataset_panel.preview_ready.connect(self.update_state)
        self.update_state()

    def problem(self) -> str:
        """Why the sweep cannot run now ('' when it can)."""
        page = self.page
        if page.session.running:
            return RUNNING_TIP
        network = page.network_problem()
        if network:
            return network
        data_error = page.dataset_panel.error_text
        if data_error:
            return f"The dataset cannot be loaded: {plain_message(data_error)}."
        return page.setup_problem()[0]

    def update_state(self, *_: Any) -> None:
        problem = self.problem()
        self.setEnabled(not problem)
        self.setToolTip(problem or BUTTON_TIP)

    def open_dialog(self) -> LearningRateFinderDialog | None:
        """Open the dialog (window-modal: no run starts while it sweeps)."""
        if self.problem():
            return None
        dialog = LearningRateFinderDialog(self.page.document,
                                          self.page.start_weights.isChecked(), self.window())
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.setWindowModality(Qt.WindowModal)
        dialog.destroyed.connect(lambda *_: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.show()
        return dialog
