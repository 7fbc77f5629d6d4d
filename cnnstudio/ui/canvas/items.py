"""What the canvas draws: one BlockItem per block, one WireItem per wire.

Items only draw. They hold the texts they show (set by the scene from the model and the
analysis) and read colours from the current theme at paint time. Geometry convention (the
templates'): a block's x is its horizontal centre, y its top edge.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSceneHoverEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.core.analysis import BlockInfo, Diagnostic
from cnnstudio.core.blocks.base import format_shape
from cnnstudio.core.edits import BLOCK_H, BLOCK_W
from cnnstudio.core.explain import SEPARATOR, counts_text, key_params_text
from cnnstudio.core.graph import Block, Edge
from cnnstudio.ui import theme
from cnnstudio.ui.canvas.detail import (
    CARD_MIN_SCALE,
    LABEL_MARGIN,
    ChipStyle,
    Detail,
    Drawn,
    Fonts,
    compact_count,
    compact_texts,
    detail_for,
    paint_chip,
    scales,
)

COLLAPSED_H = 26.0
BAND_W = 6.0
PAD = 8.0
RADIUS = 6.0
PORT_R = 4.5
PORT_HIT = 10.0
MERGE_PORT = 0.32  # half-width of a merge block's input bar, as a fraction of BLOCK_W
BADGE_R = 8.0
TINT_STRENGTH = 0.4  # how far a tinted block's fill goes from its colour to the tint's
LABEL_SLOT = 120.0  # room kept for a wire's label: fits '(1024,1024,2048)'


class ItemHost(Protocol):
    """What an item asks of the scene it sits in (scene.CanvasScene): declared here, below the
    scene, so that the scene imports the items and the items do not import the scene back."""

    exporting: bool  # drawing into an image file: no selection or highlight marks

    def explain(self, block_id: str) -> str: ...

    def block_item_moved(self, block_id: str) -> None: ...


def _canvas(item: QGraphicsItem) -> ItemHost | None:
    return item.scene()  # type: ignore[return-value]


class BlockItem(QGraphicsItem):
    """A block: accent band, name and type, key parameters, output shape and parameter count,
    ports, and a badge when the analysis reports a problem."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.block_id = block.id
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setFlag(QGraphicsItem.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(1)
        block_type = registry.get(block.type)
        self.type_id = block.type
        self._type_name = block_type.display_name
        self._category = block_type.category
        self._merge = block_type.max_inputs is None
        self._has_input = block_type.max_inputs != 0
        self._has_output = block_type.has_output_port
        self._collapsed = False
        self._height = BLOCK_H
        self._margin = PORT_R + 2  # room above and below the body: ports, or far-zoom names
        self._outline: QPainterPath | None = None
        self._chips: dict[Detail, tuple[tuple, Drawn]] = {}  # elided chip texts, per level
        self._name = self._key = self._shape = self._params = ""
        self._elided_name = self._elided_key = self._shown_params = self._header_type = ""
        self._diagnostics: tuple[tuple[str, str, str], ...] = ()
        self._header: tuple = ()
        self._raw: tuple = ()
        self._stale = True
        self._wire_target: str | None = None
        self._paths: tuple[QPainterPath, QPainterPath] | None = None
        self._health: QColor | None = None  # tint: training health or latency (set_tint)
        self._health_text = ""
        self.badge = BadgeItem(self)
        self.shape_zone = ShapeZone(self)
        self.sync(block)

    # -- what the block shows -----------------------------------------------------------------

    def sync(self, block: Block) -> None:
        """Take name, key parameters, collapsed state and position from the model."""
        changed = False
        if block.collapsed != self._collapsed:
            self.prepareGeometryChange()
            self._collapsed = block.collapsed
            self._height = COLLAPSED_H if block.collapsed else BLOCK_H
            self._paths = self._outline = None
            changed = True
        key = key_params_text(block)
        if (block.name, key) != (self._name, self._key) or changed:
            self._name, self._key = block.name, key
            self._stale = True
            self._update_tooltip()
            changed = True
        if self.pos() != QPointF(block.x, block.y):
            self.setPos(block.x, block.y)
        if changed:
            self._place_children()
            self.update()

    def set_health(self, colour: QColor | None, text: str = "") -> None:
        """Tint the block (None: no tint) and say why on hover: training health or latency,
        whichever CanvasScene.set_tint shows."""
        if colour == self._health and text == self._health_text:
            return
        self._health, self._health_text = colour, text
        self._update_tooltip()
        self.update()

    def health(self) -> tuple[QColor | None, str]:
        return self._health, self._health_text

    def _update_tooltip(self) -> None:
        tip = f"{self._name} — {self._type_name}"
        self.setToolTip(tip + (f"\n{self._health_text}" if self._health_text else ""))

    def apply_analysis(self, info: BlockInfo | None, diagnostics: Iterable[Diagnostic]) -> bool:
        """Take the shape, count and diagnostics. Only a change marks the item for repaint;
        the texts are formatted when next painted or asked for (most items are off-screen)."""
        raw = (None, -1) if info is None else (info.output_shape, info.total_params)
        found = tuple((d.severity, d.message, d.fix) for d in diagnostics) if diagnostics else ()
        if raw == self._raw and found == self._diagnostics:
            return False
        self._raw = raw
        if found != self._diagnostics:
            self._diagnostics = found
            self.badge.set_problems(found)
        self._stale = True
        self.update()
        return True

    def _ensure_texts(self) -> None:
        if self._stale:
            self._stale = False
            shape, params = self._raw if self._raw else (None, -1)
            self._shape = format_shape(shape)
            self._params = counts_text(self.type_id, shape, params)
            self._elide()

    def _elide(self) -> None:
        """Fit the texts to the block. A name too long to share its line with the type gets
        the whole line, and the type moves to the front of the parameter line."""
        fonts = Fonts.get()
        header = (self._name, self._key, self._collapsed, bool(self._diagnostics),
                  self._shape if self._collapsed else "")
        if header != self._header:
            self._header = header
            full = BLOCK_W - BAND_W - 2 * PAD - (BADGE_R if self._diagnostics else 0.0)
            key = self._key
            self._header_type = ""
            both = fonts.width("name", self._name) + fonts.width("small", self._type_name) + 8
            if self._collapsed:
                room = full - fonts.width("shape", self._shape) - 8
            elif both <= full:
                room, self._header_type = full, self._type_name
            else:
                room = full
                key = self._type_name + (SEPARATOR + key if key else "")
            self._elided_name = fonts.elided("name", self._name, max(room, 20), Qt.ElideMiddle)
            self._elided_key = fonts.elided("small", key, BLOCK_W - BAND_W - 2 * PAD,
                                            Qt.ElideRight)
        room = BLOCK_W - BAND_W - 2 * PAD - fonts.width("shape", self._shape) - 6
        self._shown_params = self._params
        if fonts.width("small", self._params) > room:
            self._shown_params = compact_count(self._params)

    def _place_children(self) -> None:
        self.badge.setPos(BLOCK_W / 2 - 3, 3)
        line = (0.0, COLLAPSED_H) if self._collapsed else (40.0, BLOCK_H - 2)
        self.shape_zone.set_rect(QRectF(-BLOCK_W / 2, line[0], BLOCK_W, line[1] - line[0]))

    def name(self) -> str:
        return self._name

    def shape_text(self) -> str:
        self._ensure_texts()
        return self._shape

    def params_text(self) -> str:
        self._ensure_texts()
        return self._params

    def key_text(self) -> str:
        return self._key

    def has_error(self) -> bool:
        return any(severity == "error" for severity, _, _ in self._diagnostics)

    def has_warning(self) -> bool:
        return any(severity != "error" for severity, _, _ in self._diagnostics)

    def set_wire_target(self, state: str | None) -> None:
        """While a wire is dragged over this block: 'ok' (it would connect), 'bad' (refused)."""
        if state != self._wire_target:
            self._wire_target = state
            self.update()

    def is_collapsed(self) -> bool:
        return self._collapsed

    def shape_tooltip(self) -> str:
        """The course arithmetic behind this block's numbers (computed when hovered)."""
        scene = _canvas(self)
        return scene.explain(self.block_id) if scene is not None else ""

    # -- geometry -----------------------------------------------------------------------------

    def height(self) -> float:
        return self._height

    def body_rect(self) -> QRectF:
        return QRectF(-BLOCK_W / 2, 0, BLOCK_W, self._height)

    def outline_rect(self) -> QRectF:
        """The block with its ports: what hit tests, rubber bands and Fit go by."""
        return QRectF(-BLOCK_W / 2 - 1, -PORT_R - 2, BLOCK_W + 2, self._height + 2 * PORT_R + 4)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return QRectF(-BLOCK_W / 2 - 1, -self._margin, BLOCK_W + 2,
                      self._height + 2 * self._margin)

    def shape(self) -> QPainterPath:
        if self._outline is None:
            self._outline = QPainterPath()
            self._outline.addRect(self.outline_rect())
        return self._outline

    def set_label_room(self, far: bool) -> None:
        """Make room above and below the block for a name taller than the block itself
        (far zoom, detail.Detail.NAME), or take it back."""
        margin = LABEL_MARGIN if far else PORT_R + 2
        if margin != self._margin:
            self.prepareGeometryChange()
            self._margin = margin

    def output_anchor(self) -> QPointF:
        return self.pos() + QPointF(0, self._height)

    def input_anchor(self, rank: int = 0, count: int = 1) -> QPointF:
        if not self._merge or count <= 1:
            return self.pos()
        half = BLOCK_W * MERGE_PORT
        return self.pos() + QPointF(-half + 2 * half * (rank + 1) / (count + 1), 0)

    def port_at(self, scene_pos: QPointF) -> str | None:
        """'out' over the output port, 'in' over the input port(s), else None."""
        local = self.mapFromScene(scene_pos)
        if self._has_output and (local - QPointF(0, self._height)).manhattanLength() <= PORT_HIT:
            return "out"
        if self._has_input:
            half = BLOCK_W * MERGE_PORT if self._merge else 0.0
            if abs(local.y()) <= PORT_HIT and -half - PORT_HIT <= local.x() <= half + PORT_HIT:
                return "in"
        return None

    # -- painting -----------------------------------------------------------------------------

    def _shapes(self) -> tuple[QPainterPath, QPainterPath]:
        if self._paths is None:
            body = QPainterPath()
            body.addRoundedRect(self.body_rect(), RADIUS, RADIUS)
            band = QPainterPath()
            band.addRect(QRectF(-BLOCK_W / 2, 0, BAND_W, self._height))
            self._paths = (body, body.intersected(band))
        return self._paths

    def drawn(self, sx: float, sy: float) -> Drawn:
        """What paint draws at these scales (screen pixels per scene unit, across and down):
        the level of detail and the texts it shows. The chips' elided texts are kept per
        level, so repainting at one zoom elides nothing again."""
        level = detail_for(sx, sy, self._height)
        self._ensure_texts()
        if level == Detail.CARD:
            return Drawn(level, self._elided_name, Fonts.get().name.pixelSize() * min(sx, sy),
                         self._shape)
        key = (int(BLOCK_W * sx), round(sy, 3), self._name, self._shape)
        found = self._chips.get(level)
        if found is None or found[0] != key:
            found = self._chips[level] = (
                key, compact_texts(level, self._name, self._shape, sx, sy, self._height))
        return found[1]

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        colours = theme.current()
        scene = _canvas(self)
        exporting = scene is not None and scene.exporting
        sx, sy = scales(painter.worldTransform())
        drawn = self.drawn(sx, sy)
        fill = (colours.block if self._health is None
                else theme.mix(colours.block, self._health, TINT_STRENGTH))
        accent = colours.accent(self._category)
        if self.has_error():
            border, width = colours.error, 2.0
        elif self.isSelected() and not exporting:
            border, width = colours.selection, 2.0
        else:
            border, width = colours.block_border, 1.0
        if drawn.level < Detail.CARD:
            paint_chip(painter, drawn, sx, sy, self._height, self._margin,
                       ChipStyle(fill, accent, border, width))
            return
        body, band = self._shapes()
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(Qt.NoPen)
        painter.setBrush(fill)
        painter.drawPath(body)
        painter.setBrush(accent)
        painter.drawPath(band)
        painter.setBrush(Qt.NoBrush)
        painter.setPen(QPen(border, width))
        painter.drawPath(body)
        self._paint_ports(painter, colours, accent)
        t = min(sx, sy)
        painter.save()
        painter.scale(t / sx, t / sy)  # undistorted text under Fit's spread (else 1, 1)
        self._paint_text(painter, colours, sx / t, sy / t)
        painter.restore()

    def _paint_ports(self, painter: QPainter, colours: theme.Theme, accent: QColor) -> None:
        painter.setPen(QPen(colours.block_border, 1.0))
        if self._has_input:
            grow = 2.0 if self._wire_target else 0.0
            painter.setBrush({"ok": colours.selection, "bad": colours.error}.get(
                self._wire_target or "", accent))
            if self._merge:
                half = BLOCK_W * MERGE_PORT + grow
                painter.drawRoundedRect(QRectF(-half, -3 - grow, 2 * half, 6 + 2 * grow), 4, 4)
            else:
                painter.drawEllipse(QPointF(0, 0), PORT_R + grow, PORT_R + grow)
        painter.setBrush(accent)
        if self._has_output:
            painter.drawEllipse(QPointF(0, self._height), PORT_R, PORT_R)

    def _paint_text(self, painter: QPainter, colours: theme.Theme, kx: float = 1.0,
                    ky: float = 1.0) -> None:
        """The card's texts; (kx, ky) stretch the card's box where the painter was rescaled to
        keep the text undistorted under Fit's spread (texts keep their size and the left
        edge, right-aligned ones follow the right edge)."""
        self._ensure_texts()
        fonts = Fonts.get()
        half = BLOCK_W / 2 * kx
        left, right = -half + BAND_W * kx + PAD, half - PAD
        if self._diagnostics:
            right -= BADGE_R
        painter.setFont(fonts.name)
        painter.setPen(colours.text)
        painter.drawText(QPointF(left, 17 * ky), self._elided_name)
        if self._collapsed:
            painter.setFont(fonts.shape)
            painter.drawText(QPointF(right - fonts.width("shape", self._shape), 17 * ky),
                             self._shape)
            return
        painter.setFont(fonts.small)
        painter.setPen(colours.subtext)
        painter.drawText(QPointF(right - fonts.width("small", self._header_type), 17 * ky),
                         self._header_type)
        painter.drawText(QPointF(left, 35 * ky), self._elided_key)
        right = half - PAD
        painter.drawText(QPointF(right - fonts.width("small", self._shown_params), 54 * ky),
                         self._shown_params)
        painter.setFont(fonts.shape)
        painter.setPen(colours.text)
        painter.drawText(QPointF(left, 54 * ky), self._shape)

    # -- events -------------------------------------------------------------------------------

    def itemChange(  # noqa: N802 (Qt's name)
        self, change: QGraphicsItem.GraphicsItemChange, value: object
    ) -> object:
        if change == QGraphicsItem.ItemPositionHasChanged:
            scene = _canvas(self)
            if scene is not None:
                scene.block_item_moved(self.block_id)
        return super().itemChange(change, value)

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        if self.port_at(event.scenePos()) == "out":
            self.setCursor(Qt.CrossCursor)
        else:
            self.unsetCursor()
        super().hoverMoveEvent(event)


class BadgeItem(QGraphicsItem):
    """The red (error) or amber (warning) '!' of a block; its tooltip says what and how to fix,
    and a click opens the problems with their Fix buttons (the view's `show_fix_popup`)."""

    CLICK_HINT = "Click the badge for the fixes."

    def __init__(self, parent: BlockItem) -> None:
        super().__init__(parent)
        self._error = False
        self.setVisible(False)
        self.setZValue(2)
        self.setCursor(Qt.PointingHandCursor)

    def set_problems(self, problems: tuple[tuple[str, str, str], ...]) -> None:
        self._error = any(severity == "error" for severity, _, _ in problems)
        texts = [message + (f"\nFix: {fix}" if fix else "") for _, message, fix in problems]
        self.setToolTip("\n\n".join(texts + [self.CLICK_HINT]))
        self.setVisible(bool(problems))
        self.update()

    def is_error(self) -> bool:
        return self._error

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(-BADGE_R - 1, -BADGE_R - 1, 2 * BADGE_R + 2, 2 * BADGE_R + 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        colours = theme.current()
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(colours.block, 1.5))
        painter.setBrush(colours.error if self._error else colours.warning)
        painter.drawEllipse(QPointF(0, 0), BADGE_R, BADGE_R)
        painter.setPen(QColor("#ffffff") if self._error else QColor("#1c1f24"))
        painter.setFont(Fonts.get().badge)
        painter.drawText(QRectF(-BADGE_R, -BADGE_R, 2 * BADGE_R, 2 * BADGE_R), Qt.AlignCenter, "!")


class ShapeZone(QGraphicsItem):
    """The invisible area over a block's shape line; hovering it explains the numbers."""

    def __init__(self, parent: BlockItem) -> None:
        super().__init__(parent)
        self._rect = QRectF()
        self.setFlag(QGraphicsItem.ItemHasNoContents)
        self.setAcceptHoverEvents(True)

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = rect

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        return

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        parent = self.parentItem()
        if isinstance(parent, BlockItem):
            self.setToolTip(parent.shape_tooltip())
        super().hoverEnterEvent(event)


def wire_path(start: QPointF, end: QPointF) -> QPainterPath:
    """A cubic from an output port down to an input port. A wire that skips rows runs straight
    down its column and turns in the last gap, so it does not cut through blocks."""
    path = QPainterPath(start)
    dy = end.y() - start.y()
    if dy > BLOCK_H + 40 and abs(end.x() - start.x()) > 1:
        turn = end.y() - 44
        path.lineTo(start.x(), turn)
        path.cubicTo(start.x(), turn + 24, end.x(), end.y() - 20, end.x(), end.y())
        return path
    bend = max(abs(dy) * 0.5, 30.0) if dy > 0 else 60.0 + abs(dy) * 0.25
    path.cubicTo(start.x(), start.y() + bend, end.x(), end.y() - bend, end.x(), end.y())
    return path


class WireItem(QGraphicsItem):
    """A wire from an output port to an input port, labelled with the tensor it carries."""

    def __init__(self, edge: Edge) -> None:
        super().__init__()
        self.edge = edge
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setZValue(0)
        self._path = QPainterPath()
        self._shape: QPainterPath | None = None
        self._label = ""
        self._label_at = QPointF()
        self._path_rect = QRectF()
        self._slot = LABEL_SLOT
        self._bounds = QRectF()
        self.highlighted = False

    def label(self) -> str:
        return self._label

    def set_route(self, start: QPointF, end: QPointF, mode: str) -> None:
        """mode: where the label sits: 'src' below the output, 'dst' above the input, 'mid'."""
        self.prepareGeometryChange()
        self._path = wire_path(start, end)
        self._path_rect = self._path.boundingRect().adjusted(-3, -3, 3, 3)
        self._shape = None
        if mode == "src":
            self._label_at = QPointF(start.x(), start.y() + 16)
        elif mode == "dst":
            self._label_at = QPointF(end.x(), end.y() - 16)
        else:
            self._label_at = self._path.pointAtPercent(0.5)
        self._bounds = self._path_rect.united(self._slot_rect())

    def set_label(self, text: str) -> bool:
        """The label text. Its slot has a fixed width (wider only for very long shapes), so a
        new shape repaints the label without recomputing the wire's geometry."""
        if text == self._label:
            return False
        self._label = text
        slot = LABEL_SLOT if len(text) <= 16 else Fonts.get().width("label", text) + 8
        if slot != self._slot:
            self.prepareGeometryChange()
            self._slot = slot
            self._bounds = self._path_rect.united(self._slot_rect())
        self.update(self._slot_rect())
        return True

    def _slot_rect(self) -> QRectF:
        return QRectF(self._label_at.x() - self._slot / 2, self._label_at.y() - 7, self._slot, 14)

    def _label_rect(self) -> QRectF:
        at = self._label_at
        if not self._label:
            return QRectF(at, at)
        width = Fonts.get().width("label", self._label) + 8
        return QRectF(at.x() - width / 2, at.y() - 7, width, 14)

    def label_rect(self) -> QRectF:
        return self._label_rect()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            self._shape = stroker.createStroke(self._path)
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        colours = theme.current()
        scene = _canvas(self)
        exporting = scene is not None and scene.exporting
        painter.setRenderHint(QPainter.Antialiasing)
        marked = (self.isSelected() or self.highlighted) and not exporting
        pen = QPen(colours.selection if marked else colours.wire, 2.6 if marked else 1.6)
        far = min(scales(painter.worldTransform())) < CARD_MIN_SCALE
        if far:  # a hairline at least a pixel wide, however far out (a cosmetic pen)
            pen.setWidthF(2.0 if marked else 1.0)
            pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self._path)
        if not self._label or far:  # the blocks show their shapes; labels would be unreadable
            return
        rect = self._label_rect()
        background = QColor(colours.canvas)
        background.setAlpha(235)
        painter.setPen(QPen(colours.grid, 1.0))
        painter.setBrush(background)
        painter.drawRoundedRect(rect, 4, 4)
        painter.setFont(Fonts.get().label)
        painter.setPen(colours.wire_text)
        painter.drawText(rect, Qt.AlignCenter, self._label)


