"""How much of a block the canvas draws at a zoom (level of detail), and the fonts it draws with.

A block is drawn as its full card while the card's own name (12 px in the scene) stays at least
MIN_TEXT_PX tall on screen. Below that it becomes a compact chip whose text is sized in screen
pixels, so it stays readable however far the view zooms out: the name and the output shape
while two lines fit in the block's height, then the name alone while one line fits in its row
(the block's height and the label room above and below it), and only when not even that fits a
bar in its category's colour.

The level is picked from the painter's scales at paint time, so every view, an export and the
view's anisotropic Fit (view.py: a tall network spread across the width) each get the level
their own transform calls for. Chips are drawn in device pixels: crisp text at any zoom, and
undistorted when the two axes are scaled differently.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTransform

from cnnstudio.core.edits import BLOCK_H, BLOCK_W
from cnnstudio.ui import theme

MEMO_LIMIT = 20_000
MIN_TEXT_PX = 8.0  # the smallest text the canvas draws on screen
CARD_NAME_PX = 12  # the card's name font, in scene pixels
CARD_MIN_SCALE = MIN_TEXT_PX / CARD_NAME_PX  # below this scale the card's text is too small
LABEL_MARGIN = 23.0  # scene room above and below a block for its far-zoom name (rows: 110)
CHIP_NAME_PX = 9  # the name alone, in screen pixels
CRAMPED_NAME_PX = 8  # ... when the row is too low for CHIP_NAME_PX
CHIP_TITLE_PX = 10  # the name above the shape (bold)
CHIP_SHAPE_PX = 9
CHIP_BAND = 3.0  # screen pixels of the accent band at the chip's left
CHIP_PAD = 4.0
CHIP_RADIUS = 3.0
MIN_CHIP_CHARS = 3  # a name chip narrower than this many characters is a bar
BAR_TINT = 0.6  # how much of its category's colour a bar shows


class Detail(IntEnum):
    """What a block shows, from least to most."""

    BAR = 0  # a bar in its category's colour: not one line of MIN_TEXT_PX text fits
    NAME = 1  # its name, in screen-sized text
    NAME_SHAPE = 2  # name and output shape, in screen-sized text
    CARD = 3  # the full card: name, type, key parameters, shape and count (scene-sized text)


class Drawn(NamedTuple):
    """What a block's paint draws at a level: the name (elided to its room) and its pixel
    height on screen, and the shape line ('' where the level has none)."""

    level: Detail
    name: str
    name_px: float
    shape: str


def _font(pixels: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(pixels)
    font.setBold(bold)
    return font


class Fonts:
    """The canvas fonts and their metrics, made once (pixel sizes: scene units are pixels for
    the card's fonts, screen pixels for the chips': 'chip', 'cramped', 'title', 'chip_shape')."""

    _cache: Fonts | None = None

    def __init__(self) -> None:
        self.name = _font(CARD_NAME_PX, bold=True)
        self.small = _font(11)
        self.shape = _font(12, bold=True)
        self.label = _font(10)
        self.badge = _font(11, bold=True)
        self.chip = _font(CHIP_NAME_PX)
        self.cramped = _font(CRAMPED_NAME_PX)
        self.title = _font(CHIP_TITLE_PX, bold=True)
        self.chip_shape = _font(CHIP_SHAPE_PX)
        for kind in ("name", "small", "shape", "label", "chip", "cramped", "title",
                     "chip_shape"):
            setattr(self, f"{kind}_m", QFontMetricsF(getattr(self, kind)))
        self.lines = {kind: self.metrics(kind).ascent() + self.metrics(kind).descent()
                      for kind in ("chip", "cramped", "title", "chip_shape")}
        self.min_name_width = MIN_CHIP_CHARS * self.chip_m.averageCharWidth()
        self.min_title_width = 6 * self.title_m.averageCharWidth()
        self._widths: dict[tuple[str, str], float] = {}
        self._elided: dict[tuple[str, str, float], str] = {}

    def width(self, kind: str, text: str) -> float:
        """horizontalAdvance of text in font `kind`, memoised: the same shapes and counts come
        back on every edit."""
        key = (kind, text)
        found = self._widths.get(key)
        if found is None:
            if len(self._widths) > MEMO_LIMIT:
                self._widths.clear()
            found = self._widths[key] = getattr(self, f"{kind}_m").horizontalAdvance(text)
        return found

    def elided(self, kind: str, text: str, width: float, mode: Qt.TextElideMode) -> str:
        key = (kind, text, width)
        found = self._elided.get(key)
        if found is None:
            if len(self._elided) > MEMO_LIMIT:
                self._elided.clear()
            found = getattr(self, f"{kind}_m").elidedText(text, mode, width)
            self._elided[key] = found
        return found

    def metrics(self, kind: str) -> QFontMetricsF:
        return getattr(self, f"{kind}_m")

    def font(self, kind: str) -> QFont:
        return getattr(self, kind)

    @classmethod
    def get(cls) -> Fonts:
        if cls._cache is None:
            cls._cache = Fonts()
        return cls._cache


def compact_count(text: str) -> str:
    """'221,376 params' -> '221k params' when the full count does not fit beside the shape."""
    number, _, rest = text.partition(" ")
    try:
        value = int(number.replace(",", ""))
    except ValueError:
        return text
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            digits = 0 if scaled >= 100 else 1 if scaled >= 10 else 2
            return f"{scaled:.{digits}f}{suffix} {rest}".strip()
    return text


def scales(transform: QTransform) -> tuple[float, float]:
    """How many screen pixels one scene unit covers, across and down."""
    return math.hypot(transform.m11(), transform.m12()), math.hypot(transform.m21(),
                                                                      transform.m22())


def _line_px(kind: str) -> float:
    return Fonts.get().lines[kind]


_levels: dict[tuple[float, float, float], Detail] = {}


def detail_for(sx: float, sy: float, height: float = BLOCK_H) -> Detail:
    """The most a block `height` scene units tall can show at these scales (memoised: every
    block asks at every repaint)."""
    key = (sx, sy, height)
    found = _levels.get(key)
    if found is None:
        if len(_levels) > MEMO_LIMIT:
            _levels.clear()
        found = _levels[key] = _level(sx, sy, height)
    return found


def _level(sx: float, sy: float, height: float) -> Detail:
    if min(sx, sy) >= CARD_MIN_SCALE:
        return Detail.CARD
    fonts = Fonts.get()
    width = BLOCK_W * sx - CHIP_BAND - 2 * CHIP_PAD
    lines = _line_px("title") + _line_px("chip_shape") + 2
    if height * sy >= lines and width >= fonts.min_title_width:
        return Detail.NAME_SHAPE
    room = (height + 2 * LABEL_MARGIN) * sy
    if room >= MIN_TEXT_PX and width >= fonts.min_name_width:
        return Detail.NAME
    return Detail.BAR


def name_kind(height: float, sy: float) -> str:
    """The font of a lone name: CHIP_NAME_PX, or CRAMPED_NAME_PX where its row is low."""
    return "chip" if (height + 2 * LABEL_MARGIN) * sy >= _line_px("chip") else "cramped"


def compact_texts(level: Detail, name: str, shape: str, sx: float, sy: float,
                  height: float) -> Drawn:
    """The chip's texts at `level` (NAME_SHAPE, NAME or BAR), elided to its width on screen."""
    if level == Detail.BAR:
        return Drawn(level, "", 0.0, "")
    fonts = Fonts.get()
    room = float(int(BLOCK_W * sx - CHIP_BAND - 2 * CHIP_PAD))
    if level == Detail.NAME:
        kind = name_kind(height, sy)
        return Drawn(level, fonts.elided(kind, name, room, Qt.ElideMiddle),
                     float(fonts.font(kind).pixelSize()), "")
    return Drawn(level, fonts.elided("title", name, room, Qt.ElideMiddle), float(CHIP_TITLE_PX),
                 fonts.elided("chip_shape", shape, room, Qt.ElideRight))


