"""How the canvas draws a module (core/modules.py): one card while collapsed, a frame while
expanded.

A collapsed module is one `ModuleItem` card where its blocks stand (centred on their bounding
box): its name and a "module" tag, the tensor that enters and leaves it, its parameters and
MACs, red when a block inside has an error. Its blocks and the wires among them are hidden; the
wires from outside attach to the card's input and output ports (the scene routes them), and a
wire dragged from or dropped on those ports connects the module (interactions.py). Zoomed
out it is drawn at the same levels of detail as a block (detail.py), so its name shows at any
zoom. An expanded module is a light rounded frame behind its blocks with the module's name and
a small collapse button (`CollapseButton`). Like the block items, these only draw: the scene
gives them their texts and geometry from the model.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSceneHoverEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from cnnstudio.core.blocks.base import format_shape
from cnnstudio.core.edits import BLOCK_H, BLOCK_W
from cnnstudio.core.module_layout import FRAME_PAD, TITLE_H  # the layout makes room for them
from cnnstudio.core.modules import ModuleSummary
from cnnstudio.ui import theme
from cnnstudio.ui.canvas.detail import (
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
from cnnstudio.ui.canvas.items import BAND_W, PAD, PORT_HIT, PORT_R, RADIUS

MODULE_HUE = "#455a64"  # the accent of module cards and frames (blue grey)
STACK = 4.0  # the offset of the card drawn behind a collapsed module: "several blocks"
BUTTON_R = 8.0
CHIP_TALL = 13.0  # screen pixels: about the height of a name-only chip (detail.paint_chip)
TAG = "module"


def module_accent(colours: theme.Theme) -> QColor:
    colour = QColor(MODULE_HUE)
    return colour.lighter(170) if colours.dark else colour


class ModuleItem(QGraphicsItem):
    """A module on the canvas: a card (collapsed) or a frame behind its blocks (expanded)."""

    def __init__(self, module_id: str) -> None:
        super().__init__()
        self.module_id = module_id
        self.members: frozenset[str] = frozenset()
        self._collapsed = False
        self._name = self._definition = ""
        self._in = self._out = "?"
        self._params = self._macs = ""
        self._blocks = 0
        self._error = False
        self._margin = PORT_R + 2
        self._frame = QRectF()  # expanded: the frame, in item coordinates
        self._wire_target: str | None = None  # a wire dragged over the card: 'ok' or 'bad'
        self.setAcceptHoverEvents(True)
        self.setFlag(QGraphicsItem.ItemSendsGeometryChanges)
        self.collapse_button = CollapseButton(self)
        self._apply_mode()

    # -- what it shows ------------------------------------------------------------------------

    def set_module(self, name: str, definition: str, collapsed: bool,
                   members: frozenset[str]) -> None:
        self.members = members
        if (name, definition) != (self._name, self._definition):
            self._name, self._definition = name, definition
            self._update_tooltip()
            self.update()
        if collapsed != self._collapsed:
            self.prepareGeometryChange()
            self._collapsed = collapsed
            self._apply_mode()

    def _apply_mode(self) -> None:
        collapsed = self._collapsed
        self.setFlag(QGraphicsItem.ItemIsSelectable, collapsed)
        self.setZValue(1 if collapsed else -1)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache if collapsed
                          else QGraphicsItem.NoCache)
        self.collapse_button.setVisible(not collapsed)
        if not collapsed:
            self.setSelected(False)
        self._update_tooltip()
        self.update()

    def set_summary(self, summary: ModuleSummary | None) -> None:
        """The numbers of the collapsed card (None: not known yet)."""
        if summary is None:
            texts: tuple = ("?", "?", "", "", 0, False)
        else:
            texts = (format_shape(summary.input_shape), format_shape(summary.output_shape),
                     compact_count(f"{summary.total_params:,} params"),
                     compact_count(f"{summary.macs:,} MACs"), summary.blocks,
                     bool(summary.errors))
        if texts != (self._in, self._out, self._params, self._macs, self._blocks, self._error):
            self._in, self._out, self._params, self._macs, self._blocks, self._error = texts
            self._update_tooltip()
            self.update()

    def _update_tooltip(self) -> None:
        if not self._collapsed:
            self.setToolTip("")
            return
        lines = [f"{self._name} — module '{self._definition}', {self._blocks} blocks",
                 f"{self._in} → {self._out}"]
        lines += [t for t in (self._params, self._macs) if t]
        if self._error:
            lines.append("A block inside has an error: expand the module to see it.")
        lines.append("Double-click to expand it.")
        self.setToolTip("\n".join(lines))

    def name(self) -> str:
        return self._name

    def definition_name(self) -> str:
        return self._definition

    def is_collapsed(self) -> bool:
        return self._collapsed

    def has_error(self) -> bool:
        return self._error

    def shape_text(self) -> str:
        return self._out

    def input_text(self) -> str:
        return self._in

    def counts_text(self) -> str:
        return " · ".join(t for t in (self._params, self._macs) if t)

    # -- geometry -----------------------------------------------------------------------------

    def place_card(self, x: float, y: float) -> None:
        """A collapsed card with its top centre at (x, y)."""
        if self.pos() != QPointF(x, y):
            self.setPos(x, y)

    def place_frame(self, members: QRectF) -> None:
        """An expanded module's frame around its blocks' scene rectangle."""
        frame = members.adjusted(-FRAME_PAD, -FRAME_PAD - TITLE_H, FRAME_PAD, FRAME_PAD)
        if self.pos() != QPointF(0, 0):
            self.setPos(0, 0)
        if frame != self._frame:
            self.prepareGeometryChange()
            self._frame = frame
            self.collapse_button.setPos(frame.right() - BUTTON_R - 6, frame.top() + BUTTON_R + 4)

    def set_label_room(self, far: bool) -> None:
        margin = LABEL_MARGIN if far else PORT_R + 2
        if margin != self._margin:
            self.prepareGeometryChange()
            self._margin = margin

    def height(self) -> float:
        return BLOCK_H

    def body_rect(self) -> QRectF:
        return QRectF(-BLOCK_W / 2, 0, BLOCK_W, BLOCK_H)

    def outline_rect(self) -> QRectF:
        """What hit tests, Fit and the minimap go by (the card with its ports, or the frame)."""
        if not self._collapsed:
            return QRectF(self._frame)
        return QRectF(-BLOCK_W / 2 - 1, -PORT_R - 2, BLOCK_W + STACK + 2,
                      BLOCK_H + STACK + 2 * PORT_R + 4)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        if not self._collapsed:
            return self._frame.adjusted(-1, -1, 1, 1)
        return QRectF(-BLOCK_W / 2 - 1, -self._margin, BLOCK_W + STACK + 2,
                      BLOCK_H + STACK + 2 * self._margin)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        if self._collapsed:
            path.addRect(self.outline_rect())
        else:  # only the title strip takes clicks: the blocks inside stay reachable
            path.addRect(QRectF(self._frame.left(), self._frame.top(), self._frame.width(),
                                TITLE_H))
        return path

    def input_anchor(self) -> QPointF:
        return self.pos()

    def output_anchor(self) -> QPointF:
        return self.pos() + QPointF(0, BLOCK_H)

    def port_at(self, scene_pos: QPointF) -> str | None:
        """A collapsed card's 'out' or 'in' port under the point (wires start and end there,
        as at a block's), else None."""
        if not self._collapsed:
            return None
        local = self.mapFromScene(scene_pos)
        if (local - QPointF(0, BLOCK_H)).manhattanLength() <= PORT_HIT:
            return "out"
        if abs(local.y()) <= PORT_HIT and abs(local.x()) <= PORT_HIT:
            return "in"
        return None

    def set_wire_target(self, state: str | None) -> None:
        """While a wire is dragged over the card: 'ok' (it would connect), 'bad' (refused)."""
        if state != self._wire_target:
            self._wire_target = state
            self.update()

    def hoverMoveEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        if self.port_at(event.scenePos()) == "out":
            self.setCursor(Qt.CrossCursor)
        else:
            self.unsetCursor()
        super().hoverMoveEvent(event)

    def itemChange(  # noqa: N802 (Qt's name)
        self, change: QGraphicsItem.GraphicsItemChange, value: object
    ) -> object:
        if change == QGraphicsItem.ItemPositionHasChanged and self._collapsed:
            scene = self.scene()
            if scene is not None:  # the wires to and from the card follow it
                scene.module_item_moved(self.module_id)  # type: ignore[attr-defined]
        return super().itemChange(change, value)

    # -- painting -----------------------------------------------------------------------------

    def drawn(self, sx: float, sy: float) -> Drawn:
        """What the card draws at these scales: its level of detail and texts (as a block's)."""
        level = detail_for(sx, sy, BLOCK_H)
        if level == Detail.CARD:
            return Drawn(level, self._name, Fonts.get().name.pixelSize() * min(sx, sy), self._out)
        return compact_texts(level, self._name, self._out, sx, sy, BLOCK_H)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        colours = theme.current()
        if not self._collapsed:
            self._paint_frame(painter, colours)
            return
        scene = self.scene()
        exporting = bool(getattr(scene, "exporting", False))
        sx, sy = scales(painter.worldTransform())
        accent = module_accent(colours)
        fill = theme.mix(colours.block, accent, 0.08)
        if self._error:
            border, width = colours.error, 2.0
        elif self.isSelected() and not exporting:
            border, width = colours.selection, 2.0
        else:
            border, width = theme.mix(colours.block_border, accent, 0.5), 1.2
        drawn = self.drawn(sx, sy)
        if drawn.level < Detail.CARD:
            if drawn.level > Detail.BAR:
                self._paint_chip_stack(painter, sx, sy, theme.mix(colours.block, accent, 0.3))
            paint_chip(painter, drawn, sx, sy, BLOCK_H, self._margin,
                       ChipStyle(fill, accent, border, width))
            return
        painter.setRenderHint(QPainter.Antialiasing)
        body = self.body_rect()
        painter.setPen(QPen(theme.mix(colours.block_border, accent, 0.5), 1.0))
        painter.setBrush(theme.mix(colours.block, accent, 0.2))
        painter.drawRoundedRect(body.translated(STACK, STACK), RADIUS, RADIUS)
        painter.setBrush(fill)
        painter.setPen(QPen(border, width))
        painter.drawRoundedRect(body, RADIUS, RADIUS)
        painter.setPen(Qt.NoPen)
        painter.setBrush(accent)
        band = QPainterPath()
        band.addRoundedRect(body, RADIUS, RADIUS)
        strip = QPainterPath()
        strip.addRect(QRectF(body.left(), 0, BAND_W, BLOCK_H))
        painter.drawPath(band.intersected(strip))
        painter.setPen(QPen(colours.block_border, 1.0))
        painter.drawEllipse(QPointF(0, BLOCK_H), PORT_R, PORT_R)
        target = {"ok": colours.selection, "bad": colours.error}.get(self._wire_target or "")
        painter.setBrush(target or accent)
        grow = 1.5 if target is not None else 0.0  # within the bounding rectangle
        painter.drawEllipse(QPointF(0, 0), PORT_R + grow, PORT_R + grow)
        t = min(sx, sy)
        painter.save()
        painter.scale(t / sx, t / sy)  # undistorted text under Fit's spread
        self._paint_card_text(painter, colours, accent, sx / t, sy / t)
        painter.restore()

    def _paint_chip_stack(self, painter: QPainter, sx: float, sy: float, colour: QColor) -> None:
        """A chip's edge behind it, a few screen pixels down and right: "several blocks"."""
        painter.save()
        painter.scale(1.0 / sx, 1.0 / sy)
        middle = BLOCK_H * sy / 2
        tall = min(max(BLOCK_H * sy, CHIP_TALL), (BLOCK_H + 2 * self._margin) * sy)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(Qt.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(QRectF(-BLOCK_W * sx / 2 + 3, middle - tall / 2 + 3,
                                       BLOCK_W * sx, tall), 3, 3)
        painter.restore()

    def _paint_card_text(self, painter: QPainter, colours: theme.Theme, accent: QColor,
                         kx: float, ky: float) -> None:
        fonts = Fonts.get()
        half = BLOCK_W / 2 * kx
        left, right = -half + BAND_W * kx + PAD, half - PAD
        tag_w = fonts.width("small", TAG) + 10
        tag = QRectF(right - tag_w, 6 * ky, tag_w, 15)
        painter.setPen(Qt.NoPen)
        painter.setBrush(theme.mix(colours.block, accent, 0.25))
        painter.drawRoundedRect(tag, 7, 7)
        painter.setFont(fonts.small)
        painter.setPen(colours.text)
        painter.drawText(tag, Qt.AlignCenter, TAG)
        painter.setFont(fonts.name)
        name_room = right - tag_w - 6 - left
        painter.drawText(QPointF(left, 18 * ky),
                         fonts.elided("name", self._name, max(name_room, 20), Qt.ElideMiddle))
        painter.setFont(fonts.small)
        painter.setPen(colours.subtext)
        line = f"in {self._in}" + (f" · {self._macs}" if self._macs else "")
        painter.drawText(QPointF(left, 36 * ky),
                         fonts.elided("small", line, right - left, Qt.ElideRight))
        painter.drawText(QPointF(right - fonts.width("small", self._params), 54 * ky),
                         self._params)
        painter.setFont(fonts.shape)
        painter.setPen(colours.text)
        painter.drawText(QPointF(left, 54 * ky), self._out)

    def _paint_frame(self, painter: QPainter, colours: theme.Theme) -> None:
        accent = module_accent(colours)
        painter.setRenderHint(QPainter.Antialiasing)
        fill = QColor(accent)
        fill.setAlphaF(0.07 if not colours.dark else 0.12)
        pen = QPen(theme.mix(colours.canvas, accent, 0.55), 1.2, Qt.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(self._frame, 10, 10)
        sx, sy = scales(painter.worldTransform())
        if min(sx, sy) * Fonts.get().name.pixelSize() < 7:
            return  # the blocks show their own names; a title this small is unreadable
        painter.setFont(Fonts.get().name)
        painter.setPen(colours.subtext)
        title = f"{self._name}  ·  {TAG} '{self._definition}'" if self._definition != \
            self._name else f"{self._name}  ·  {TAG}"
        room = self._frame.width() - 2 * BUTTON_R - 30
        painter.drawText(QPointF(self._frame.left() + 12, self._frame.top() + 14),
                         Fonts.get().elided("name", title, max(room, 20), Qt.ElideRight))


class CollapseButton(QGraphicsItem):
    """The small "collapse" button on an expanded module's frame (the view collapses the
    module when it is clicked)."""

    def __init__(self, parent: ModuleItem) -> None:
        super().__init__(parent)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Collapse the module into one block")
        self.setZValue(2)

    def module_id(self) -> str:
        parent = self.parentItem()
        return parent.module_id if isinstance(parent, ModuleItem) else ""

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(-BUTTON_R - 1, -BUTTON_R - 1, 2 * BUTTON_R + 2, 2 * BUTTON_R + 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        colours = theme.current()
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(theme.mix(colours.canvas, module_accent(colours), 0.6), 1.0))
        painter.setBrush(colours.block)
        painter.drawRoundedRect(QRectF(-BUTTON_R, -BUTTON_R, 2 * BUTTON_R, 2 * BUTTON_R), 3, 3)
        pen = QPen(colours.text, 1.6)
        painter.setPen(pen)
        painter.drawLine(QPointF(-4, 2), QPointF(0, -2))  # a caret up: fold the blocks away
        painter.drawLine(QPointF(0, -2), QPointF(4, 2))
