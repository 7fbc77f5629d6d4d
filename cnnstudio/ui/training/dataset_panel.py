"""The dataset of the project: where it comes from, a preview, and whether it fits the network.

The spec is stored in the project through `Document.update_settings("dataset", ...)`, so it is
undoable and saved with the file. The preview (samples with their labels, the class balance,
the split sizes) is loaded on a worker thread from the QThreadPool, so the window never waits
for a disk or a download. When the images or the classes disagree with the network, the panel
says so and offers one-click fixes, each one undoable edit (core.adapt).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QEvent,
    QObject,
    QRunnable,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.adapt import (
    ClassMismatch,
    adapt,
    class_mismatches,
    input_block_id,
    repair_class_mismatches,
)
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.params import ParamError
from cnnstudio.core.settings import DATASET
from cnnstudio.core.sources import SAMPLE_SOURCE, SpecError, parse_spec
from cnnstudio.ui import theme, torch_threads
from cnnstudio.ui.document import Document
from cnnstudio.ui.panels.param_fields import ParamField, make_field
from cnnstudio.ui.training.dataset_source import PathRow, SourceRows
from cnnstudio.ui.training.plots import image_grid, outline_indicators

MAX_COLUMNS = 10


# -- background work ---------------------------------------------------------------------------


class _JobSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)


class _Job(QRunnable):
    def __init__(self, work: Callable[[Callable[[int, int], None]], Any],
                 signals: _JobSignals) -> None:
        super().__init__()
        self.work, self.signals = work, signals

    def run(self) -> None:
        torch_threads.helper_thread()
        try:
            result = self.work(self.signals.progress.emit)
        except Exception as err:  # shown as a message in the panel, never a traceback
            self._send(self.signals.failed, str(err).strip() or type(err).__name__)
        else:
            self._send(self.signals.done, result)

    @staticmethod
    def _send(signal: Any, value: Any) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the application is shutting down: nobody is listening
            pass


_RUNNING: set[_JobSignals] = set()


def run_in_background(work: Callable[[Callable[[int, int], None]], Any],
                      done: Callable[[Any], None], failed: Callable[[str], None],
                      progress: Callable[[int, int], None] | None = None) -> None:
    """work(progress) on the global thread pool; done(result) or failed(message) on the GUI
    thread. Connect bound methods of QObjects: a deleted receiver is simply not called."""
    signals = _JobSignals()
    _RUNNING.add(signals)
    signals.done.connect(done)
    signals.failed.connect(failed)
    if progress is not None:
        signals.progress.connect(progress)
    signals.done.connect(lambda _result: _RUNNING.discard(signals))
    signals.failed.connect(lambda _message: _RUNNING.discard(signals))
    QThreadPool.globalInstance().start(_Job(work, signals))


# -- helpers -------------------------------------------------------------------------------


def plain_message(message: str) -> str:
    """An engine or loader message in the window's words, starting with a capital."""
    message = message.replace("turn on downloading (--download)",
                              "tick “Download if missing” in the Dataset tab")
    return message[:1].upper() + message[1:]


def grid_columns(classes: int) -> int:
    """One class per column where it fits (sample_grid hands out classes in turns)."""
    if classes >= MAX_COLUMNS:
        return MAX_COLUMNS
    return classes * max(1, MAX_COLUMNS // max(classes, 1))


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(v) for v in shape)


# -- the preview -----------------------------------------------------------------------------


@dataclass
class DatasetPreview:
    """What the panel shows of a dataset: small, so the full arrays are not kept."""

    spec: str
    description: str
    image_shape: tuple[int, int, int]
    classes: list[str]
    num_train: int
    num_val: int
    counts: dict[str, int]
    images: np.ndarray
    labels: list[str]
    columns: int
    notes: list[str] = field(default_factory=list)


