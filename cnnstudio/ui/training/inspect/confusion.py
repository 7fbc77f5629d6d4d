"""The confusion matrix of the validation split, the images behind each cell, and the mistakes
the network was most sure of.

The predictions run on a QThread (a private copy of the model, so the next epoch's weights can
load meanwhile); the GUI thread only counts, colours and draws. So do the Grad-CAM overlays of
the shown images (a toggle), on a second QThread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.train.attribution import GRADCAM
from cnnstudio.train.inspect import (
    confusion_matrix,
    iter_predictions,
    most_confident_mistakes,
    validation_images,
    validation_labels,
)
from cnnstudio.ui import theme
from cnnstudio.ui.images import image_of, text_on
from cnnstudio.ui.training.inspect.common import BackgroundTask, InspectPage
from cnnstudio.ui.training.inspect.overlay import explain_work, overlay_image
from cnnstudio.ui.training.inspect.widgets import TileGrid
from cnnstudio.ui.widgets import scrolled

CELL_LIMIT = 60  # images shown for one cell
MISTAKES = 30
STREAMED_LIMIT = 2000  # validation images predicted when a folder is read from disk
SAMPLE_TILE = 56


class ConfusionHeatmap(QWidget):
    """K×K counts, true class down, predicted class across; click a cell to pick it."""

    cell_clicked = Signal(int, int)

    MAX_CELL = 48

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix = np.zeros((0, 0), np.int64)
        self.classes: list[str] = []
        self.selected: tuple[int, int] | None = None
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)

    def set_matrix(self, matrix: np.ndarray, classes: list[str]) -> None:
        self.matrix, self.classes = np.asarray(matrix), list(classes)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Room for cells of 40 pixels (at most 600 wide): the rest goes to the images."""
        k = max(1, len(self.matrix))
        metrics = QFontMetrics(self.font())
        side = min(600, max(240, k * 40 + 2 * metrics.height() + 130))
        return QSize(side, side)

    def _names(self) -> list[str]:
        return [self.classes[k] if k < len(self.classes) else str(k)
                for k in range(len(self.matrix))]

    def _geometry(self) -> tuple[int, int, int, bool]:
        """(left, top, cell size, whether the column names stand upright). Class names need
        cells at least a line high; without them (many classes) the matrix takes their room."""
        k = max(1, len(self.matrix))
        metrics = QFontMetrics(self.font())
        line = metrics.height()
        names = self._names()
        widest = min(110, max((metrics.horizontalAdvance(n) for n in names), default=0))
        left = line + 10 + widest + 6
        cell = min(self.MAX_CELL, max(4, (self.width() - left - 8) // k))
        upright = widest > cell - 4
        top = line + 8 + (widest if upright else line) + 4
        cell = min(cell, max(4, (self.height() - top - 8) // k))
        if cell < self.labelled_cell():
            left, top = line + 10, line + 8
            cell = max(2, min((self.width() - left - 8) // k, (self.height() - top - 8) // k))
            upright = False
        return left, top, cell, upright

    def labelled_cell(self) -> int:
        """The smallest cell that still gets its class names on the axes."""
        return QFontMetrics(self.font()).height() - 2

    def cell_rect(self, row: int, column: int) -> QRect:
        left, top, cell, _ = self._geometry()
        return QRect(left + column * cell, top + row * cell, cell, cell)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        left, top, cell, _ = self._geometry()
        k = len(self.matrix)
        column, row = (pos.x() - left) // cell, (pos.y() - top) // cell
        if k and 0 <= row < k and 0 <= column < k and pos.x() >= left and pos.y() >= top:
            return int(row), int(column)
        return None

    def cell_colour(self, row: int, column: int) -> QColor:
        palette, now = self.palette(), theme.current()
        base = palette.color(QPalette.ColorRole.Base)
        total = max(1, int(self.matrix[row].sum()))
        share = self.matrix[row, column] / total
        if row == column:
            return theme.mix(base, now.selection, 0.12 + 0.88 * share if share else 0.0)
        strength = 0.2 + 0.8 * math.sqrt(min(1.0, 4 * share)) if share else 0.0
        return theme.mix(base, now.error, strength)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        k = len(self.matrix)
        if not k:
            return
        painter = QPainter(self)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        grid = palette.color(QPalette.ColorRole.Mid)
        metrics = QFontMetrics(self.font())
        left, top, cell, upright = self._geometry()
        names = self._names()
        side = k * cell
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text)
        painter.drawText(QRect(left, 2, side, metrics.height()), Qt.AlignmentFlag.AlignHCenter,
                         "Predicted class")
        painter.save()
        painter.translate(2, top + side / 2)
        painter.rotate(-90)
        painter.drawText(QRect(-side // 2, 0, side, metrics.height()),
                         Qt.AlignmentFlag.AlignHCenter, "True class")
        painter.restore()
        painter.setFont(self.font())
        counts_fit = cell >= metrics.height() + 2
        digits = metrics.horizontalAdvance(str(int(self.matrix.max()))) + 4
        labels_fit = cell >= self.labelled_cell()
        name_w = left - metrics.height() - 16
        for i in range(k):
            if labels_fit:
                name = metrics.elidedText(names[i], Qt.TextElideMode.ElideRight, name_w)
                painter.drawText(QRect(left - name_w - 6, top + i * cell, name_w, cell),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, name)
                if upright:
                    painter.save()
                    painter.translate(left + i * cell, top - 4)
                    painter.rotate(-90)
                    painter.drawText(QRect(0, 0, name_w, cell),
                                     Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                     metrics.elidedText(names[i], Qt.TextElideMode.ElideRight,
                                                        name_w))
                    painter.restore()
                else:
                    painter.drawText(QRect(left + i * cell, top - metrics.height() - 4, cell,
                                           metrics.height()), Qt.AlignmentFlag.AlignHCenter,
                                     names[i])
        for row in range(k):
            for column in range(k):
                rect = QRect(left + column * cell, top + row * cell, cell, cell)
                colour = self.cell_colour(row, column)
                painter.fillRect(rect, colour)
                count = int(self.matrix[row, column])
                if count and counts_fit and digits <= cell:
                    painter.setPen(text_on(colour))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count))
        painter.setPen(QPen(grid, 1))
        for i in range(k + 1 if cell >= 8 else 0):
            painter.drawLine(left, top + i * cell, left + side, top + i * cell)
            painter.drawLine(left + i * cell, top, left + i * cell, top + side)
        painter.drawRect(left, top, side, side)
        if self.selected is not None:
            row, column = self.selected
            painter.setPen(QPen(text, 3))
            painter.drawRect(self.cell_rect(row, column).adjusted(1, 1, -1, -1))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        hit = self.cell_at(event.position().toPoint())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.selected = hit
            self.update()
            self.cell_clicked.emit(*hit)

    def event(self, event: Any) -> bool:
        if isinstance(event, QHelpEvent):
            hit = self.cell_at(event.pos())
            if hit is None:
                QToolTip.hideText()
                return True
            row, column = hit
            names, count = self._names(), int(self.matrix[row, column])
            total = max(1, int(self.matrix[row].sum()))
            QToolTip.showText(event.globalPos(),
                              f"true {names[row]}, predicted {names[column]}: {count:,} "
                              f"image{'s' * (count != 1)} ({count / total:.1%} of "
                              f"{names[row]})", self)
            return True
        return super().event(event)


class ConfusionView(InspectPage):
    """Validation accuracy, the confusion matrix, a cell's images and the worst mistakes.

    Clicking an image emits sample_chosen(validation index), for the other views to show it."""

    sample_chosen = Signal(int)

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.matrix: np.ndarray | None = None
        self.probabilities: np.ndarray | None = None
        self.labels = np.zeros(0, np.int64)
        self.indices = np.zeros(0, np.int64)  # validation index of each predicted row
        self._computed: tuple[int, int] | None = None  # (model revision, id of the data)
        self._requested: tuple[int, int] | None = None  # the latest one sent to the thread
        self._task = BackgroundTask(self)
        self._task.done.connect(self._predicted)
        self._task.failed.connect(self._failed)
        self._task.progress.connect(self._progress)

        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.recompute_button = QPushButton("Recompute")
        self.recompute_button.setToolTip("Predict the validation images again")
        self.recompute_button.clicked.connect(self.recompute)
        self.overlay_check = QCheckBox("Grad-CAM overlay")
        self.overlay_check.setToolTip(
            "Colour each image below by Grad-CAM of the last convolution before the classifier: "
            "the regions that made the network predict its class (for a mistake, the wrong "
            "class)")
        self.overlay_check.toggled.connect(self._overlay_toggled)
        self._overlay_task = BackgroundTask(self)
        self._overlay_task.done.connect(self._overlays_ready)
        self._overlay_task.failed.connect(self._overlays_failed)
        self._overlay_key: tuple[object, ...] | None = None  # what the thread computes now
        self.overlays_shown = False  # the tiles show overlays (not plain images) now
        top = QHBoxLayout()
        top.addWidget(self.summary_label, 1)
        top.addWidget(self.overlay_check)
        top.addWidget(self.progress)
        top.addWidget(self.recompute_button)

        self.heatmap = ConfusionHeatmap()
        self.heatmap.cell_clicked.connect(self.show_cell)
        self.cell_label = QLabel("Click a cell of the matrix to see its images")
        self.cell_label.setWordWrap(True)
        self.cell_grid = TileGrid(tile_px=SAMPLE_TILE)
        self._cell_rows = np.zeros(0, np.int64)
        self._mistake_rows = np.zeros(0, np.int64)
        self.cell_grid.tile_clicked.connect(lambda i: self._choose(self._cell_rows, i))
        self.mistakes_label = QLabel()
        self.mistakes_label.setWordWrap(True)
        self.mistakes_grid = TileGrid(tile_px=SAMPLE_TILE)
        self.mistakes_grid.tile_clicked.connect(lambda i: self._choose(self._mistake_rows, i))
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(6, 0, 0, 0)
        column.addWidget(self.cell_label)
        column.addWidget(scrolled(self.cell_grid), 1)
        column.addWidget(self.mistakes_label)
        column.addWidget(scrolled(self.mistakes_grid), 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.heatmap)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        outer = QVBoxLayout(self.content)
        outer.addLayout(top)
        outer.addWidget(self.splitter, 1)

    # -- computing -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._task.running

    def clear_content(self) -> None:
        self.matrix, self.probabilities = None, None
        self._computed = self._requested = None
        self.heatmap.set_matrix(np.zeros((0, 0), np.int64), [])
        self.cell_grid.clear()
        self.mistakes_grid.clear()

    def update_content(self) -> None:
        key = (self.context.revision, id(self.context.data))
        if key != self._computed and key != self._requested:
            self._start(key)

    def recompute(self) -> None:
        if self.context.ready:
            self._pages.setCurrentWidget(self.content)
            self._start((self.context.revision, id(self.context.data)))

    def _start(self, key: tuple[int, int]) -> None:
        data, model = self.context.data, self.context.model_copy()
        if data is None or model is None:
            return
        labels = validation_labels(data)
        if getattr(data, "streaming", False) and len(labels) > STREAMED_LIMIT:
            indices = np.sort(np.random.default_rng(0).choice(len(labels), STREAMED_LIMIT,
                                                              replace=False))
        else:
            indices = np.arange(len(labels))
        mean, std = self.context.mean, self.context.std
        self.progress.setRange(0, max(1, len(indices)))
        self.progress.setValue(0)
        self.progress.setFormat("predicting %v of %m")
        self.progress.show()
        self.recompute_button.setEnabled(False)
        if self.matrix is None:
            self.summary_label.setText("Predicting the validation images…")
        work = _prediction_work(model, data, indices, labels[indices], mean, std, key,
                                self.context.main_output.kind)
        self._requested = key
        self._task.start(work)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _failed(self, message: str) -> None:
        self._requested = None
        self.progress.hide()
        self.recompute_button.setEnabled(True)
        colour = theme.current().error.name()
        first = message.splitlines()[0] if message else "unknown error"
        self.summary_label.setText(f"<span style='color:{colour}'>Cannot predict the validation "
                                   f"images: {first}</span>")

    def _predicted(self, result: tuple[tuple[int, int], np.ndarray, np.ndarray,
                                       np.ndarray]) -> None:
        key, indices, labels, probabilities = result
        self.progress.hide()
        self.recompute_button.setEnabled(True)
        self._computed = key
        self.indices, self.labels, self.probabilities = indices, labels, probabilities
        classes = self.context.classes
        k = max(len(classes), probabilities.shape[1] if probabilities.ndim == 2 else 0)
        predicted = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, int)
        resized = self.matrix is None or len(self.matrix) != k
        self.matrix = confusion_matrix(labels, predicted, k)
        self.heatmap.set_matrix(self.matrix, classes)
        if resized:  # room for the matrix, the rest for the images (the user may move it)
            total_width = sum(self.splitter.sizes()) or self.width()
            wanted = min(self.heatmap.sizeHint().width(), total_width * 3 // 5)
            self.splitter.setSizes([wanted, max(1, total_width - wanted)])
        total, right = int(self.matrix.sum()), int(np.trace(self.matrix))
        subset = ""
        data = self.context.data
        if data is not None and total < data.num_val:
            subset = f" (a sample of the {data.num_val:,})"
        where = self.context.description()
        self.summary_label.setText(
            f"<b>Validation accuracy {right / max(total, 1):.1%}</b>: {right:,} of {total:,} "
            f"images right{subset}" + (f" · Weights {where}" if where else ""))
        self._show_mistakes()
        if self.heatmap.selected is not None:
            self.show_cell(*self.heatmap.selected)

    # -- showing images --------------------------------------------------------------------

    def _images(self, rows: np.ndarray) -> list[QImage]:
        if not len(rows):
            return []
        return [image_of(image) for image in validation_images(self.context.data,
                                                               self.indices[rows])]

    def _choose(self, rows: np.ndarray, tile: int) -> None:
        if 0 <= tile < len(rows):
            self.sample_chosen.emit(int(self.indices[rows[tile]]))

    def _name(self, k: int) -> str:
        classes = self.context.classes
        return classes[k] if 0 <= k < len(classes) else str(k)

    def show_cell(self, row: int, column: int) -> None:
        """The images of true class `row` predicted as `column` (at most CELL_LIMIT)."""
        if self.probabilities is None or self.matrix is None:
            return
        self.heatmap.selected = (row, column)
        self.heatmap.update()
        predicted = self.probabilities.argmax(axis=1)
        rows = np.flatnonzero((self.labels == row) & (predicted == column))
        shown = self._cell_rows = rows[:CELL_LIMIT]
        confidence = self.probabilities[shown, column]
        captions = [f"{p:.0%}" for p in confidence]
        tips = [f"validation image {self.indices[r]}: true {self._name(row)}, predicted "
                f"{self._name(column)} ({p:.1%})" for r, p in zip(shown, confidence)]
        self.cell_grid.set_tiles(self._images(shown), captions, tips)
        self._start_overlays()
        what = "right" if row == column else "wrong"
        more = f"; the first {len(shown)} shown" if len(rows) > len(shown) else ""
        self.cell_label.setText(
            f"<b>True {self._name(row)}, predicted {self._name(column)}</b> ({what}): "
            f"{len(rows):,} image{'s' * (len(rows) != 1)}{more}. Under each: the network's "
            "confidence; click one to look at it in Feature maps and Predict.")

    def _show_mistakes(self) -> None:
        assert self.probabilities is not None
        rows = self._mistake_rows = most_confident_mistakes(self.probabilities, self.labels,
                                                            MISTAKES)
        predicted = self.probabilities.argmax(axis=1)
        captions, tips = [], []
        for r in rows:
            true, guess = int(self.labels[r]), int(predicted[r])
            p = float(self.probabilities[r, guess])
            captions.append(f"{self._name(true)}→{self._name(guess)} {p:.0%}")
            tips.append(f"validation image {self.indices[r]}: true {self._name(true)}, "
                        f"predicted {self._name(guess)} with {p:.1%}")
        self.mistakes_grid.set_tiles(self._images(rows), captions, tips)
        self._start_overlays()
        self.mistakes_label.setText(
            "<b>Most confident mistakes</b>: true → predicted, confidence" if len(rows) else
            "<b>No mistakes</b> on these validation images")


    # -- overlays --------------------------------------------------------------------------

    @property
    def overlay_busy(self) -> bool:
        return self._overlay_task.running

    def _overlay_toggled(self, on: bool) -> None:
        if on:
            self._start_overlays()
            return
        self._overlay_key = None
        if self.overlays_shown:
            self.overlays_shown = False
            self.cell_grid.replace_images(self._images(self._cell_rows))
            self.mistakes_grid.replace_images(self._images(self._mistake_rows))

    def _start_overlays(self) -> None:
        """Compute the overlays of the shown tiles on the thread (when the toggle is on)."""
        self.overlays_shown = False
        model = self.context.model
        if not self.overlay_check.isChecked() or model is None or self.probabilities is None:
            return
        rows = np.concatenate([self._cell_rows, self._mistake_rows]).astype(np.int64)
        if not len(rows):
            return
        indices = self.indices[rows]
        key = (self.context.revision, tuple(int(i) for i in indices))
        self._overlay_key = key
        images = validation_images(self.context.data, indices)
        self._overlay_task.start(explain_work(
            self.context.model_copy(), images, self.context.mean, self.context.std,
            method=GRADCAM, block_id=None, kind=self.context.main_output.kind,
            key=(key, images)))

    def _overlays_ready(self, result: tuple[tuple[object, np.ndarray], list[Any]]) -> None:
        (key, images), found = result
        if key != self._overlay_key or not self.overlay_check.isChecked():
            return  # other tiles by now, or the toggle went off
        self._overlay_key = None
        pictures = [overlay_image(image, e.heat, 0.5) for image, e in zip(images, found)]
        cells = len(self._cell_rows)
        self.cell_grid.replace_images(pictures[:cells])
        self.mistakes_grid.replace_images(pictures[cells:])
        self.overlays_shown = True

    def _overlays_failed(self, message: str) -> None:
        self._overlay_key = None
        self.overlay_check.setChecked(False)
        colour = theme.current().error.name()
        self.cell_label.setText(f"<span style='color:{colour}'>Cannot compute the Grad-CAM "
                                f"overlays: {message.splitlines()[0] if message else ''}</span>")


def _prediction_work(model: Any, data: Any, indices: np.ndarray, labels: np.ndarray,
                     mean: np.ndarray, std: np.ndarray, key: tuple[int, int],
                     kind: str) -> Callable[[Callable[[int, int], None]], object]:
    def work(progress: Callable[[int, int], None]) -> object:
        parts: list[np.ndarray] = []
        done, total, step = 0, len(indices), 256
        for start in range(0, total, step):
            chunk = indices[start:start + step]
            images = validation_images(data, chunk)
            parts.extend(iter_predictions(model, images, mean, std, batch=step, kind=kind))
            done += len(chunk)
            progress(done, total)
        k = parts[0].shape[1] if parts else 0
        probabilities = np.concatenate(parts) if parts else np.zeros((0, k), np.float32)
        return key, indices, labels, probabilities

    return work
