"""Drawing pieces of the inspection views: colour maps, a tile grid, a colour bar, an image view,
bar charts and the placeholder text.

Arrays become QImages in one NumPy step each (colour lookup by fancy indexing, then
`ui.images.qimage`); the grid paints the ready images with QPainter, so a refresh has no Python
loop over pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QFontMetrics,
    QHelpEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QWidget

from cnnstudio.ui import theme
from cnnstudio.ui.images import qimage

PLACEHOLDER = "Train the network or open a run to look inside it"
WAITING = "The views fill in at the end of the first epoch"


# -- colours and images ----------------------------------------------------------------------


def lookup_table(name: str) -> np.ndarray:
    """256×3 uint8 colours of a pyqtgraph colour map ('viridis', 'CET-D1', ...)."""
    return np.ascontiguousarray(pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False),
                                dtype=np.uint8)


SEQUENTIAL = lookup_table("viridis")  # activations: dark = low, yellow = high
DIVERGING = lookup_table("CET-D1")  # weights: blue negative, near-white zero, red positive


def to_index(values: np.ndarray, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    """values scaled from [low, high] to 0..255 (uint8); a flat range maps to the middle.

    low and high broadcast against values (per-channel ranges have shape C×1×1)."""
    lo = np.asarray(low, np.float32)
    span = np.asarray(high, np.float32) - lo
    flat = span <= 0
    scaled = (values.astype(np.float32) - lo) / np.where(flat, 1.0, span)
    scaled = np.where(flat, 0.5, scaled)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def coloured(indices: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 indices (any shape) through a 256×3 lookup table: shape + (3,) RGB."""
    return lut[indices]


def format_value(value: float) -> str:
    if value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


# -- widgets ---------------------------------------------------------------------------------


