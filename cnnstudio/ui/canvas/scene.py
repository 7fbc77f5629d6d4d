"""The canvas scene: draws the document's graph and follows its events.

Items are created, moved and removed only in answer to the model's events (graph_event,
project_replaced) and get their numbers in one pass on analysis_changed. Gestures become
`document.edit(...)` calls elsewhere (view, interactions); the scene never changes the model
behind the document's back.
"""

from __future__ import annotations

from typing import Any, Mapping

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from cnnstudio.core import edits, registry
from cnnstudio.core.analysis import Diagnostic
from cnnstudio.core.blocks.base import format_shape
from cnnstudio.core.explain import explain
from cnnstudio.core.graph import Edge, EventKind, GraphEvent, event_handlers
from cnnstudio.ui.canvas.items import BLOCK_W, BlockItem, WireItem
from cnnstudio.ui.document import Document

SCENE_MARGIN = 2000.0
STACK_REACH = 60.0  # a drop this far below a chain's last block stacks under it


class CanvasScene(QGraphicsScene):
    layout_changed = Signal()  # blocks were added, removed or moved (minimap, scene rect)

    def __init__(self, document: Document, parent: Any = None) -> None:
        super().__init__(parent)
        self.document = document
        self.exporting = False
        self._blocks: dict[str, BlockItem] = {}
        self._wires: dict[Edge, WireItem] = {}
        self._highlight: WireItem | None = None
        self._diagram: QRectF | None = None
        self._far_labels = False  # blocks keep room for far-zoom names (BlockItem.set_label_room)
        self._rect_timer = QTimer(self)
        self._rect_timer.setSingleShot(True)
        self._rect_timer.setInterval(0)
        self._rect_timer.timeout.connect(self.update_scene_rect)
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        self._health: dict[str, tuple[QColor, str]] = {}
        self.graph_event_handlers = event_handlers("CanvasScene", {
            EventKind.BLOCK_ADDED: self._on_block_added,
            EventKind.BLOCK_REMOVED: self._on_block_removed,
            EventKind.PARAMS_CHANGED: self._sync,
            EventKind.BLOCK_RENAMED: self._sync,
            EventKind.BLOCK_COLLAPSED: self._on_block_collapsed,
            EventKind.BLOCK_MOVED: self._on_block_moved,
            EventKind.EDGE_ADDED: self._on_edge_added,
            EventKind.EDGE_REMOVED: self._on_edge_removed,
        }, ignored=(
            # modules (core/modules.py) group ordinary blocks, which the scene draws as
            # usual; the canvas view of modules (collapsed card, expand in place) comes next
            EventKind.MODULE_ADDED, EventKind.MODULE_REMOVED, EventKind.MODULE_CHANGED,
            EventKind.DEFINITION_ADDED, EventKind.DEFINITION_REMOVED,
            EventKind.DEFINITION_CHANGED,
        ))
        document.graph_event.connect(self._on_graph_event)
        document.project_replaced.connect(self.rebuild)
        document.analysis_changed.connect(self.refresh_analysis)
        self.rebuild()

    # -- reading --------------------------------------------------------------------------

    def block_items(self) -> list[BlockItem]:
        return list(self._blocks.values())

    def wire_items(self) -> list[WireItem]:
        return list(self._wires.values())

    def item_for(self, block_id: str) -> BlockItem | None:
        return self._blocks.get(block_id)

    def wire_for(self, edge: Edge) -> WireItem | None:
        return self._wires.get(edge)

    def selected_ids(self) -> list[str]:
        order = {block.id: i for i, block in enumerate(self.document.graph.blocks)}
        ids = [i.block_id for i in self.selectedItems() if isinstance(i, BlockItem)]
        return sorted(ids, key=lambda b: order.get(b, 0))

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, WireItem)]

    def diagram_rect(self) -> QRectF:
        """The bounding rectangle of every block and wire (badges included); cached."""
        if self._diagram is None:
            rect = QRectF()
            for item in self._blocks.values():
                rect = rect.united(item.mapRectToScene(item.outline_rect()))
                if item.badge.isVisible():
                    rect = rect.united(item.badge.sceneBoundingRect())
            for wire in self._wires.values():
                rect = rect.united(wire.sceneBoundingRect())
            self._diagram = rect
        return QRectF(self._diagram)

    def explain(self, block_id: str) -> str:
        graph = self.document.graph
        if block_id not in graph:
            return ""
        return explain(graph.block(block_id), self.document.analysis.blocks.get(block_id))

    # -- hit tests ------------------------------------------------------------------------

    def block_at(self, pos: QPointF) -> BlockItem | None:
        for item in self.items(pos):
            while item is not None and not isinstance(item, BlockItem):
                item = item.parentItem()
            if isinstance(item, BlockItem):
                return item
        return None

    def wire_at(self, pos: QPointF) -> WireItem | None:
        for item in self.items(pos, Qt.IntersectsItemShape):
            if isinstance(item, WireItem):
                return item
        return None

    def input_target_at(self, pos: QPointF) -> BlockItem | None:
        """The block a wire dropped here connects to: the one under the point, or the one
        whose input port is within reach."""
        item = self.block_at(pos)
        if item is not None:
            return item
        area = QRectF(pos.x() - 16, pos.y() - 16, 32, 32)
        for candidate in self.items(area):
            if isinstance(candidate, BlockItem) and candidate.port_at(pos) == "in":
                return candidate
        return None

    def chain_end_above(self, pos: QPointF) -> str | None:
        """A block without outgoing wires just above `pos` (within STACK_REACH below its
        bottom, horizontally overlapping a block centred on pos): new blocks stack under it."""
        graph = self.document.graph
        best: tuple[float, str] | None = None
        for block_id, item in self._blocks.items():
            if not item.isVisible() or graph.output_edges(block_id):
                continue
            if not registry.get(graph.block(block_id).type).has_output_port:
                continue
            bottom = item.y() + item.height()
            below = pos.y() - bottom
            if -10 <= below <= STACK_REACH + 10 and abs(pos.x() - item.x()) < BLOCK_W:
                if best is None or below < best[0]:
                    best = (below, block_id)
        return best[1] if best else None

    # -- following the model ----------------------------------------------------------------

    def rebuild(self) -> None:
        """Recreate every item from the graph (a new or opened project)."""
        self._highlight = None
        for item in list(self._blocks.values()) + list(self._wires.values()):
            self.removeItem(item)
        self._blocks.clear()
        self._wires.clear()
        graph = self.document.graph
        for block in graph.blocks:
            self._add_block(block.id)
        for edge in graph.edges:
            self._add_wire(edge)
        self.refresh_analysis()
        self._geometry_changed()

    def _on_graph_event(self, event: GraphEvent) -> None:
        handler = self.graph_event_handlers[event.kind]  # complete: every kind has its handler
        if handler is not None:
            handler(event)

    def _on_block_added(self, event: GraphEvent) -> None:
        self._add_block(event.block_id)  # type: ignore[arg-type]
        self._geometry_changed()

    def _on_block_removed(self, event: GraphEvent) -> None:
        item = self._blocks.pop(event.block_id, None)  # type: ignore[arg-type]
        if item is not None:
            self.removeItem(item)
        self._geometry_changed()

    def _sync(self, event: GraphEvent) -> None:
        item = self._blocks.get(event.block_id)  # type: ignore[arg-type]
        if item is not None:
            item.sync(self.document.graph.block(item.block_id))

    def _on_block_collapsed(self, event: GraphEvent) -> None:
        self._sync(event)
        self.route_wires_of(event.block_id)  # type: ignore[arg-type]
        self._geometry_changed()

    def _on_block_moved(self, event: GraphEvent) -> None:
        self._sync(event)  # setPos -> block_item_moved reroutes the wires
        self._geometry_changed()

    def _on_edge_added(self, event: GraphEvent) -> None:
        assert event.edge is not None
        self._add_wire(event.edge)
        self.route_wires_of(event.edge.src)
        self.route_wires_of(event.edge.dst)
        self._geometry_changed()

    def _on_edge_removed(self, event: GraphEvent) -> None:
        assert event.edge is not None
        wire = self._wires.pop(event.edge, None)
        if wire is not None:
            if wire is self._highlight:
                self._highlight = None
            self.removeItem(wire)
        for block_id in (event.edge.src, event.edge.dst):
            if block_id in self._blocks:
                self.route_wires_of(block_id)
        self._geometry_changed()

    def _add_block(self, block_id: str) -> None:
        item = BlockItem(self.document.graph.block(block_id))
        self._blocks[block_id] = item
        item.set_label_room(self._far_labels)
        if block_id in self._health:
            item.set_health(*self._health[block_id])
        self.addItem(item)

    def set_health(self, marks: Mapping[str, tuple[QColor, str]] | None) -> None:
        """Tint blocks by training health (block id -> colour and tooltip line); None or {}
        removes every tint."""
        self._health = dict(marks or {})
        for block_id, item in self._blocks.items():
            item.set_health(*self._health.get(block_id, (None, "")))

    def _add_wire(self, edge: Edge) -> None:
        wire = WireItem(edge)
        self._wires[edge] = wire
        self.addItem(wire)
        self._route(wire)
        src = self._blocks.get(edge.src)
        wire.set_label(_label(src))

    def refresh_analysis(self) -> None:
        """One pass over every item after a change: shapes, counts, badges, wire labels."""
        analysis = self.document.analysis
        by_block: dict[str, list[Diagnostic]] = {}
        for diagnostic in analysis.diagnostics:
            if diagnostic.block_id is not None:
                by_block.setdefault(diagnostic.block_id, []).append(diagnostic)
        infos = analysis.blocks
        for block_id, item in self._blocks.items():
            item.apply_analysis(infos.get(block_id), by_block.get(block_id, ()))
        labels: dict[str, str] = {}
        for edge, wire in self._wires.items():
            label = labels.get(edge.src)
            if label is None:
                info = infos.get(edge.src)
                shape = info.output_shape if info is not None else None
                label = labels[edge.src] = format_shape(shape) if shape is not None else ""
            wire.set_label(label)

    # -- wires ------------------------------------------------------------------------------

    def block_item_moved(self, block_id: str) -> None:
        """A block item moved (model event or a drag in progress): its wires follow. The
        diagram's bounds only grow here; the command that ends a drag recomputes them."""
        item = self._blocks.get(block_id)
        if item is None:
            return
        self.route_wires_of(block_id)
        if self._diagram is not None:
            grown = self._diagram.united(item.mapRectToScene(item.outline_rect()))
            if grown != self._diagram:
                self._diagram = grown
                self._geometry_changed(exact=False)
        self.layout_changed.emit()

    def route_wires_of(self, block_id: str) -> None:
        graph = self.document.graph
        if block_id not in graph:
            return
        for edge in graph.input_edges(block_id) + graph.output_edges(block_id):
            wire = self._wires.get(edge)
            if wire is not None:
                self._route(wire)

    def _route(self, wire: WireItem) -> None:
        graph = self.document.graph
        edge = wire.edge
        src, dst = self._blocks.get(edge.src), self._blocks.get(edge.dst)
        if src is None or dst is None:
            return
        inputs = graph.input_edges(edge.dst)
        rank = inputs.index(edge) if edge in inputs else 0
        single_out = len(graph.output_edges(edge.src)) == 1
        single_in = len(inputs) == 1
        mode = "mid" if single_in and single_out else "src" if single_out else (
            "dst" if single_in else "mid")
        wire.set_route(src.output_anchor(), dst.input_anchor(rank, len(inputs)), mode)

    def highlight_wire(self, wire: WireItem | None) -> None:
        """Mark the wire a palette drop would insert into (None: no wire)."""
        if wire is self._highlight:
            return
        for item in (self._highlight, wire):
            if item is not None:
                item.highlighted = item is wire
                item.update()
        self._highlight = wire

    # -- edits ------------------------------------------------------------------------------

    def commit_move(self, positions: Mapping[str, tuple[float, float]]) -> None:
        """One undoable command for a finished drag (the items already stand there)."""
        graph = self.document.graph
        changed = {bid: pos for bid, pos in positions.items()
                   if bid in graph and (graph.block(bid).x, graph.block(bid).y) != pos}
        if not changed:
            return
        text = "Move block" if len(changed) == 1 else f"Move {len(changed)} blocks"
        self.document.edit(text, lambda g: edits.move(g, changed))

    # -- bookkeeping ------------------------------------------------------------------------

    def refresh_theme(self) -> None:
        for item in self.items():
            item.update()
        self.update()

    def _geometry_changed(self, exact: bool = True) -> None:
        if exact:
            self._diagram = None
        if not self._rect_timer.isActive():
            self._rect_timer.start()

    def update_scene_rect(self) -> None:
        """Room to scroll around the diagram; changed only when the diagram nears an edge or
        the room grew far too large, so that a drag does not shift the scroll bars."""
        rect = self.diagram_rect()
        if rect.isNull():
            rect = QRectF(-400, -300, 800, 600)
        m = SCENE_MARGIN
        current = self.sceneRect()
        needed = rect.adjusted(-m / 2, -m / 2, m / 2, m / 2)
        too_big = not rect.adjusted(-3 * m, -3 * m, 3 * m, 3 * m).contains(current)
        if not current.contains(needed) or too_big:
            self.setSceneRect(rect.adjusted(-m, -m, m, m))
        self.layout_changed.emit()

    def set_label_room(self, far: bool) -> None:
        """Whether blocks keep room above and below for names taller than themselves (the
        view is zoomed out to the name-only level of detail)."""
        if far != self._far_labels:
            self._far_labels = far
            for item in self._blocks.values():
                item.set_label_room(far)

    def set_items_cached(self, cached: bool) -> None:
        mode = QGraphicsItem.DeviceCoordinateCache if cached else QGraphicsItem.NoCache
        for item in self._blocks.values():
            item.setCacheMode(mode)


def _label(item: BlockItem | None) -> str:
    """The tensor a wire carries: its source's output shape, once known."""
    if item is None or item.shape_text() in ("", "?"):
        return ""
    return item.shape_text()
