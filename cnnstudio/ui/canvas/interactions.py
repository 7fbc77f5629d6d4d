"""Mouse gestures on the canvas, one small object per gesture, from press to release.

The view picks one on a mouse press (`begin`) and hands it the following moves and
the release. Each either moves the view (pan), previews on the canvas (block drag, rubber
wire) and ends in one `document.edit(...)`, or does nothing to the model.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Protocol

from PySide6.QtCore import QPoint, QPointF, QRect, Qt, SignalInstance
from PySide6.QtGui import QMouseEvent, QPen
from PySide6.QtWidgets import QApplication, QGraphicsPathItem, QScrollBar, QToolTip, QWidget

from cnnstudio.core import modules
from cnnstudio.core.edits import snap
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.ui import theme
from cnnstudio.ui.canvas.items import BlockItem, wire_path
from cnnstudio.ui.canvas.module_item import ModuleItem
from cnnstudio.ui.canvas.scene import CanvasScene
from cnnstudio.ui.document import Document

REFUSAL_SHOWN_MS = 10_000  # how long the reason for a refused wire stays at the pointer
Edit = Callable[[Graph], Any]


class GestureHost(Protocol):
    """What a gesture uses of the view it runs in (view.CanvasView): declared here, below the
    view, so that the view imports the gestures and the gestures do not import the view back."""

    canvas: CanvasScene
    document: Document
    space_held: bool  # while space is down a left drag pans
    status_message: SignalInstance  # for the status bar: why a wire was refused, ...

    def mapToScene(self, point: QPoint) -> QPointF: ...  # noqa: N802 (Qt's name)

    def viewport(self) -> QWidget: ...

    def horizontalScrollBar(self) -> QScrollBar: ...  # noqa: N802

    def verticalScrollBar(self) -> QScrollBar: ...  # noqa: N802

    def restore_cursor(self) -> None: ...

    def forward_press(self, event: QMouseEvent) -> None: ...


class Interaction:
    """One gesture. `forward_release`: the view also gives the release to Qt (selection)."""

    forward_release = False

    def __init__(self, view: GestureHost) -> None:
        self.view = view

    def scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.view.mapToScene(event.position().toPoint())

    def move(self, event: QMouseEvent) -> None:
        return

    def release(self, event: QMouseEvent) -> None:
        return

    def cancel(self) -> None:
        return


class PanInteraction(Interaction):
    """Middle button, or space + left button: drag the canvas."""

    def __init__(self, view: GestureHost, event: QMouseEvent) -> None:
        super().__init__(view)
        self.last = event.position()
        view.viewport().setCursor(Qt.ClosedHandCursor)

    def move(self, event: QMouseEvent) -> None:
        delta = event.position() - self.last
        self.last = event.position()
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - round(delta.x()))
        v.setValue(v.value() - round(delta.y()))

    def release(self, event: QMouseEvent) -> None:
        self.cancel()

    def cancel(self) -> None:
        self.view.restore_cursor()


class MoveInteraction(Interaction):
    """Drag the selected blocks and collapsed module cards; the grabbed block snaps to the
    10 px grid (a grabbed card moves by whole grid steps), the others keep their offsets. On
    release, one undoable command moves them all in the model (a card: its blocks)."""

    forward_release = True

    def __init__(self, view: GestureHost, item: BlockItem | ModuleItem,
                 event: QMouseEvent) -> None:
        super().__init__(view)
        self.anchor = item
        self.press = event.position()
        self.start = self.scene_pos(event)
        selected = [i for i in view.canvas.selectedItems()
                    if isinstance(i, (BlockItem, ModuleItem))]
        self.items: list[BlockItem | ModuleItem] = selected if item in selected else [item]
        self.origin = {id(i): i.pos() for i in self.items}
        self.moved = False

    def move(self, event: QMouseEvent) -> None:
        if not self.moved:
            distance = (event.position() - self.press).manhattanLength()
            if distance < QApplication.startDragDistance():
                return
            self.moved = True
        delta = self.scene_pos(event) - self.start
        anchor = self.origin[id(self.anchor)]
        if isinstance(self.anchor, ModuleItem):
            shift = QPointF(snap(delta.x()), snap(delta.y()))
        else:
            shift = QPointF(snap(anchor.x() + delta.x()), snap(anchor.y() + delta.y())) - anchor
        for item in self.items:
            item.setPos(self.origin[id(item)] + shift)

    def release(self, event: QMouseEvent) -> None:
        if not self.moved:
            return
        graph = self.view.document.graph
        positions: dict[str, tuple[float, float]] = {}
        for item in self.items:
            if isinstance(item, BlockItem):
                positions[item.block_id] = (item.x(), item.y())
                continue
            shift = item.pos() - self.origin[id(item)]
            for block_id in item.members:
                block = graph.block(block_id)
                positions[block_id] = (block.x + shift.x(), block.y + shift.y())
        self.view.canvas.commit_move(positions)

    def cancel(self) -> None:
        for item in self.items:
            item.setPos(self.origin[id(item)])


class WireInteraction(Interaction):
    """Drag from an output port (a block's or a collapsed module card's): a rubber wire follows
    the mouse; released over a block or a card (or near its input port) it connects, or says
    why it cannot. A card's output is its module's output block; a card's input, its entries
    (core/modules.py `connect_input`)."""

    def __init__(self, view: GestureHost, item: BlockItem | ModuleItem) -> None:
        super().__init__(view)
        self.source = item
        self.target: BlockItem | ModuleItem | None = None
        self.rubber = QGraphicsPathItem()
        pen = QPen(theme.current().selection, 2.0, Qt.DashLine)
        self.rubber.setPen(pen)
        self.rubber.setZValue(3)
        view.canvas.addItem(self.rubber)
        self.rubber.setPath(wire_path(item.output_anchor(), item.output_anchor()))

    def move(self, event: QMouseEvent) -> None:
        pos = self.scene_pos(event)
        self.rubber.setPath(wire_path(self.source.output_anchor(), pos))
        target = self.view.canvas.input_target_at(pos)
        if target is self.source:
            target = None
        if target is not self.target:
            if self.target is not None:
                self.target.set_wire_target(None)
            if target is not None:
                target.set_wire_target("bad" if self.plan(target)[0] else "ok")
            self.target = target

    def plan(self, target: BlockItem | ModuleItem) -> tuple[str | None, Edit, str]:
        """(why the wire cannot be made or None, the edit that makes it, what it connects)."""
        graph = self.view.document.graph
        if isinstance(self.source, BlockItem):
            src: str | None = self.source.block_id
            src_name = graph.block(self.source.block_id).name
        else:
            src = modules.output_block(graph, self.source.module_id)
            src_name = f"module {self.source.name()}"
        if src is None:
            return f"{src_name} has no output block left", lambda g: None, ""
        source: str = src
        if isinstance(target, ModuleItem):
            module_id = target.module_id
            return (modules.input_problem(graph, module_id, source),
                    lambda g: modules.connect_input(g, module_id, source),
                    f"{src_name} → module {target.name()}")
        dst = target.block_id
        return (graph.connection_problem(source, dst), lambda g: g.connect(source, dst),
                f"{src_name} → {graph.block(dst).name}")

    def release(self, event: QMouseEvent) -> None:
        self.cancel()
        target = self.view.canvas.input_target_at(self.scene_pos(event))
        if target is None or target is self.source:
            return
        problem, edit, what = self.plan(target)
        if problem:
            self.refuse(event, f"Cannot connect: {problem}")
            return
        try:
            self.view.document.edit("Connect", edit)
        except GraphError as err:
            self.refuse(event, f"Cannot connect: {err}")
            return
        self.view.status_message.emit(f"Connected {what}")

    def refuse(self, event: QMouseEvent, reason: str) -> None:
        """Say why at the drop point, whole (a tooltip wraps; the status bar's one line cuts a
        long reason off), and in the status bar too."""
        self.view.status_message.emit(reason)
        viewport = self.view.viewport()
        point = viewport.mapToGlobal(event.position().toPoint())
        QToolTip.showText(point, f"<p>{html.escape(reason)}</p>", viewport, QRect(),
                          REFUSAL_SHOWN_MS)

    def cancel(self) -> None:
        if self.target is not None:
            self.target.set_wire_target(None)
            self.target = None
        if self.rubber.scene() is not None:
            self.rubber.scene().removeItem(self.rubber)


def begin(view: GestureHost, event: QMouseEvent) -> Interaction | None:
    """The gesture a mouse press starts. Presses Qt should see as well (selection, Ctrl-click
    toggling, the rubber band on empty canvas) are forwarded to it first."""
    button = event.button()
    if button == Qt.MiddleButton or (button == Qt.LeftButton and view.space_held):
        return PanInteraction(view, event)
    pos = view.mapToScene(event.position().toPoint())
    item = view.canvas.block_at(pos) if button == Qt.LeftButton else None
    if item is not None and item.port_at(pos) == "out":
        return WireInteraction(view, item)
    card = view.canvas.module_at(pos) if item is None and button == Qt.LeftButton else None
    if card is not None and card.port_at(pos) == "out":
        return WireInteraction(view, card)
    view.forward_press(event)
    if card is not None and card.is_collapsed():
        return MoveInteraction(view, card, event)
    return MoveInteraction(view, item, event) if item is not None else None
