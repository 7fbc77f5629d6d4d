"""Live loss and accuracy curves of a run, with overlays of earlier runs.

Two pyqtgraph plots share an x axis in epochs (setXLink). Training values arrive per step
(smoothed by an exponential moving average; the raw steps faint behind), validation values once
per epoch (markers). Data goes into pre-allocated NumPy buffers that double when full; the
curves are redrawn by a QTimer at most 30 times a second and only when new data came in, never
once per batch. Hovering shows the values under the mouse in a read-out line. The small image
grids of the dataset and augmentation previews are drawn here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from cnnstudio.ui import theme
from cnnstudio.ui.images import image_of

REDRAW_MS = 33  # at most ~30 redraws a second
OVERLAY_HUES = ("#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#283593", "#9e9d24")


# -- small drawings shared by the page's panels ---------------------------------------------


def image_grid(images: np.ndarray, labels: list[str], columns: int, cell: int = 34,
               text: QColor | None = None) -> QPixmap:
    """Images in a grid, each scaled to `cell` pixels with its label below (labels may be [])."""
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns) if len(images) else 0
    label_h = QFontMetrics(QFont()).height() if labels else 0
    gap = 4
    pixmap = QPixmap(max(columns * (cell + gap) - gap, 1),
                     max(rows * (cell + label_h + gap) - gap, 1))
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.SmoothPixmapTransform, False)
    painter.setPen(text or theme.current().text)
    metrics = painter.fontMetrics()
    for i, image in enumerate(images):
        x, y = (i % columns) * (cell + gap), (i // columns) * (cell + label_h + gap)
        painter.drawImage(QRect(x, y, cell, cell), image_of(image))
        if labels:
            shown = metrics.elidedText(labels[i], Qt.ElideRight, cell + gap)
            painter.drawText(QRect(x - gap // 2, y + cell, cell + gap, label_h),
                             Qt.AlignCenter, shown)
    painter.end()
    return pixmap


def outline_indicators(widget: QWidget) -> None:
    """Check boxes that show on the dark theme: Fusion outlines them with a shade of the
    Window colour, which is too close to the dark background, so a lighter one stands in."""
    palette = widget.palette()
    app_window = QApplication.palette().color(QPalette.Window)
    palette.setColor(QPalette.Window, QColor("#7d8594") if theme.current().dark else app_window)
    widget.setPalette(palette)


# -- the curves ----------------------------------------------------------------------------


class SeriesBuffer:
    """x and y values in pre-allocated arrays that double in size when full."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(max(capacity, 1), np.float64)
        self._y = np.empty(max(capacity, 1), np.float64)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    @property
    def capacity(self) -> int:
        return len(self._x)

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    def extend(self, xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray) -> None:
        count = len(xs)
        needed = self.n + count
        if needed > len(self._x):
            size = len(self._x)
            while size < needed:
                size *= 2
            for name in ("_x", "_y"):
                grown = np.empty(size, np.float64)
                grown[: self.n] = getattr(self, name)[: self.n]
                setattr(self, name, grown)
        self._x[self.n:needed] = xs
        self._y[self.n:needed] = ys
        self.n = needed

    def append(self, x: float, y: float) -> None:
        self.extend((x,), (y,))

    def clear(self) -> None:
        self.n = 0


class Smoother:
    """An exponential moving average with bias correction; `decay` per step of weight one."""

    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self.value = 0.0
        self.norm = 0.0

    def add(self, value: float, steps: int = 1) -> float:
        d = self.decay ** steps
        self.value = d * self.value + (1 - d) * value
        self.norm = d * self.norm + (1 - d)
        return self.value / self.norm if self.norm else value

    def reset(self) -> None:
        self.value = self.norm = 0.0


@dataclass
class Overlay:
    """An earlier run drawn beside the live one: per-epoch records of metrics.jsonl."""

    label: str
    records: list[dict[str, Any]]


def _nearest(values: np.ndarray, x: float) -> int | None:
    if not len(values):
        return None
    i = int(np.searchsorted(values, x))
    if i >= len(values):
        return len(values) - 1
    if i > 0 and x - values[i - 1] < values[i] - x:
        return i - 1
    return i


