"""Drawing pieces of the lab: the colour maps (diverging for values of both signs, grey for
values of one sign), array tiles, a colour bar and an editable matrix table.

Arrays become QImages in one NumPy step each (a lookup table indexed by the scaled values); the
tiles are painted with QPainter, so a refresh has no Python loop over pixels.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QHelpEvent,
    QImage,
    QLinearGradient,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.lab.ops import fmt
from cnnstudio.ui.images import image_paths, text_on

_STOPS = ("#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b")  # blue − · white 0 · red +
GREY_STOPS = ("#000000", "#ffffff")  # values of one sign: the lowest black, the highest white


def _lut(colours: tuple[str, ...]) -> np.ndarray:
    stops = np.array([QColor(c).getRgb()[:3] for c in colours], dtype=np.float64)
    positions = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(t, positions, stops[:, k]) for k in range(3)], axis=1)
    return np.rint(lut).astype(np.uint8)


DIVERGING = _lut(_STOPS)
GREYS = _lut(GREY_STOPS)


def symmetric_scale(values: np.ndarray) -> float:
    """The largest magnitude (1 for an all-zero array): the colour scale runs from −m to +m."""
    m = float(np.max(np.abs(values))) if values.size else 0.0
    return m if m > 0 and np.isfinite(m) else 1.0


ROBUST_QUANTILE = 0.995


def robust_scale(values: np.ndarray) -> tuple[float, bool]:
    """(m, clipped): m is the 99.5th percentile of |values| for a picture, so a few extreme
    pixels do not wash the rest out to white; clipped says some values lie beyond ±m."""
    largest = symmetric_scale(values)
    if values.size < 1000:
        return largest, False
    m = float(np.quantile(np.abs(values), ROBUST_QUANTILE))
    if not m > 0 or m >= largest:
        return largest, False
    return m, True


def diverging_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """H×W values as H×W×3 colours: −scale blue, 0 white, +scale red."""
    index = np.asarray(values, dtype=np.float32) * np.float32(127.5 / scale)
    index += np.float32(128.0)  # 127.5 for zero, plus 0.5 to round
    np.clip(index, 0.0, 255.0, out=index)
    return DIVERGING[index.astype(np.uint8)]


def colour_of(value: float, scale: float) -> QColor:
    r, g, b = diverging_rgb(np.array([value]), scale)[0]
    return QColor(int(r), int(g), int(b))


@dataclass(frozen=True)
class ColourScale:
    """How a map's values become colours, from `low` to `high`.

    Values of both signs take the diverging map (−m blue, 0 white, +m red); values of one sign
    a grey ramp from the lowest (black) to the highest (white), so that a blurred photograph
    looks like a photograph, not like a negative in pale red. clipped: values lie beyond the
    ends (the bar's labels read ≤ and ≥)."""

    low: float
    high: float
    clipped: bool = False

    @property
    def diverging(self) -> bool:
        return self.low < 0 < self.high

    @property
    def magnitude(self) -> float:
        return max(-self.low, self.high)

    @property
    def stops(self) -> tuple[str, ...]:
        return _STOPS if self.diverging else GREY_STOPS

    def rgb(self, values: np.ndarray) -> np.ndarray:
        """H×W values as H×W×3 colours."""
        if self.diverging:
            return diverging_rgb(values, self.magnitude)
        index = np.asarray(values, dtype=np.float32) - np.float32(self.low)
        index *= np.float32(255.0 / (self.high - self.low))
        index += np.float32(0.5)
        np.clip(index, 0.0, 255.0, out=index)
        return GREYS[index.astype(np.uint8)]

    def labels(self) -> tuple[str, str, str]:
        """The bar's left, middle and right labels."""
        m = self.magnitude
        digits = 0 if m >= 100 else 1 if m >= 10 else 3
        low, high = fmt(round(self.low, digits), digits), fmt(round(self.high, digits), digits)
        middle = "0" if self.diverging else fmt(round((self.low + self.high) / 2, digits), digits)
        if self.clipped and self.low < 0:
            low = f"≤ {low}"
        if self.clipped and self.high > 0:
            high = f"≥ {high}"
        return low, middle, high


def colour_scale(values: np.ndarray) -> ColourScale:
    """The scale a map of these values is drawn with (robust_scale sets its ends)."""
    m, clipped = robust_scale(values)
    finite = values[np.isfinite(values)] if values.size else values
    if finite.size == 0 or float(finite.min()) >= 0:
        return ColourScale(0.0, m, clipped)
    if float(finite.max()) <= 0:
        return ColourScale(-m, 0.0, clipped)
    return ColourScale(-m, m, clipped)


@dataclass
class Tile:
    caption: str
    image: QImage
    values: np.ndarray | None = None  # for the value under the mouse


class MapView(QWidget):
    """One or more images in a grid of equal tiles, captioned, aspect kept, drawn from the
    top; with a colour scale, its bar (−m, 0, +m, or 0 to m for values of one sign) right
    under them. The tooltip names the pixel and its value. With accept_files it takes dropped
    image files."""

    file_dropped = Signal(Path)
    pixel_clicked = Signal(int, int, int)  # tile index, row, column

    def __init__(self, accept_files: bool = False, columns: int = 1,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = columns  # for the preferred height; painting fits the actual size
        self.tiles: list[Tile] = []
        self.message = ""
        self.title = ""
        self.colours: ColourScale | None = None
        self.marks: dict[int, tuple[int, int, int, int]] = {}
        self.show_captions = True  # off: the tiles take the room; the tooltip names them
        self.setAcceptDrops(accept_files)
        self.setMinimumSize(160, 120)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setMouseTracking(True)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(320, self.heightForWidth(320))

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        """The height that shows the tiles at full width in the preferred number of columns."""
        caption_h = self._caption_height()
        if not self.tiles:
            return 240
        cols = min(self.columns, len(self.tiles))
        rows = -(-len(self.tiles) // cols)
        first = self.tiles[0].image
        aspect = first.height() / max(first.width(), 1)
        tile_h = int((width - 6 * cols) / cols * aspect)
        top = self.fontMetrics().height() + 4 if self.title else 0
        return top + rows * (tile_h + caption_h + 4) + self._bar_height()

    def set_tiles(self, tiles: list[Tile], colours: ColourScale | None = None,
                  title: str = "") -> None:
        """Show the tiles (a title above them all when given), with the bar of the colour
        scale they were drawn with."""
        self.tiles, self.message, self.colours, self.title = tiles, "", colours, title
        self.updateGeometry()
        self.update()

    def _caption_height(self) -> int:
        return self.fontMetrics().height() + 4 if self.show_captions else 0

    def set_marks(self, marks: dict[int, tuple[int, int, int, int]]) -> None:
        """Outline pixels: tile index -> (row, column, rows, columns)."""
        self.marks = dict(marks)
        self.update()

    def set_message(self, text: str) -> None:
        self.tiles, self.message, self.colours, self.title = [], text, None, ""
        self.update()

    @property
    def scale(self) -> float | None:
        """The largest magnitude the colours tell apart (None without a colour scale)."""
        return self.colours.magnitude if self.colours is not None else None

    def bar_labels(self) -> tuple[str, str, str]:
        return self.colours.labels() if self.colours is not None else ("", "", "")

    def _bar_height(self) -> int:
        return self.fontMetrics().height() + 18 if self.colours is not None else 0

    def _layout(self) -> list[tuple[QRect, QRect]]:
        """(caption rect, image rect) per tile, with as many columns as make tiles biggest."""
        n = len(self.tiles)
        if not n:
            return []
        caption_h = self._caption_height()
        top = self.fontMetrics().height() + 4 if self.title else 0
        height = self.height() - self._bar_height() - top
        aspect = self.tiles[0].image.height() / max(self.tiles[0].image.width(), 1)
        best: tuple[float, int] = (-1.0, 1)
        for cols in range(1, n + 1):
            rows = -(-n // cols)
            tile_w = min((self.width() - 6 * cols) / cols,
                         (height / rows - caption_h - 4) / max(aspect, 1e-6))
            if tile_w > best[0]:
                best = (tile_w, cols)
        cols = best[1]
        tile = QSize(int(best[0]), int(best[0] * aspect))
        cell_w, cell_h = self.width() // cols, tile.height() + caption_h + 4
        rects = []
        for k, item in enumerate(self.tiles):
            x, y = (k % cols) * cell_w, top + (k // cols) * cell_h
            size = item.image.size().scaled(tile, Qt.AspectRatioMode.KeepAspectRatio)
            image = QRect(x + (cell_w - size.width()) // 2, y + caption_h, size.width(),
                          size.height())
            rects.append((QRect(x, y, cell_w, caption_h), image))
        return rects

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        palette = self.palette()
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        if self.message:
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            return
        bottom = 0
        if self.title:
            painter.drawText(QRect(0, 0, self.width(), self.fontMetrics().height() + 4),
                             Qt.AlignmentFlag.AlignCenter, self.title)
        for tile, (caption, target) in zip(self.tiles, self._layout()):
            painter.setPen(palette.color(QPalette.ColorRole.WindowText))
            text = self.fontMetrics().elidedText(tile.caption, Qt.TextElideMode.ElideRight,
                                                 caption.width() - 4)
            if self.show_captions:
                painter.drawText(caption, Qt.AlignmentFlag.AlignCenter, text)
            upscale = target.width() > tile.image.width()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not upscale)
            painter.drawImage(target, tile.image)
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.drawRect(target.adjusted(0, 0, -1, -1))
            bottom = max(bottom, target.bottom())
        self._paint_marks(painter)
        if self.colours is not None and self.tiles:
            width = min(self.width() - 80, 360)
            self._paint_bar(painter, QRect((self.width() - width) // 2, bottom + 8, width, 10),
                            self.colours.stops)

    def _paint_marks(self, painter: QPainter) -> None:
        """Each mark as a two-tone outline (black inside white), visible on any colour."""
        layout = self._layout()
        for index, (row, col, rows, cols) in self.marks.items():
            if index >= len(layout):
                continue
            target = layout[index][1]
            h, w = self.tiles[index].image.height(), self.tiles[index].image.width()
            sx, sy = target.width() / max(w, 1), target.height() / max(h, 1)
            box = QRect(target.x() + round(col * sx), target.y() + round(row * sy),
                        max(round(cols * sx), 3), max(round(rows * sy), 3))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor("#ffffff"), 3))
            painter.drawRect(box)
            painter.setPen(QPen(QColor("#000000"), 1))
            painter.drawRect(box)

    def _paint_bar(self, painter: QPainter, bar: QRect, stops: tuple[str, ...]) -> None:
        gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for k, colour in enumerate(stops):
            gradient.setColorAt(k / (len(stops) - 1), QColor(colour))
        painter.fillRect(bar, gradient)
        palette = self.palette()
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawRect(bar.adjusted(0, 0, -1, -1))
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        low, zero, high = self.bar_labels()
        metrics = self.fontMetrics()
        row = QRect(bar.left() - 40, bar.bottom() + 2, bar.width() + 80, metrics.height())
        painter.drawText(row, Qt.AlignmentFlag.AlignLeft, low)
        painter.drawText(row, Qt.AlignmentFlag.AlignHCenter, zero)
        painter.drawText(row, Qt.AlignmentFlag.AlignRight, high)

    def pixel_at(self, point: QPoint) -> tuple[int, int, int] | None:
        """(tile index, row, column) of the pixel under a point, None off the pictures."""
        for index, (tile, (_caption, target)) in enumerate(zip(self.tiles, self._layout())):
            if not target.contains(point):
                continue
            h, w = tile.image.height(), tile.image.width()
            row = min(h - 1, (point.y() - target.y()) * h // max(target.height(), 1))
            col = min(w - 1, (point.x() - target.x()) * w // max(target.width(), 1))
            return index, row, col
        return None

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        hit = self.pixel_at(event.position().toPoint())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.pixel_clicked.emit(*hit)
            event.accept()
            return
        super().mousePressEvent(event)

    def value_at(self, point: QPoint) -> str:
        hit = self.pixel_at(point)
        if hit is not None and self.tiles[hit[0]].values is not None:
            tile, row, col = self.tiles[hit[0]], hit[1], hit[2]
            assert tile.values is not None
            value = tile.values[row, col]
            shown = (", ".join(fmt(v, 2) for v in value) if np.ndim(value)
                     else fmt(float(value), 3))
            return f"{tile.caption}\nrow {row}, column {col}: {shown}"
        return ""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.value_at(event.pos())
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if image_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = image_paths(event)
        if paths:
            event.acceptProposedAction()
            self.file_dropped.emit(paths[0])


def titled_column(title: str) -> tuple[QGroupBox, QVBoxLayout]:
    """A titled box and its vertical layout: one column of a lab view."""
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(8, 8, 8, 8)
    layout.setSpacing(6)
    return box, layout


def parse_number(text: str) -> float | None:
    """'−1', '-1', '2,5', ' 3 ' as numbers; None for anything else."""
    cleaned = text.strip().replace("−", "-").replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


class MatrixTable(QTableWidget):
    """A small matrix in a grid of cells, editable or not, with highlighted cells.

    Cells are `cell` pixels square, wider where a value's text needs it (a Gaussian's 0.013
    would otherwise be cut to '0…'). `edited` carries the whole matrix after a cell edit that
    parses as a number; any other text puts the previous value back."""

    edited = Signal(object)  # np.ndarray

    def __init__(self, cell: int = 40, font_points: float = 0.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell = cell
        self.column_width = cell
        self._values = np.zeros((0, 0))
        self._fixed: set[tuple[int, int]] = set()
        self._filling = False
        self.horizontalHeader().hide()
        self.verticalHeader().hide()
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setMinimumSectionSize(8)
        self.horizontalHeader().setDefaultSectionSize(cell)
        self.verticalHeader().setDefaultSectionSize(cell)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._font = QFont(self.font())
        if font_points:
            self._font.setPointSizeF(font_points)
            self.setFont(self._font)
        self.itemChanged.connect(self._on_item_changed)

    def set_cell(self, cell: int, font_points: float = 0.0) -> None:
        """Another cell size and font size (0: the table's own), for the next set_values."""
        self.cell = cell
        self.horizontalHeader().setDefaultSectionSize(cell)
        self.verticalHeader().setDefaultSectionSize(cell)
        for row in range(self.rowCount()):
            self.setRowHeight(row, cell)
        font = QFont(self._font)
        if font_points:
            font.setPointSizeF(font_points)
        self.setFont(font)

    def values(self) -> np.ndarray:
        return self._values.copy()

    def set_values(self, values: np.ndarray, editable: bool = True,
                   fixed: set[tuple[int, int]] | None = None, blank: bool = False) -> None:
        """Show a matrix; `fixed` cells (padding) are not editable; blank shows no numbers."""
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        self._values, self._fixed = values.copy(), set(fixed or ())
        self._filling = True
        self.setRowCount(values.shape[0])
        self.setColumnCount(values.shape[1])
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                item = self.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(r, c, item)
                item.setText("" if blank else fmt(values[r, c]))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if editable and (r, c) not in self._fixed:
                    flags |= Qt.ItemFlag.ItemIsEditable
                item.setFlags(flags)
        self._filling = False
        self._size_columns(values)
        self.fit()

    def _size_columns(self, values: np.ndarray) -> None:
        """Every column as wide as the widest value needs (at least `cell`), so that no number
        is cut off and the grid stays even; blank cells are measured with their values."""
        texts = [[self.item(r, c).text() for c in range(self.columnCount())]
                 for r in range(self.rowCount())]
        self._filling = True
        for r in range(self.rowCount()):
            for c in range(self.columnCount()):
                self.item(r, c).setText(fmt(values[r, c]))
        needed = max((self.sizeHintForColumn(c) for c in range(self.columnCount())), default=0)
        for r, row in enumerate(texts):
            for c, text in enumerate(row):
                self.item(r, c).setText(text)
        self._filling = False
        self.column_width = max(self.cell, needed + 1)  # + the grid line
        for column in range(self.columnCount()):
            self.setColumnWidth(column, self.column_width)

    def show_cells(self, texts: dict[tuple[int, int], str]) -> None:
        """Replace the text of some cells (the output cells computed so far)."""
        self._filling = True
        for r in range(self.rowCount()):
            for c in range(self.columnCount()):
                item = self.item(r, c)
                if item is not None:
                    item.setText(texts.get((r, c), ""))
        self._filling = False

    def paint_cells(self, colours: dict[tuple[int, int], QColor],
                    muted: Collection[tuple[int, int]] = ()) -> None:
        """Background colours for some cells (text black or white to match); muted cells
        (padding) in the placeholder colour, the rest in the table's own colours."""
        palette = self.palette()
        self._filling = True
        for r in range(self.rowCount()):
            for c in range(self.columnCount()):
                item = self.item(r, c)
                if item is None:
                    continue
                colour = colours.get((r, c))
                if colour is not None:
                    item.setBackground(colour)
                    item.setForeground(text_on(colour))
                elif (r, c) in muted:
                    item.setBackground(palette.color(QPalette.ColorRole.AlternateBase))
                    item.setForeground(palette.color(QPalette.ColorRole.PlaceholderText))
                else:
                    item.setBackground(palette.color(QPalette.ColorRole.Base))
                    item.setForeground(palette.color(QPalette.ColorRole.Text))
        self._filling = False

    def fit(self) -> None:
        """Exactly as big as its cells, so a small matrix looks like one."""
        width = self.columnCount() * self.column_width + 2 * self.frameWidth()
        height = self.rowCount() * self.cell + 2 * self.frameWidth()
        self.setFixedSize(max(width, self.cell), max(height, self.cell))

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        r, c = item.row(), item.column()
        number = parse_number(item.text())
        self._filling = True
        if number is None:
            item.setText(fmt(self._values[r, c]))
            self._filling = False
            return
        item.setText(fmt(number))
        self._filling = False
        self._values[r, c] = number
        self.edited.emit(self.values())


def mute(label: QWidget) -> QWidget:
    """Secondary text: the palette's placeholder colour, so it follows the theme."""
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label
