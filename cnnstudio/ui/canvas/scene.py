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
from cnnstudio.core.graph import Edge, EventKind, GraphError, GraphEvent, event_handlers
from cnnstudio.core.module_layout import module_box
from cnnstudio.core.modules import module_summary
from cnnstudio.ui.canvas.items import BLOCK_W, BlockItem, WireItem
from cnnstudio.ui.canvas.module_item import ModuleItem
from cnnstudio.ui.document import Document

SCENE_MARGIN = 2000.0
STACK_REACH = 60.0  # a drop this far below a chain's last block stacks under it
HEALTH_TINT = "health"  # the kinds of block tint (set_tint): training health, per-block latency
LATENCY_TINT = "latency"


class CanvasScene(QGraphicsScene):
    layout_changed = Signal()  # blocks were added, removed or moved (minimap, scene rect)
    tint_changed = Signal()  # the tint on the blocks changed (set_tint; legends follow it)

    def __init__(self, document: Document, parent: Any = None) -> None:
        super().__init__(parent)
        self.document = document
        self.exporting = False
        self._blocks: dict[str, BlockItem] = {}
        self._wires: dict[Edge, WireItem] = {}
        self._modules: dict[str, ModuleItem] = {}
        self._hidden: dict[str, str] = {}  # block id -> the collapsed module that hides it
        self._highlight: WireItem | None = None
        self._diagram: QRectF | None = None
        self._far_labels = False  # blocks keep room for far-zoom names (BlockItem.set_label_room)
        self._rect_timer = QTimer(self)
        self._rect_timer.setSingleShot(True)
        self._rect_timer.setInterval(0)
        self._rect_timer.timeout.connect(self.update_scene_rect)
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        # tint kind -> block id -> (colour, tooltip line), in the order turned on: the last shows
        self._tints: dict[str, dict[str, tuple[QColor, str]]] = {}
        self.graph_event_handlers = event_handlers("CanvasScene", {
            EventKind.BLOCK_ADDED: self._on_block_added,
            EventKind.BLOCK_REMOVED: self._on_block_removed,
            EventKind.PARAMS_CHANGED: self._sync,
            EventKind.BLOCK_RENAMED: self._sync,
            EventKind.BLOCK_COLLAPSED: self._on_block_collapsed,
            EventKind.BLOCK_MOVED: self._on_block_moved,
            EventKind.EDGE_ADDED: self._on_edge_added,
            EventKind.EDGE_REMOVED: self._on_edge_removed,
            EventKind.MODULE_ADDED: self._on_module_event,
            EventKind.MODULE_REMOVED: self._on_module_event,
            EventKind.MODULE_CHANGED: self._on_module_event,
            EventKind.DEFINITION_CHANGED: self._on_definition_changed,
        }, ignored=(
            # a definition alone draws nothing: its instances are what the canvas shows
            EventKind.DEFINITION_ADDED, EventKind.DEFINITION_REMOVED,
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

    def module_items(self) -> list[ModuleItem]:
        return list(self._modules.values())

    def module_item(self, module_id: str) -> ModuleItem | None:
        return self._modules.get(module_id)

    def hiding_module(self, block_id: str) -> ModuleItem | None:
        """The collapsed module card that stands for this block, or None when it shows."""
        module_id = self._hidden.get(block_id)
        return self._modules.get(module_id) if module_id is not None else None

    def selected_ids(self) -> list[str]:
        """The selected blocks, a selected module card standing for every block inside."""
        order = {block.id: i for i, block in enumerate(self.document.graph.blocks)}
        ids: list[str] = []
        for item in self.selectedItems():
            if isinstance(item, BlockItem):
                ids.append(item.block_id)
            elif isinstance(item, ModuleItem):
                ids.extend(item.members)
        return sorted(dict.fromkeys(ids), key=lambda b: order.get(b, 0))

    def selected_modules(self) -> list[str]:
        """Ids of the selected collapsed modules."""
        return [i.module_id for i in self.selectedItems() if isinstance(i, ModuleItem)]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, WireItem)]

    def diagram_rect(self) -> QRectF:
        """The bounding rectangle of every block and wire (badges included); cached."""
        if self._diagram is None:
            rect = QRectF()
            for item in self._blocks.values():
                if item.isVisible():
                    rect = rect.united(item.mapRectToScene(item.outline_rect()))
                    if item.badge.isVisible():
                        rect = rect.united(item.badge.sceneBoundingRect())
            for module in self._modules.values():
                rect = rect.united(module.mapRectToScene(module.outline_rect()))
            for wire in self._wires.values():
                if wire.isVisible():
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

    def module_at(self, pos: QPointF) -> ModuleItem | None:
        """The collapsed module card under the point (or an expanded module's title strip)."""
        for item in self.items(pos):
            if isinstance(item, BlockItem):
                return None
            while item is not None and not isinstance(item, ModuleItem):
                item = item.parentItem()
            if isinstance(item, ModuleItem):
                return item
        return None

    def wire_at(self, pos: QPointF) -> WireItem | None:
        for item in self.items(pos, Qt.IntersectsItemShape):
            if isinstance(item, WireItem):
                return item
        return None

    def input_target_at(self, pos: QPointF) -> BlockItem | ModuleItem | None:
        """The block or collapsed module card a wire dropped here connects to: the one under
        the point, or the one whose input port is within reach."""
        item = self.block_at(pos)
        if item is not None:
            return item
        card = self.module_at(pos)
        if card is not None and card.is_collapsed():
            return card
        area = QRectF(pos.x() - 16, pos.y() - 16, 32, 32)
        for candidate in self.items(area):
            if isinstance(candidate, (BlockItem, ModuleItem)) and candidate.port_at(pos) == "in":
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
        for item in [*self._blocks.values(), *self._wires.values(), *self._modules.values()]:
            self.removeItem(item)
        self._blocks.clear()
        self._wires.clear()
        self._modules.clear()
        self._hidden.clear()
        graph = self.document.graph
        for block in graph.blocks:
            self._add_block(block.id)
        for edge in graph.edges:
            self._add_wire(edge)
        for module in graph.modules:
            self._sync_module(module.id)
        self.refresh_analysis()
        self._geometry_changed()

    def _on_graph_event(self, event: GraphEvent) -> None:
        handler = self.graph_event_handlers[event.kind]  # complete: every kind has its handler
        if handler is not None:
            handler(event)

    def _on_block_added(self, event: GraphEvent) -> None:
        self._add_block(event.block_id)  # type: ignore[arg-type]
        module = self.document.graph.module_of(event.block_id)  # type: ignore[arg-type]
        if module is not None:  # an undone delete inside a module
            self._sync_module(module.id)
        self._geometry_changed()

    def _on_block_removed(self, event: GraphEvent) -> None:
        item = self._blocks.pop(event.block_id, None)  # type: ignore[arg-type]
        self._hidden.pop(event.block_id, None)  # type: ignore[arg-type]
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
        module = self.document.graph.module_of(event.block_id)  # type: ignore[arg-type]
        if module is not None and module.collapsed:  # its card follows its blocks
            self._place_module(module.id)
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
        if block_id in self.tint_marks():
            item.set_health(*self.tint_marks()[block_id])
        self.addItem(item)

    def set_health(self, marks: Mapping[str, tuple[QColor, str]] | None) -> None:
        """Tint blocks by training health (ui/training/health.py); None or {} removes it."""
        self.set_tint(HEALTH_TINT, marks)

    def set_tint(self, kind: str, marks: Mapping[str, tuple[QColor, str]] | None) -> None:
        """Tint blocks (block id -> colour and tooltip line) with one kind of tint: training
        health or latency. One kind shows at a time, the one turned on last; updating a kind
        keeps its place, and None or {} removes it, showing the other again."""
        if marks:
            self._tints[kind] = dict(marks)
        elif self._tints.pop(kind, None) is None:
            return
        shown = self.tint_marks()
        for block_id, item in self._blocks.items():
            item.set_health(*shown.get(block_id, (None, "")))
        self.tint_changed.emit()

    def tint_kind(self) -> str:
        """The kind of tint the blocks show ("" for none)."""
        return next(reversed(self._tints), "")

    def tint_marks(self) -> dict[str, tuple[QColor, str]]:
        return self._tints.get(self.tint_kind(), {})

    def _add_wire(self, edge: Edge) -> None:
        wire = WireItem(edge)
        self._wires[edge] = wire
        self.addItem(wire)
        self._route(wire)
        src = self._blocks.get(edge.src)
        wire.set_label(_label(src))

    # -- modules (core/modules.py; module_item.py draws them) --------------------------------

    def _on_module_event(self, event: GraphEvent) -> None:
        self._sync_module(event.module_id)  # type: ignore[arg-type]
        self._geometry_changed()

    def _on_definition_changed(self, event: GraphEvent) -> None:
        if "name" in event.changes:
            for module in self.document.graph.instances_of(event.definition_id or ""):
                self._sync_module(module.id)

    def _sync_module(self, module_id: str) -> None:
        """Bring a module's item in line with the model: created, changed or gone; its blocks
        hidden while it is collapsed, their wires routed to the card."""
        graph = self.document.graph
        item = self._modules.get(module_id)
        try:
            module = graph.module(module_id)
        except GraphError:
            module = None
        before = item.members if item is not None else frozenset()
        if module is None:
            if item is not None:
                del self._modules[module_id]
                self.removeItem(item)
            members: frozenset[str] = frozenset()
        else:
            if item is None:
                item = self._modules[module_id] = ModuleItem(module_id)
                item.set_label_room(self._far_labels)
                self.addItem(item)
            members = frozenset(b for b in module.members.values() if b in self._blocks)
            item.set_module(module.name, graph.definition(module.definition).name,
                            module.collapsed, members)
        collapsed = module is not None and module.collapsed
        for block_id in before | members:
            block = self._blocks.get(block_id)
            hide = collapsed and block_id in members
            if hide:
                self._hidden[block_id] = module_id
            elif self._hidden.get(block_id) == module_id:
                del self._hidden[block_id]
            if block is not None and block.isVisible() == hide:
                block.setVisible(not hide)
        if module is not None:
            self._place_module(module_id)
            if collapsed:
                self._summarise(item)  # type: ignore[arg-type]
        for block_id in before | members:
            self.route_wires_of(block_id)

    def _place_module(self, module_id: str) -> None:
        """A card centred on its blocks (where the layout puts it: module_layout.module_box),
        or a frame around them."""
        item = self._modules.get(module_id)
        blocks = [self._blocks[b] for b in item.members if b in self._blocks] if item else []
        if item is None or not blocks:
            return
        if item.is_collapsed():
            graph = self.document.graph
            left, top, right, _bottom = module_box(graph, graph.module(module_id))
            item.place_card((left + right) / 2, top)
            return
        rect = QRectF()
        for block in blocks:
            rect = rect.united(block.mapRectToScene(block.body_rect()))
        item.place_frame(rect)

    def _summarise(self, item: ModuleItem) -> None:
        try:
            summary = module_summary(self.document.graph, self.document.analysis, item.module_id)
        except GraphError:
            summary = None
        item.set_summary(summary)

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
        for module in self._modules.values():
            if module.is_collapsed():
                self._summarise(module)

    # -- wires ------------------------------------------------------------------------------

    def block_item_moved(self, block_id: str) -> None:
        """A block item moved (model event or a drag in progress): its wires follow. The
        diagram's bounds only grow here; the command that ends a drag recomputes them."""
        item = self._blocks.get(block_id)
        if item is None:
            return
        self.route_wires_of(block_id)
        module_id = self._module_ids_of(block_id)
        if module_id is not None:
            self._place_module(module_id)  # an expanded module's frame follows a drag
        if self._diagram is not None:
            grown = self._diagram.united(item.mapRectToScene(item.outline_rect()))
            if grown != self._diagram:
                self._diagram = grown
                self._geometry_changed(exact=False)
        self.layout_changed.emit()

    def module_item_moved(self, module_id: str) -> None:
        """A collapsed card moved (placed, or dragged): the wires to and from it follow."""
        item = self._modules.get(module_id)
        if item is None:
            return
        for block_id in item.members:
            self.route_wires_of(block_id)
        if self._diagram is not None:
            self._diagram = self._diagram.united(item.mapRectToScene(item.outline_rect()))
        self.layout_changed.emit()

    def _module_ids_of(self, block_id: str) -> str | None:
        module = self.document.graph.module_of(block_id) if self._modules else None
        return module.id if module is not None and module.id in self._modules else None

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
        src_card, dst_card = self.hiding_module(edge.src), self.hiding_module(edge.dst)
        inside = src_card is not None and src_card is dst_card
        if wire.isVisible() == inside:
            wire.setVisible(not inside)
        if inside:
            return
        inputs = graph.input_edges(edge.dst)
        rank = inputs.index(edge) if edge in inputs else 0
        single_out = len(graph.output_edges(edge.src)) == 1
        single_in = len(inputs) == 1
        mode = "mid" if single_in and single_out else "src" if single_out else (
            "dst" if single_in else "mid")
        start = (src_card or src).output_anchor()
        end = dst_card.input_anchor() if dst_card is not None else \
            dst.input_anchor(rank, len(inputs))
        wire.set_route(start, end, mode)

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
            for item in [*self._blocks.values(), *self._modules.values()]:
                item.set_label_room(far)

    def set_items_cached(self, cached: bool) -> None:
        mode = QGraphicsItem.DeviceCoordinateCache if cached else QGraphicsItem.NoCache
        for item in self._blocks.values():
            item.setCacheMode(mode)
        for module in self._modules.values():
            if module.is_collapsed():
                module.setCacheMode(mode)


def _label(item: BlockItem | None) -> str:
    """The tensor a wire carries: its source's output shape, once known."""
    if item is None or item.shape_text() in ("", "?"):
        return ""
    return item.shape_text()
