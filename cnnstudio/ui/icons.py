"""Icons drawn at runtime with QPainter: no image files to ship or keep in sync.

A block icon is a rounded square in its category's accent colour (theme.CATEGORY_HUES) with a
short white glyph, declared with the block type (BlockType.glyph); the same hue marks the block
on the canvas, so the palette, the inspector and the summary table all point at the canvas
colour code. Icons are cached: they depend only on the block type or category, never on the
theme.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QIcon,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
)

from cnnstudio.core.blocks.base import BlockType
from cnnstudio.ui.theme import CATEGORY_HUES

SIZES = (16, 20, 24, 32, 48, 64)
APP_SIZES = (16, 24, 32, 48, 64, 128, 256)
FALLBACK_HUE = "#546e7a"

# palette category -> glyph of its header (a block's own glyph is BlockType.glyph)
CATEGORY_GLYPHS = {
    "Input": "x",
    "Convolution": "∗",
    "Activation": "ƒ",
    "Pooling": "↓",
    "Regularisation": "R",
    "Reshape": "F",
    "Dense": "FC",
    "Merge": "+",
    "Output": "ŷ",
}
# glyphs that sit visibly too small or too high in DejaVu / Segoe at the same pixel size
_GLYPH_SCALE = {"∗": 1.25, "≡": 1.1, "+": 1.15, "x": 1.1, "ŷ": 1.0}

_cache: dict[tuple[str, str], QIcon] = {}


def _glyph_pixmap(size: int, hue: str, glyph: str) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.TextAntialiasing)
    margin = max(1.0, size / 16)
    rect = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    base = QColor(hue)
    gradient = QLinearGradient(rect.topLeft(), rect.bottomLeft())
    gradient.setColorAt(0.0, base.lighter(118))
    gradient.setColorAt(1.0, base)
    painter.setBrush(QBrush(gradient))
    painter.setPen(QPen(base.darker(130), max(1.0, size / 24)))
    radius = size * 0.22
    painter.drawRoundedRect(rect, radius, radius)
    font = QFont()
    font.setBold(True)
    scale = 0.62 if len(glyph) == 1 else 0.44
    font.setPixelSize(max(6, round(size * scale * _GLYPH_SCALE.get(glyph, 1.0))))
    painter.setFont(font)
    painter.setPen(QColor("#ffffff"))
    painter.drawText(rect, Qt.AlignCenter, glyph)
    painter.end()
    return pixmap


def _glyph_icon(key: tuple[str, str], hue: str, glyph: str) -> QIcon:
    icon = _cache.get(key)
    if icon is None:
        icon = QIcon()
        for size in SIZES:
            icon.addPixmap(_glyph_pixmap(size, hue, glyph))
        _cache[key] = icon
    return icon


def block_icon(block_type: BlockType) -> QIcon:
    """The icon of a block type: its category colour with its own glyph."""
    hue = CATEGORY_HUES.get(block_type.category, FALLBACK_HUE)
    return _glyph_icon(("block", block_type.type_id), hue, block_type.glyph)


def category_icon(category: str) -> QIcon:
    hue = CATEGORY_HUES.get(category, FALLBACK_HUE)
    glyph = CATEGORY_GLYPHS.get(category, category[:1].upper())
    return _glyph_icon(("category", category), hue, glyph)


def _severity_pixmap(size: int, severity: str) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    s = float(size)
    if severity == "error":
        painter.setBrush(QColor("#d32f2f"))
        painter.setPen(QPen(QColor("#9a0007"), max(1.0, s / 24)))
        painter.drawEllipse(QRectF(s * 0.06, s * 0.06, s * 0.88, s * 0.88))
    else:
        triangle = QPolygonF([QPointF(s / 2, s * 0.06), QPointF(s * 0.96, s * 0.92),
                              QPointF(s * 0.04, s * 0.92)])
        painter.setBrush(QColor("#f9a825"))
        painter.setPen(QPen(QColor("#b26a00"), max(1.0, s / 24)))
        painter.drawPolygon(triangle)
    mark = QColor("#ffffff") if severity == "error" else QColor("#3e2723")
    painter.setPen(Qt.NoPen)
    painter.setBrush(mark)
    top = 0.24 if severity == "error" else 0.34
    width = s * 0.13
    painter.drawRoundedRect(QRectF(s / 2 - width / 2, s * top, width, s * 0.36), width / 2,
                            width / 2)
    painter.drawEllipse(QPointF(s / 2, s * (top + 0.5)), width * 0.62, width * 0.62)
    painter.end()
    return pixmap


def severity_icon(severity: str) -> QIcon:
    """A red disc with '!' for errors, an amber triangle with '!' for warnings."""
    key = ("severity", "error" if severity == "error" else "warning")
    icon = _cache.get(key)
    if icon is None:
        icon = QIcon()
        for size in SIZES:
            icon.addPixmap(_severity_pixmap(size, key[1]))
        _cache[key] = icon
    return icon


def _app_pixmap(size: int) -> QPixmap:
    """Three stacked feature maps narrowing into a neuron: a CNN at a glance."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    s = float(size)
    back = QRectF(s * 0.03, s * 0.03, s * 0.94, s * 0.94)
    gradient = QLinearGradient(back.topLeft(), back.bottomRight())
    gradient.setColorAt(0.0, QColor("#1e88e5"))
    gradient.setColorAt(1.0, QColor("#283593"))
    painter.setBrush(QBrush(gradient))
    painter.setPen(Qt.NoPen)
    painter.drawRoundedRect(back, s * 0.2, s * 0.2)
    layers = (
        (0.16, 0.22, 0.34, 0.56, "#80deea"),
        (0.34, 0.30, 0.26, 0.40, "#ffcc80"),
        (0.52, 0.36, 0.18, 0.28, "#ce93d8"),
    )
    pen = QPen(QColor(0, 0, 0, 90), max(1.0, s / 64))
    for x, y, w, h, colour in layers:
        path = QPainterPath()
        path.addRoundedRect(QRectF(s * x, s * y, s * w, s * h), s * 0.03, s * 0.03)
        painter.setPen(pen)
        painter.setBrush(QColor(colour))
        painter.drawPath(path)
    painter.setPen(QPen(QColor("#ffffff"), max(1.0, s / 40)))
    centre = QPointF(s * 0.80, s * 0.50)
    painter.drawLine(QPointF(s * 0.70, s * 0.50), centre)
    painter.setBrush(QColor("#ffffff"))
    painter.drawEllipse(centre, s * 0.07, s * 0.07)
    painter.end()
    return pixmap


def app_icon() -> QIcon:
    icon = _cache.get(("app", ""))
    if icon is None:
        icon = QIcon()
        for size in APP_SIZES:
            icon.addPixmap(_app_pixmap(size))
        _cache[("app", "")] = icon
    return icon