class ChipStyle(NamedTuple):
    """The colours of one chip: fill, category accent, border and its width (screen px)."""

    fill: QColor
    accent: QColor
    border: QColor
    border_width: float


def paint_chip(painter: QPainter, drawn: Drawn, sx: float, sy: float, height: float,
               margin: float, style: ChipStyle) -> None:
    """Draw a block as a chip at a compact level, in screen pixels around the item's origin
    (its top centre). A lone name may be taller than the block: the chip grows into the label
    room (`margin` scene units above and below), never beyond."""
    if drawn.level == Detail.BAR:  # the cheapest: one rectangle, in scene units
        tall = max(height, 1.5 / sy)
        if style.border_width > 1.0:  # an error or the selection: its colour
            pen = QPen(style.border, style.border_width)
            pen.setCosmetic(True)
            painter.setPen(pen)
        else:
            painter.setPen(Qt.NoPen)
        painter.setBrush(theme.mix(style.fill, style.accent, BAR_TINT))
        painter.drawRect(QRectF(-BLOCK_W / 2, (height - tall) / 2, BLOCK_W, tall))
        return
    colours = theme.current()
    fonts = Fonts.get()
    painter.save()
    painter.scale(1.0 / sx, 1.0 / sy)
    width, tall, middle = BLOCK_W * sx, height * sy, height * sy / 2
    if drawn.level == Detail.NAME:
        kind = name_kind(height, sy)
        tall = min(max(tall, _line_px(kind) + 2), (height + 2 * margin) * sy)
    chip = QRectF(-width / 2, middle - tall / 2, width, tall)
    painter.setRenderHint(QPainter.Antialiasing)
    radius = min(CHIP_RADIUS, tall / 2)
    painter.setPen(QPen(style.border, style.border_width))
    painter.setBrush(theme.mix(style.fill, style.accent, 0.12))
    painter.drawRoundedRect(chip, radius, radius)
    painter.setPen(Qt.NoPen)
    painter.setBrush(style.accent)
    painter.drawRect(QRectF(chip.left() + 0.5, chip.top() + 0.5, CHIP_BAND, chip.height() - 1))
    left = chip.left() + CHIP_BAND + CHIP_PAD
    painter.setPen(colours.text)
    if drawn.level == Detail.NAME:
        kind = name_kind(height, sy)
        metrics = fonts.metrics(kind)
        painter.setFont(fonts.font(kind))
        baseline = middle + (metrics.ascent() - metrics.descent()) / 2
        painter.drawText(QPointF(left, baseline), drawn.name)
    else:
        title, shape = fonts.metrics("title"), fonts.metrics("chip_shape")
        block = title.ascent() + title.descent() + 1 + shape.ascent() + shape.descent()
        top = middle - block / 2
        painter.setFont(fonts.title)
        painter.drawText(QPointF(left, top + title.ascent()), drawn.name)
        painter.setFont(fonts.chip_shape)
        painter.setPen(colours.subtext)
        painter.drawText(QPointF(left, top + block - shape.descent()), drawn.shape)
    painter.restore()