def load_preview(spec: str, fraction: float, seed: int, download: bool,
                 progress: Callable[[int, int], None] | None = None) -> DatasetPreview:
    """Load a dataset at its own image size and summarise it (runs on a worker thread)."""
    from cnnstudio.train.data import class_counts, describe, load_dataset, sample_grid

    loaded = load_dataset(spec, None, validation_fraction=fraction, split_seed=seed,
                          download=download, progress=progress)
    columns = grid_columns(loaded.num_classes)
    images, labels = sample_grid(loaded, 2 * columns)
    return DatasetPreview(
        spec=spec, description=describe(loaded), image_shape=tuple(loaded.image_shape),
        classes=list(loaded.classes), num_train=loaded.num_train, num_val=loaded.num_val,
        counts=class_counts(loaded), images=images,
        labels=[loaded.classes[int(k)] for k in labels], columns=columns,
        notes=list(loaded.notes))


@dataclass(frozen=True)
class FitReport:
    """How the network and a dataset disagree, and the fixes on offer."""

    problems: list[str]
    input_shape: tuple[int, int, int] | None = None  # set the Input block to this
    classes: int | None = None  # set the mismatched classifier layers to this many units
    mismatches: tuple[ClassMismatch, ...] = ()  # every Output that does not fit the classes


def check_fit(document: Document, preview: DatasetPreview) -> FitReport:
    graph, analysis = document.graph, document.analysis
    problems: list[str] = []
    input_fix = classes_fix = None
    try:
        input_id = input_block_id(graph)
    except GraphError as err:
        return FitReport([str(err)])
    expected = analysis.blocks[input_id].output_shape if input_id in analysis.blocks else None
    if expected is not None and tuple(expected) != preview.image_shape:
        problems.append(
            f"The images are {shape_text(preview.image_shape)} (channels×height×width) but the "
            f"Input block expects {shape_text(expected)}: training would convert every image.")
        input_fix = preview.image_shape
    mismatches = tuple(class_mismatches(graph, len(preview.classes), preview.spec, analysis))
    for mismatch in mismatches:
        problems.append(f"{plain_message(mismatch.message)}. Training cannot start until "
                        "they match.")
    if mismatches and all(m.repair is not None for m in mismatches):
        classes_fix = len(preview.classes)
    return FitReport(problems, input_fix, classes_fix, mismatches)


# -- the panel -------------------------------------------------------------------------------