class TrainingPlots(QWidget):
    """Loss above accuracy; call the add_* methods as events arrive, the timer draws."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train_loss_raw = SeriesBuffer()
        self.train_loss = SeriesBuffer()  # smoothed
        self.train_acc_raw = SeriesBuffer()
        self.train_acc = SeriesBuffer()  # smoothed
        self.val_loss = SeriesBuffer(64)
        self.val_acc = SeriesBuffer(64)
        self._buffers = (self.train_loss_raw, self.train_loss, self.train_acc_raw,
                         self.train_acc, self.val_loss, self.val_acc)
        self._loss_smoother = Smoother()
        self._acc_smoother = Smoother()
        self._last_acc: tuple[int, int, float] | None = None  # (epoch, epoch step, running acc)
        self._dirty = False
        self.redraw_count = 0
        self.overlays: dict[str, Overlay] = {}
        self._overlay_items: dict[str, list[pg.PlotDataItem]] = {}

        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.graphics = pg.GraphicsLayoutWidget()
        self.loss_plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        self.acc_plot: pg.PlotItem = self.graphics.addPlot(row=1, col=0)
        self.acc_plot.setXLink(self.loss_plot)
        for plot, title in ((self.loss_plot, "Loss"), (self.acc_plot, "Accuracy (%)")):
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.showGrid(x=True, y=True)
            for name in ("left", "bottom"):
                plot.getAxis(name).enableAutoSIPrefix(False)  # epochs stay epochs, not ×0.001
            for name in ("left", "bottom"):  # opaque grid lines in a pale colour:
                # Qt draws translucent lines about 20 times slower, which cost the GUI thread
                # ~50 ms per redraw during training; the grid follows the labelled ticks
                plot.getAxis(name).setStyle(tickAlpha=255, maxTickLevel=0)
            plot.setLabel("left", title)
            plot.setMenuEnabled(False)
            plot.getViewBox().setMouseEnabled(x=True, y=False)
            plot.getViewBox().setDefaultPadding(0.03)  # the last epoch's marker shows whole
        self.loss_plot.addLegend(offset=(-10, 10), labelTextSize="9pt")  # loss falls: top right
        self.acc_plot.addLegend(offset=(-10, -10), labelTextSize="9pt")  # accuracy rises
        self.acc_plot.setLabel("bottom", "epoch")
        self.loss_plot.getAxis("bottom").setStyle(showValues=True)

        self.curves = {
            "train_loss_raw": self.loss_plot.plot([], []),
            "train_loss": self.loss_plot.plot([], [], name="training (smoothed)"),
            "val_loss": self.loss_plot.plot([], [], name="validation", symbol="o", symbolSize=7),
            "train_acc_raw": self.acc_plot.plot([], []),
            "train_acc": self.acc_plot.plot([], [], name="training (smoothed)"),
            "val_acc": self.acc_plot.plot([], [], name="validation", symbol="o", symbolSize=7),
        }
        self.crosshairs = [pg.InfiniteLine(angle=90, movable=False) for _ in range(2)]
        for plot, line in zip((self.loss_plot, self.acc_plot), self.crosshairs, strict=True):
            line.hide()
            plot.addItem(line, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30,
                                           slot=self._on_mouse_moved)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._tick)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.readout)
        self.apply_theme()

    # -- data in ---------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the live run (a new run starts)."""
        for buffer in self._buffers:
            buffer.clear()
        self._loss_smoother.reset()
        self._acc_smoother.reset()
        self._last_acc = None
        self.readout.setText(" ")
        self._mark_dirty()

    def set_smoothing(self, steps_per_epoch: int) -> None:
        """About a tenth of an epoch of memory, between 3 and 50 steps."""
        window = min(max(steps_per_epoch / 10, 3.0), 50.0)
        self._loss_smoother.decay = self._acc_smoother.decay = 1 - 1 / window

    def add_steps(self, event: Any) -> None:
        """A StepProgress: its per-step losses and the accuracy of the steps it covers."""
        losses = np.asarray(event.step_losses, np.float64)
        count = len(losses)
        if not count:
            return
        spe = max(int(event.steps_per_epoch), 1)
        first = event.step - count + 1
        xs = np.arange(first, event.step + 1, dtype=np.float64) / spe
        finite = np.isfinite(losses)
        self.train_loss_raw.extend(xs[finite], losses[finite])
        smoothed = [self._loss_smoother.add(float(v)) for v in losses[finite]]
        self.train_loss.extend(xs[finite], smoothed)

        epoch, step, running = int(event.epoch), int(event.epoch_step), float(event.train_acc)
        before_step, before_acc = 0, 0.0
        if self._last_acc is not None and self._last_acc[0] == epoch and self._last_acc[1] < step:
            before_step, before_acc = self._last_acc[1], self._last_acc[2]
        window = (running * step - before_acc * before_step) / max(step - before_step, 1)
        window = min(max(window, 0.0), 1.0)
        self._last_acc = (epoch, step, running)
        x = event.step / spe
        self.train_acc_raw.append(x, window * 100)
        self.train_acc.append(x, self._acc_smoother.add(window, max(step - before_step, 1)) * 100)
        self._mark_dirty()

    def add_epoch(self, record: Any) -> None:
        """An EpochEnded (or a metrics.jsonl record): the validation markers."""
        get = record.get if isinstance(record, Mapping) else lambda k: getattr(record, k)
        epoch = float(get("epoch"))
        if math.isfinite(get("val_loss")):
            self.val_loss.append(epoch, get("val_loss"))
        self.val_acc.append(epoch, get("val_acc") * 100)
        self._mark_dirty()

    def add_history(self, records: Iterable[Any]) -> None:
        """Epochs a resumed run did before (validation only: the steps were not kept)."""
        for record in records:
            self.add_epoch(record)

    # -- overlays --------------------------------------------------------------------------

    def set_overlays(self, overlays: Mapping[str, Overlay]) -> None:
        """Draw exactly these earlier runs (key -> Overlay) beside the live one."""
        for key in [k for k in self._overlay_items if k not in overlays]:
            for number, item in enumerate(self._overlay_items.pop(key)):
                (self.loss_plot if number < 2 else self.acc_plot).removeItem(item)
        self.overlays = dict(overlays)
        for index, (key, overlay) in enumerate(self.overlays.items()):
            if key not in self._overlay_items:
                self._overlay_items[key] = self._overlay_curves(overlay)
            self._style_overlay(key, index)

    def _overlay_curves(self, overlay: Overlay) -> list[pg.PlotDataItem]:
        """Validation and training loss, then validation and training accuracy, per epoch
        (the training values dashed)."""
        records = [r for r in overlay.records if "epoch" in r]
        epochs = np.array([r["epoch"] for r in records], np.float64)

        def column(name: str, scale: float = 1.0) -> np.ndarray:
            return np.array([r.get(name, np.nan) for r in records], np.float64) * scale

        middle = epochs - 0.5  # an epoch's training mean belongs to its middle
        return [
            self.loss_plot.plot(epochs, column("val_loss"), name=f"{overlay.label} validation"),
            self.loss_plot.plot(middle, column("train_loss")),
            self.acc_plot.plot(epochs, column("val_acc", 100), name=f"{overlay.label} validation"),
            self.acc_plot.plot(middle, column("train_acc", 100)),
        ]

    def _style_overlay(self, key: str, index: int) -> None:
        colour = QColor(OVERLAY_HUES[index % len(OVERLAY_HUES)])
        if theme.current().dark:
            colour = colour.lighter(160)
        for number, item in enumerate(self._overlay_items[key]):
            validation = number % 2 == 0
            style = Qt.SolidLine if validation else Qt.DashLine
            item.setPen(pg.mkPen(colour, width=1.5, style=style))
            if validation:
                item.setSymbol("s")
                item.setSymbolSize(6)
                item.setSymbolBrush(colour)
                item.setSymbolPen(pg.mkPen(colour))

    # -- drawing ---------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty = True
        if not self.timer.isActive():
            self.timer.start()

    def _tick(self) -> None:
        if not self._dirty:
            self.timer.stop()  # nothing new: sleep until the next data
            return
        self._dirty = False
        self.redraw_count += 1
        for name, buffer in (("train_loss_raw", self.train_loss_raw),
                             ("train_loss", self.train_loss),
                             ("val_loss", self.val_loss),
                             ("train_acc_raw", self.train_acc_raw),
                             ("train_acc", self.train_acc),
                             ("val_acc", self.val_acc)):
            self.curves[name].setData(buffer.x, buffer.y)

    def flush(self) -> None:
        """Draw now what is pending (a run ended; screenshots)."""
        if self._dirty:
            self._tick()

    def apply_theme(self) -> None:
        t = theme.current()
        background = QColor("#1e2126") if t.dark else QColor("#ffffff")
        train = QColor("#64b5f6") if t.dark else QColor("#1565c0")
        val = QColor("#ffb74d") if t.dark else QColor("#e65100")
        faint = theme.mix(background, train, 0.27)  # opaque: cheap to draw
        self.graphics.setBackground(background)
        for plot in (self.loss_plot, self.acc_plot):
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(t.subtext))
                axis.setTextPen(pg.mkPen(t.text))
                axis.setTickPen(pg.mkPen(theme.mix(background, t.subtext, 0.3)))
            legend = plot.legend
            if legend is not None:
                legend.setLabelTextColor(t.text)
                for _sample, label in legend.items:
                    label.setText(label.text, color=t.text)  # the colour alone does not redraw it
                legend.setBrush(pg.mkBrush(QColor(background.red(), background.green(),
                                                  background.blue(), 210)))
                legend.setPen(pg.mkPen(t.grid))
            for label in plot.getAxis("left").label, plot.getAxis("bottom").label:
                label.setDefaultTextColor(t.text)
        for kind in ("loss", "acc"):
            self.curves[f"train_{kind}_raw"].setPen(pg.mkPen(faint, width=1))
            self.curves[f"train_{kind}"].setPen(pg.mkPen(train, width=2))
            self.curves[f"val_{kind}"].setPen(pg.mkPen(val, width=2))
            validation = self.curves[f"val_{kind}"]
            validation.setSymbolBrush(val)
            validation.setSymbolPen(pg.mkPen(background, width=1))
            validation.scatter.setBrush(val)  # the legend's sample reads these before any data
            validation.scatter.setPen(pg.mkPen(background, width=1))
        for line in self.crosshairs:
            line.setPen(pg.mkPen(t.subtext, width=1, style=Qt.DashLine))
        for index, key in enumerate(self.overlays):
            self._style_overlay(key, index)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self.apply_theme()

    # -- hovering --------------------------------------------------------------------------

    def _on_mouse_moved(self, args: tuple[QPointF]) -> None:
        position = args[0]
        for plot in (self.loss_plot, self.acc_plot):
            if plot.sceneBoundingRect().contains(position):
                self.show_values_at(plot.getViewBox().mapSceneToView(position).x())
                return
        self.hide_values()

    def show_values_at(self, x: float) -> str:
        """Crosshair at x (epochs) and the nearest values in the read-out; returns its text."""
        parts = [f"epoch {x:.2f}"]
        i = _nearest(self.train_loss.x, x)
        if i is not None:
            parts.append(f"training loss {self.train_loss.y[i]:.4f}")
        i = _nearest(self.train_acc.x, x)
        if i is not None:
            parts.append(f"training accuracy {self.train_acc.y[i]:.1f} %")
        i = _nearest(self.val_acc.x, x)
        if i is not None:
            epoch = self.val_acc.x[i]
            j = _nearest(self.val_loss.x, epoch)
            loss = f"loss {self.val_loss.y[j]:.4f}, " if j is not None else ""
            parts.append(f"validation after epoch {epoch:g}: {loss}"
                         f"accuracy {self.val_acc.y[i]:.1f} %")
        for line in self.crosshairs:
            line.setPos(x)
            line.show()
        text = "   ·   ".join(parts)
        self.readout.setText(text)
        return text

    def hide_values(self) -> None:
        for line in self.crosshairs:
            line.hide()
