"""What the canvas shows over or beside the diagram: the overview, the inline name editor,
and the exported image.

The overview (minimap) sits in the bottom-right corner, shown only while the network does not
fit the view. It is a child of the view (not of its viewport), so scrolling does not smear it.
Its blocks are drawn into a cached pixmap, redrawn at most a few times a second while the
network changes; a repaint only adds the frame of the visible area. Click or drag on it to go
there.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QLineF, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QLineEdit, QWidget

from cnnstudio.core import registry
from cnnstudio.ui import theme
from cnnstudio.ui.canvas.module_item import module_accent
from cnnstudio.ui.canvas.scene import CanvasScene

SIZE = QSize(170, 130)
MARGIN = 10
INSET = 6.0
EXPORT_MARGIN = 24.0


def visible_scene_rect(view: QGraphicsView) -> QRectF:
    """The part of the scene that the view shows."""
    return view.mapToScene(view.viewport().rect()).boundingRect()


class Minimap(QWidget):
    """The overview of `canvas` in a corner of `view`. It takes the two, not the canvas view,
    so that the view imports the overlays and the overlays do not import the view back."""

    def __init__(self, view: QGraphicsView, canvas: CanvasScene) -> None:
        super().__init__(view)
        self.view = view
        self.canvas = canvas
        self.setFixedSize(SIZE)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Overview of the network: click or drag to go there")
        self._diagram = QRectF()
        self._pixmap: QPixmap | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self.refresh)
        self._content_timer = QTimer(self)
        self._content_timer.setSingleShot(True)
        self._content_timer.setInterval(250)
        self._content_timer.timeout.connect(self.invalidate)
        self.hide()

    def schedule(self) -> None:
        """The view moved or zoomed: reposition and repaint the frame soon."""
        if not self._timer.isActive():
            self._timer.start()

    def schedule_content(self) -> None:
        """The network changed: redraw the blocks soon (throttled while dragging)."""
        if not self._content_timer.isActive():
            self._content_timer.start()
        self.schedule()

    def invalidate(self) -> None:
        self._pixmap = None
        self.update()

    def refresh(self) -> None:
        """Place it, decide whether it is needed, and repaint."""
        diagram = self.canvas.diagram_rect()
        if diagram != self._diagram:
            self._diagram = diagram
            self._pixmap = None
        viewport = self.view.viewport().geometry()
        self.move(viewport.right() - SIZE.width() - MARGIN,
                  viewport.bottom() - SIZE.height() - MARGIN)
        visible = visible_scene_rect(self.view)
        needed = not self._diagram.isNull() and not visible.contains(self._diagram)
        self.setVisible(needed and viewport.width() > 2.5 * SIZE.width())
        if self.isVisible():
            self.raise_()
            self.update()

    def _scale(self) -> tuple[float, QPointF]:
        inner = QRectF(INSET, INSET, SIZE.width() - 2 * INSET, SIZE.height() - 2 * INSET)
        d = self._diagram
        scale = min(inner.width() / max(d.width(), 1.0), inner.height() / max(d.height(), 1.0))
        offset = QPointF(inner.center().x() - d.center().x() * scale,
                         inner.center().y() - d.center().y() * scale)
        return scale, offset

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        if self._pixmap is None:
            self._pixmap = self._render()
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._pixmap)
        scale, offset = self._scale()
        seen = visible_scene_rect(self.view)
        frame = QRectF(seen.topLeft() * scale + offset, seen.size() * scale)
        painter.setPen(QPen(theme.current().selection, 1.5))
        painter.setBrush(Qt.NoBrush)
        painter.drawRect(frame.intersected(QRectF(1, 1, SIZE.width() - 2, SIZE.height() - 2)))

    def _render(self) -> QPixmap:
        colours = theme.current()
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(SIZE * ratio)
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.Antialiasing)
        background = QColor(colours.canvas)
        background.setAlpha(225)
        painter.setPen(QPen(colours.block_border, 1.0))
        painter.setBrush(background)
        painter.drawRoundedRect(QRectF(0.5, 0.5, SIZE.width() - 1, SIZE.height() - 1), 6, 6)
        painter.setRenderHint(QPainter.Antialiasing, False)
        scale, offset = self._scale()
        painter.setPen(Qt.NoPen)
        graph = self.canvas.document.graph
        marks: list[tuple[QRectF, QColor]] = []
        for item in self.canvas.block_items():
            if item.block_id in graph and item.isVisible():
                category = registry.get(graph.block(item.block_id).type).category
                marks.append((item.sceneBoundingRect(),
                              colours.error if item.has_error() else colours.accent(category)))
        for card in self.canvas.module_items():
            if card.is_collapsed():
                marks.append((card.mapRectToScene(card.body_rect()),
                              colours.error if card.has_error() else module_accent(colours)))
        for rect, colour in marks:
            top_left = rect.topLeft() * scale + offset
            painter.setBrush(colour)
            painter.drawRect(QRectF(top_left.x(), top_left.y(), max(rect.width() * scale, 2.0),
                                    max(rect.height() * scale, 1.5)))
        painter.end()
        return pixmap

    def _go(self, event: QMouseEvent) -> None:
        scale, offset = self._scale()
        self.view.centerOn((event.position() - offset) / scale)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._go(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.LeftButton:
            self._go(event)


class NameEditor(QLineEdit):
    """The name editor over a block: Enter or leaving it renames, Escape cancels."""

    finished = Signal(bool)

    def __init__(self, parent: QWidget, text: str) -> None:
        super().__init__(text, parent)
        self._done = False
        self.setMaxLength(64)
        self.returnPressed.connect(lambda: self.finish(True))

    def finish(self, commit: bool) -> None:
        if not self._done:
            self._done = True
            self.finished.emit(commit)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key_Escape:
            self.finish(False)
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        super().focusOutEvent(event)
        self.finish(True)


def draw_grid(painter: QPainter, rect: QRectF, zoom: float) -> None:
    """The canvas background: its colour and a grid, coarser when zoomed out."""
    colours = theme.current()
    painter.fillRect(rect, colours.canvas)
    step = 50.0
    while step * zoom < 14:
        step *= 4
    painter.setPen(QPen(colours.grid, 0))
    lines: list[QLineF] = []
    x = math.floor(rect.left() / step) * step
    while x < rect.right():
        lines.append(QLineF(x, rect.top(), x, rect.bottom()))
        x += step
    y = math.floor(rect.top() / step) * step
    while y < rect.bottom():
        lines.append(QLineF(rect.left(), y, rect.right(), y))
        y += step
    painter.save()
    painter.setRenderHint(QPainter.Antialiasing, False)  # crisp and far cheaper
    painter.drawLines(lines)
    painter.restore()


def export_diagram(canvas: CanvasScene, target: Path) -> None:
    """The diagram alone (no grid, no selection), tight with a margin: .png at twice the
    size, or .svg (vector) through QtSvg."""
    source = canvas.diagram_rect().adjusted(
        -EXPORT_MARGIN, -EXPORT_MARGIN, EXPORT_MARGIN, EXPORT_MARGIN)
    if source.isNull():
        source = QRectF(0, 0, 200, 100)
    canvas.exporting = True
    canvas.set_items_cached(False)
    try:
        if target.suffix.lower() == ".svg":
            export_svg(canvas, source, target)
        else:
            export_png(canvas, source, target)
    finally:
        canvas.exporting = False
        canvas.set_items_cached(True)


def export_png(scene: QGraphicsScene, source: QRectF, target: Path) -> None:
    image = QImage(QSize(round(source.width() * 2), round(source.height() * 2)),
                   QImage.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(1.0)
    image.fill(theme.current().canvas)
    painter = QPainter(image)
    painter.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
    scene.render(painter, QRectF(image.rect()), source)
    painter.end()
    if not image.save(str(target)):
        raise OSError(f"cannot write the image {str(target)!r}")


def export_svg(scene: QGraphicsScene, source: QRectF, target: Path) -> None:
    from PySide6.QtSvg import QSvgGenerator

    generator = QSvgGenerator()
    generator.setFileName(str(target))
    size = QSize(round(source.width()), round(source.height()))
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle("CNN Studio network")
    painter = QPainter(generator)
    painter.fillRect(QRectF(0, 0, size.width(), size.height()), theme.current().canvas)
    scene.render(painter, QRectF(0, 0, size.width(), size.height()), source)
    painter.end()
    if not target.exists():
        raise OSError(f"cannot write the image {str(target)!r}")