class DatasetPanel(QWidget):
    """Source, split and preview of the project's dataset."""

    preview_ready = Signal(object)  # DatasetPreview (or None while there is none)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.preview: DatasetPreview | None = None
        self.fit = FitReport([])
        self.error_text = ""
        self._generation = 0
        self._loading = False
        self._wanted = False  # load only once the panel is seen

        self.fields: dict[str, ParamField] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.sources = SourceRows(self, form)  # source, path rows, download: core.sources
        for name in ("validation_fraction", "split_seed"):
            spec = DATASET.param(name)
            field_ = make_field(spec)
            field_.edited.connect(lambda value, n=name: self._store({n: value}))
            self.fields[name] = field_
            label = QLabel(spec.title)
            label.setToolTip(spec.help)
            form.addRow(label, field_.widget)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.hide()
        self.fit_box = QFrame()
        self.fit_box.setObjectName("fit_box")
        self.fit_text = QLabel()
        self.fit_text.setWordWrap(True)
        self.fix_input = QPushButton()
        self.fix_classes = QPushButton()
        self.fix_both = QPushButton()
        fit_layout = QVBoxLayout(self.fit_box)
        fit_layout.setContentsMargins(8, 6, 8, 6)
        fit_layout.addWidget(self.fit_text)
        for button in (self.fix_input, self.fix_classes, self.fix_both):
            fit_layout.addWidget(button)
        self.fit_box.hide()
        self.grid = QLabel()
        self.grid.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.balance = pg.PlotWidget()
        self.balance.setFixedHeight(130)
        self.balance.setMenuEnabled(False)
        self.balance.setMouseEnabled(x=False, y=False)
        self.balance.hideButtons()
        self.balance.setTitle("Training images per class", size="9pt")
        self.split = QLabel()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.fit_box)
        layout.addWidget(self.grid)
        layout.addWidget(self.balance)
        layout.addWidget(self.split)
        layout.addStretch(1)
        self.balance.hide()

        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(150)
        self._reload_timer.timeout.connect(self.reload)
        self.sources.kind_activated.connect(self._on_source)
        self.sources.path_chosen.connect(self._on_path)
        self.sources.download.toggled.connect(lambda _on: self._schedule_reload())
        self.fix_input.clicked.connect(lambda: self.apply_fix(input_shape=True))
        self.fix_classes.clicked.connect(lambda: self.apply_fix(classes=True))
        self.fix_both.clicked.connect(lambda: self.apply_fix(input_shape=True, classes=True))
        document.settings_changed.connect(self._on_settings_changed)
        document.project_replaced.connect(self._from_project)
        document.analysis_changed.connect(self._refresh_fit)
        self._from_project(reload=False)
        self.apply_theme()

    # -- the spec ----------------------------------------------------------------------------

    @property
    def path_row(self) -> PathRow:
        """The first path row: the folder or file of most sources, IDX's images file."""
        return self.sources.rows[0]

    def spec_from_widgets(self) -> str | None:
        """The spec the widgets describe; None while a path is missing. SpecError if bad."""
        return self.sources.spec()

    def _on_source(self) -> None:
        self._show_split()
        self._on_path(announce_missing=True)

    def _on_path(self, announce_missing: bool = False) -> None:
        try:
            spec = self.spec_from_widgets()
        except SpecError as err:
            self._set_error(str(err))
            return
        if spec is not None:
            self._store({"spec": spec})
        elif announce_missing:
            self._set_error("")
            current = self.document.project.dataset.get("spec", SAMPLE_SOURCE)
            self.status.setText(f"Choose {self.sources.missing_text()} of this dataset; until "
                                f"then the project keeps {current}.")

    def _store(self, changes: dict[str, Any]) -> None:
        try:
            self.document.update_settings("dataset", changes)
        except ParamError as err:
            self._set_error(str(err))

    def _show_split(self) -> None:
        """The split fields, greyed out for a source that brings its own split."""
        fixed = self.sources.kind.fixed_split
        for field_ in self.fields.values():
            field_.widget.setEnabled(not fixed)
            field_.widget.setToolTip("This dataset comes with its own training and validation "
                                     "split." if fixed else "")

    def _from_project(self, reload: bool = True) -> None:
        """Show the project's dataset settings (opened, replaced, undone)."""
        values, _problems = DATASET.normalize(self.document.project.dataset)
        self.sources.show_spec(parse_spec(values["spec"]))  # normalize kept only a good spec
        for name, field_ in self.fields.items():
            field_.set_value(values[name])
        self._show_split()
        if reload:
            self._schedule_reload()

    def _on_settings_changed(self, group: str, _changes: dict[str, Any]) -> None:
        if group == "dataset":
            self._from_project()

    # -- loading -----------------------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Load the preview the first time the panel is needed."""
        if not self._wanted:
            self._wanted = True
            self.reload()

    def _schedule_reload(self) -> None:
        if self._wanted:
            self._reload_timer.start()

    @property
    def loading(self) -> bool:
        return self._loading

    def reload(self) -> None:
        values, _problems = DATASET.normalize(self.document.project.dataset)
        spec = values["spec"]
        self._generation += 1
        generation = self._generation
        self._loading = True
        self._set_error("")
        self.status.setText(f"Loading {spec} …")
        download = self.sources.download.isChecked() and self.sources.kind.can_download

        def work(progress: Callable[[int, int], None]) -> tuple[int, DatasetPreview | None, str]:
            try:
                return generation, load_preview(spec, values["validation_fraction"],
                                                values["split_seed"], download, progress), ""
            except Exception as err:  # DatasetError and the like: a message, not a traceback
                return generation, None, str(err).strip() or type(err).__name__

        run_in_background(work, self._on_result, self._on_failed, self._on_progress)

    def _on_progress(self, done: int, total: int) -> None:
        if self._loading:
            self.status.setText(f"Reading images: {done:,} of {total:,} …")

    def _on_result(self, result: tuple[int, DatasetPreview | None, str]) -> None:
        generation, preview, message = result
        if generation != self._generation:
            return  # an older request: a newer one is on its way
        if preview is None:
            self._on_failed(message)
            return
        self._loading = False
        self.preview = preview
        notes = "".join(f"\n• {note}" for note in preview.notes)
        self.status.setText(preview.description + notes)
        self._draw_preview()
        self._refresh_fit()
        self.preview_ready.emit(preview)

    def _on_failed(self, message: str) -> None:
        self._loading = False
        self.preview = None
        self.status.setText("")
        self._set_error(plain_message(message))
        self.grid.clear()
        self.balance.hide()
        self.split.clear()
        self.fit_box.hide()
        self.preview_ready.emit(None)

    def _set_error(self, message: str) -> None:
        self.error_text = message
        self.error.setText(message[:1].upper() + message[1:])
        self.error.setVisible(bool(message))

    # -- showing it --------------------------------------------------------------------------

    def _draw_preview(self) -> None:
        preview = self.preview
        if preview is None:
            return
        self.grid.setPixmap(image_grid(preview.images, preview.labels, preview.columns))
        names = list(preview.counts)
        counts = np.array([preview.counts[n] for n in names], np.float64)
        self.balance.clear()
        colour = theme.current().selection
        self.balance.addItem(pg.BarGraphItem(x=np.arange(len(names)), height=counts, width=0.8,
                                             brush=colour, pen=pg.mkPen(colour)))
        every = max(1, math.ceil(len(names) / 20))
        self.balance.getAxis("bottom").setTicks(
            [[(i, names[i][:8]) for i in range(0, len(names), every)]])
        self.balance.setXRange(-0.6, len(names) - 0.4, padding=0)
        self.balance.setYRange(0, max(float(counts.max(initial=1)), 1.0) * 1.08, padding=0)
        self.balance.show()
        self.split.setText(f"Split: {preview.num_train:,} training and {preview.num_val:,} "
                           f"validation images, {len(names)} classes")

    def _refresh_fit(self) -> None:
        if self.preview is None:
            self.fit_box.hide()
            return
        self.fit = check_fit(self.document, self.preview)
        self.fit_text.setText("\n".join(self.fit.problems))
        shape, classes = self.fit.input_shape, self.fit.classes
        if shape is not None:
            self.fix_input.setText(f"Set Input to {shape_text(shape)}")
        if classes is not None:
            self.fix_classes.setText(f"Set classes to {classes}")
            self.fix_classes.setToolTip("Sets " + ", ".join(
                f"{self.document.graph.block(m.block_id).label} ({m.block_id})"
                for m in self.fit.mismatches) + f" to {classes} units, in one undoable step.")
        self.fix_both.setText("Fix both in one step")
        self.fix_input.setVisible(shape is not None)
        self.fix_classes.setVisible(classes is not None)
        self.fix_both.setVisible(shape is not None and classes is not None)
        self.fit_box.setVisible(bool(self.fit.problems))

    def apply_fix(self, input_shape: bool = False, classes: bool = False) -> None:
        """Fit the network to the dataset: one undoable edit."""
        shape = self.fit.input_shape if input_shape else None
        count = self.fit.classes if classes else None
        if shape is None and count is None:
            return
        parts = ([f"Input {shape_text(shape)}"] if shape else []) + (
            [f"{count} classes"] if count else [])

        template_id = self.document.project.template  # refitted as File → New builds it

        def fit(graph: Graph) -> None:
            adapt(graph, shape, None, template_id)
            if count is not None:  # the Outputs that do not fit, asked again after the input
                repair_class_mismatches(graph, class_mismatches(graph, count))

        try:
            self.document.edit("Fit to dataset: " + ", ".join(parts), fit)
        except GraphError as err:
            self._set_error(str(err))

    def apply_theme(self) -> None:
        t = theme.current()
        self.error.setStyleSheet(f"color: {t.error.name()};")
        tint = QColor(t.warning)
        tint.setAlpha(40)
        self.fit_box.setStyleSheet(
            f"QFrame#fit_box {{ border: 1px solid {t.warning.name()}; border-radius: 4px; "
            f"background: rgba({tint.red()}, {tint.green()}, {tint.blue()}, {tint.alpha()}); }}")
        background = QColor("#1e2126") if t.dark else QColor("#ffffff")
        self.balance.setBackground(background)
        for name in ("left", "bottom"):
            axis = self.balance.getAxis(name)
            axis.setPen(pg.mkPen(t.subtext))
            axis.setTextPen(pg.mkPen(t.text))
        self.balance.getPlotItem().titleLabel.setText("Training images per class", size="9pt",
                                                      color=t.text.name())
        outline_indicators(self.sources.download)
        self._draw_preview()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self.apply_theme()