class Placeholder(QLabel):
    """The friendly text a view shows while it has nothing to show."""

    def __init__(self, text: str = PLACEHOLDER, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMargin(24)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.setFont(font)
        self.setObjectName("inspectPlaceholder")
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows the theme


class ImageView(QWidget):
    """One image drawn as large as fits, keeping its aspect; small images stay sharp pixels."""

    def __init__(self, parent: QWidget | None = None, minimum: int = 112) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(168, 168)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        area = self.rect().adjusted(1, 1, -1, -1)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        if self._image is None or self._image.isNull():
            painter.drawRect(area)
            return
        size = self._image.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(QPoint(0, 0), size)
        target.moveCenter(area.center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                              size.width() < self._image.width())
        painter.drawImage(target, self._image)
        painter.drawRect(target.adjusted(-1, -1, 0, 0))


class TileGrid(QWidget):
    """A grid of small images with a caption under each, wrapped to the width; click a tile to
    pick it. Meant for a QScrollArea (height follows the width)."""

    tile_clicked = Signal(int)

    GAP = 6
    MARGIN = 4

    def __init__(self, parent: QWidget | None = None, tile_px: int = 72) -> None:
        super().__init__(parent)
        self._images: list[QImage] = []
        self._captions: list[str] = []
        self._tips: list[str] = []
        self._tile = tile_px
        self._smooth = False
        self._cell_size: QSize | None = None
        self.selected = -1
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setMouseTracking(True)

    def set_tiles(self, images: Sequence[QImage], captions: Sequence[str] = (),
                  tips: Sequence[str] = (), tile_px: int | None = None,
                  smooth: bool = False) -> None:
        self._images = list(images)
        self._captions = list(captions) + [""] * (len(self._images) - len(captions))
        self._tips = list(tips) + [""] * (len(self._images) - len(tips))
        self._tile = tile_px or self._tile
        self._smooth = smooth
        self._cell_size = None
        self.selected = -1
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_tiles([])

    def count(self) -> int:
        return len(self._images)

    def image(self, index: int) -> QImage:
        return self._images[index]

    def replace_images(self, images: Sequence[QImage]) -> None:
        """New pictures for the same tiles (an overlay on or off): captions, tips, the
        selection and the layout stay."""
        if len(images) != len(self._images):
            raise ValueError(f"{len(images)} images for {len(self._images)} tiles")
        self._images = list(images)
        self.update()

    def captions(self) -> list[str]:
        return list(self._captions)

    def tile_px(self) -> int:
        return self._tile

    def _caption_height(self) -> int:
        return self._cell().height() - self._tile

    def _cell(self) -> QSize:
        """One tile with its caption (measured once per set of tiles and font)."""
        if self._cell_size is None:
            metrics = QFontMetrics(self.font())
            widest = max((metrics.horizontalAdvance(c) + 4 for c in self._captions), default=0)
            caption_h = metrics.height() + 2 if any(self._captions) else 0
            self._cell_size = QSize(max(self._tile, widest), self._tile + caption_h)
        return self._cell_size

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._cell_size = None
            self.updateGeometry()

    def _columns(self, width: int) -> int:
        cell = self._cell().width() + self.GAP
        return max(1, (width - 2 * self.MARGIN + self.GAP) // cell)

    def tile_rect(self, index: int) -> QRect:
        """Where tile `index` is drawn (its image; the caption is below)."""
        cell = self._cell()
        columns = self._columns(self.width())
        row, column = divmod(index, columns)
        x = self.MARGIN + column * (cell.width() + self.GAP) + (cell.width() - self._tile) // 2
        y = self.MARGIN + row * (cell.height() + self.GAP)
        return QRect(x, y, self._tile, self._tile)

    def index_at(self, pos: QPoint) -> int:
        """The tile (image or caption) under a point, or -1."""
        cell = self._cell()
        column = (pos.x() - self.MARGIN) // (cell.width() + self.GAP)
        row = (pos.y() - self.MARGIN) // (cell.height() + self.GAP)
        index = row * self._columns(self.width()) + column
        if not (0 <= column < self._columns(self.width()) and 0 <= index < len(self._images)):
            return -1
        hit = self.tile_rect(index).adjusted(-2, -2, 2, 2 + self._caption_height())
        return index if hit.contains(pos) else -1

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        if not self._images:
            return 0
        rows = math.ceil(len(self._images) / self._columns(width))
        return 2 * self.MARGIN + rows * (self._cell().height() + self.GAP) - self.GAP

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        cell = self._cell()
        columns = max(1, min(len(self._images), 8))
        width = 2 * self.MARGIN + columns * (cell.width() + self.GAP)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        cell = self._cell()
        return QSize(cell.width() + 2 * self.MARGIN, 0)

    def resizeEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)  # type: ignore[arg-type]
        needed = self.heightForWidth(self.width())
        if self.minimumHeight() != needed:
            self.setMinimumHeight(needed)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        frame = palette.color(QPalette.ColorRole.Mid)
        highlight = palette.color(QPalette.ColorRole.Highlight)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        caption_h = self._caption_height()
        visible = event.rect()
        for index, image in enumerate(self._images):
            rect = self.tile_rect(index)
            if not rect.adjusted(0, 0, 0, caption_h).intersects(visible):
                continue
            fitted = image.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(QPoint(0, 0), fitted)
            target.moveCenter(rect.center())
            painter.drawImage(target, image)
            painter.setPen(QPen(highlight if index == self.selected else frame,
                                2 if index == self.selected else 1))
            painter.drawRect(target.adjusted(-1, -1, 0, 0))
            if caption_h:
                painter.setPen(text)
                caption = QRect(rect.center().x() - self._cell().width() // 2, rect.bottom() + 2,
                                self._cell().width(), caption_h)
                painter.drawText(caption, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                                 self._captions[index])

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        index = self.index_at(event.position().toPoint())
        if index >= 0 and event.button() == Qt.MouseButton.LeftButton:
            self.selected = index
            self.update()
            self.tile_clicked.emit(index)
        super().mousePressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            index = self.index_at(event.pos())
            if index >= 0 and self._tips[index]:
                QToolTip.showText(event.globalPos(), self._tips[index], self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)


class ColourBar(QWidget):
    """A horizontal colour scale with its end values and a note."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lut = SEQUENTIAL
        self._low, self._high, self._note = "", "", ""
        self._strip = qimage(self._lut[None, :, :])
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_scale(self, lut: np.ndarray, low: str, high: str, note: str = "") -> None:
        if lut is not self._lut:
            self._lut = lut
            self._strip = qimage(lut[None, :, :])
        self._low, self._high, self._note = low, high, note
        self.setToolTip(note)
        self.update()

    def texts(self) -> tuple[str, str, str]:
        return self._low, self._high, self._note

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(360, QFontMetrics(self.font()).height() + 16)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(160, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        metrics = QFontMetrics(self.font())
        text = self.palette().color(QPalette.ColorRole.WindowText)
        low_w = metrics.horizontalAdvance(self._low) + 6
        high_w = metrics.horizontalAdvance(self._high) + 6
        note = metrics.elidedText(self._note, Qt.TextElideMode.ElideRight,
                                  max(0, self.width() // 2))
        note_w = metrics.horizontalAdvance(note) + 12 if note else 0
        bar_w = max(40, min(260, self.width() - low_w - high_w - note_w))
        height = self.height()
        strip = QRect(low_w, 4, bar_w, height - 8)
        painter.drawImage(strip, self._strip)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        painter.drawRect(strip.adjusted(0, 0, -1, -1))
        painter.setPen(text)
        centre = Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRect(0, 0, low_w - 4, height), centre | Qt.AlignmentFlag.AlignRight,
                         self._low)
        painter.drawText(QRect(strip.right() + 4, 0, high_w, height),
                         centre | Qt.AlignmentFlag.AlignLeft, self._high)
        if note:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRect(strip.right() + high_w + 10, 0, note_w, height),
                             centre | Qt.AlignmentFlag.AlignLeft, note)


class BarList(QWidget):
    """Horizontal bars, one row each: label, bar, value text (the top-5 classes)."""

    ROW = 26

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, float, str]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_rows(self, rows: Sequence[tuple[str, float, str]]) -> None:
        """(label, fraction of the full bar in [0, 1], value text) per row, top first."""
        self._rows = list(rows)
        self.updateGeometry()
        self.update()

    def values(self) -> list[float]:
        return [value for _, value, _ in self._rows]

    def labels(self) -> list[str]:
        return [label for label, _, _ in self._rows]

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(320, max(1, len(self._rows)) * self.ROW + 8)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(200, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        track = palette.color(QPalette.ColorRole.AlternateBase)
        accent = theme.current().selection
        label_w = min(self.width() // 3,
                      max((metrics.horizontalAdvance(r[0]) for r in self._rows), default=0) + 10)
        value_w = max((metrics.horizontalAdvance(r[2]) for r in self._rows), default=0) + 10
        bar_w = max(20, self.width() - label_w - value_w - 8)
        for row, (label, value, shown) in enumerate(self._rows):
            y = 4 + row * self.ROW
            painter.setPen(text)
            painter.drawText(QRect(0, y, label_w - 6, self.ROW - 4),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 6))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(QRect(label_w, y + 3, bar_w, self.ROW - 10), 3, 3)
            painter.setBrush(accent if row == 0 else accent.lighter(135) if not
                             theme.current().dark else accent.darker(140))
            filled = round(bar_w * min(1.0, max(0.0, value)))
            if filled:
                painter.drawRoundedRect(QRect(label_w, y + 3, filled, self.ROW - 10), 3, 3)
            painter.setPen(text)
            painter.drawText(QRect(label_w + bar_w + 6, y, value_w, self.ROW - 4),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, shown)


class VectorPlot(pg.PlotWidget):
    """The values of a vector (a Dense layer's units) as vertical bars, theme-coloured."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self._bars: pg.BarGraphItem | None = None
        self._values = np.zeros(0, np.float32)
        self.apply_theme()

    def set_values(self, values: np.ndarray, names: Sequence[str] = (), x_title: str = "unit",
                   y_title: str = "value") -> None:
        self._values = np.asarray(values, np.float32).reshape(-1)
        plot = self.getPlotItem()
        if self._bars is not None:
            plot.removeItem(self._bars)
        n = self._values.size
        colour = theme.current().selection
        self._bars = pg.BarGraphItem(x=np.arange(n), height=self._values, width=0.8,
                                     brush=colour, pen=pg.mkPen(colour))
        plot.addItem(self._bars)
        bottom = plot.getAxis("bottom")
        if names and len(names) == n and n <= 30:
            bottom.setTicks([[(i, str(name)) for i, name in enumerate(names)]])
        else:
            bottom.setTicks(None)
        plot.setLabel("bottom", x_title)
        plot.setLabel("left", y_title)
        plot.setXRange(-0.6, max(n, 1) - 0.4, padding=0)
        low, high = (float(self._values.min()), float(self._values.max())) if n else (0.0, 1.0)
        low, high = min(low, 0.0), max(high, 0.0)
        plot.setYRange(low, high if high > low else low + 1.0, padding=0.05)

    def values(self) -> np.ndarray:
        return self._values

    def apply_theme(self) -> None:
        palette = self.palette()
        self.setBackground(palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.WindowText)
        for name in ("left", "bottom"):
            axis = self.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid)))
            axis.setTextPen(pg.mkPen(text))
            axis.label.setDefaultTextColor(text)
        if self._bars is not None:
            colour = theme.current().selection
            self._bars.setOpts(brush=colour, pen=pg.mkPen(colour))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.getPlotItem() is not None:
            self.apply_theme()
