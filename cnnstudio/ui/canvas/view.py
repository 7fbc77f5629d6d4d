"""CanvasView: the network editor widget (a QGraphicsView owning its CanvasScene).

Every change of the network goes through `document.edit(...)` (one undoable command); the
scene then follows the model's events. The view keeps only view state: zoom, scroll,
selection, the gesture in progress.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QLineEdit, QMenu, QWidget

from cnnstudio.core import edits, modules, registry, repairs
from cnnstudio.core.analysis import Diagnostic
from cnnstudio.core.graph import GraphError
from cnnstudio.core.layout import DOWN, RIGHT
from cnnstudio.core.module_layout import lay_out
from cnnstudio.ui.canvas import clipboard
from cnnstudio.ui.canvas.find import FindBar
from cnnstudio.ui.canvas.interactions import Interaction, begin
from cnnstudio.ui.canvas.items import BadgeItem, BlockItem, WireItem
from cnnstudio.ui.canvas.module_actions import MODULE_MIME, ModuleCommands
from cnnstudio.ui.canvas.module_item import CollapseButton
from cnnstudio.ui.canvas.overlays import (
    Minimap,
    NameEditor,
    draw_grid,
    export_diagram,
    visible_scene_rect,
)
from cnnstudio.ui.canvas.scene import CanvasScene
from cnnstudio.ui.canvas.zoom import ZOOM_STEP, Zoom
from cnnstudio.ui.document import Document
from cnnstudio.ui.fixes import FixPopup, apply_repair

BLOCK_MIME = "application/x-cnnstudio-block"
REVEAL_MARGIN = 30  # screen pixels kept around a block scrolled into view


class CanvasView(QGraphicsView):
    selection_changed = Signal(list)  # selected block ids
    status_message = Signal(str)  # for the status bar: why a wire was refused, ...
    block_activated = Signal(str)  # double-click on a block: focus the inspector

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.canvas = CanvasScene(document, self)
        self.setScene(self.canvas)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.AnchorViewCenter)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setOptimizationFlag(QGraphicsView.DontAdjustForAntialiasing)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.space_held = False
        self._interaction: Interaction | None = None
        self._editor: QLineEdit | None = None
        self._paste_key: str | None = None
        self._paste_count = 0
        self._first_show = True
        self.minimap = Minimap(self, self.canvas)
        self.zoomer = Zoom(self, self.canvas, self.minimap)
        self.minimap.installEventFilter(self)  # a click there moves the view: see eventFilter
        self.find_bar = FindBar(self, self)
        self._actions: dict[str, QAction] = {}
        self.modules = ModuleCommands(self)
        self._install_actions()
        self.canvas.selectionChanged.connect(self._on_selection)
        self.canvas.layout_changed.connect(self.minimap.schedule_content)
        document.analysis_changed.connect(self.minimap.schedule_content)
        self.horizontalScrollBar().valueChanged.connect(self.minimap.schedule)
        self.verticalScrollBar().valueChanged.connect(self.minimap.schedule)
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.actionTriggered.connect(lambda _action: self.zoomer.touched())
        document.project_replaced.connect(self.initial_view)

    # -- actions ----------------------------------------------------------------------------

    def _install_actions(self) -> None:
        specs: list[tuple[str, str, list[Any], Callable[[], None]]] = [
            ("delete", "Delete", [Qt.Key_Delete, Qt.Key_Backspace], self.delete_selected),
            ("copy", "Copy", [QKeySequence.Copy], self.copy_selected),
            ("cut", "Cut", [QKeySequence.Cut], self.cut_selected),
            ("paste", "Paste", [QKeySequence.Paste], self.paste),
            ("duplicate", "Duplicate", ["Ctrl+D"], self.duplicate_selected),
            ("select_all", "Select all", [QKeySequence.SelectAll], self.select_all),
            ("rename", "Rename…", ["F2"], self.rename_selected),
            ("collapse", "Collapse or expand", ["H"], self.toggle_collapse_selected),
            ("make_module", "Make Module…", ["Ctrl+G"], self.modules.make_from_selection),
            ("dissolve_module", "Dissolve Module", ["Ctrl+Shift+G"],
             self.modules.dissolve_selected),
            ("zoom_in", "Zoom in", [QKeySequence.ZoomIn, "Ctrl+="], self.zoom_in),
            ("zoom_out", "Zoom out", [QKeySequence.ZoomOut, "Ctrl+-"], self.zoom_out),
            ("reset_zoom", "Actual size", ["Ctrl+0"], self.reset_zoom),
            ("fit_all", "Fit the network", ["F"], self.fit_all),
            ("auto_layout", "Tidy up (automatic layout)", ["Ctrl+Shift+L"], self.auto_layout),
            ("auto_layout_right", "Tidy up left to right", ["Ctrl+Alt+Shift+L"],
             self.auto_layout_right),
            ("find_next", "Find next", ["F3"], lambda: self.find_bar.step(1)),
            ("find_previous", "Find previous", ["Shift+F3"], lambda: self.find_bar.step(-1)),
        ]
        for name, text, keys, slot in specs:
            action = QAction(text, self)
            shortcuts: list[QKeySequence] = []
            for key in keys:
                for sequence in (QKeySequence.keyBindings(key)
                                 if isinstance(key, QKeySequence.StandardKey)
                                 else [QKeySequence(key)]):
                    if sequence.toString() not in [s.toString() for s in shortcuts]:
                        shortcuts.append(sequence)
            action.setShortcuts(shortcuts)
            action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            self._actions[name] = action

    def canvas_actions(self) -> dict[str, QAction]:
        """The canvas's actions by name, for menus (reuse them: a second action with the same
        shortcut would make it ambiguous while the canvas has focus)."""
        return dict(self._actions)

    # -- reading ----------------------------------------------------------------------------

    def item_for(self, block_id: str) -> BlockItem | None:
        return self.canvas.item_for(block_id)

    def wire_items(self) -> list[WireItem]:
        return self.canvas.wire_items()

    def selected_ids(self) -> list[str]:
        return self.canvas.selected_ids()

    def visible_scene_rect(self) -> QRectF:
        return visible_scene_rect(self)

    def zoom(self) -> float:
        """The zoom factor, without Fit's spread across (zoom.py)."""
        return self.zoomer.level()

    def scales(self) -> tuple[float, float]:
        """Screen pixels per scene unit, across and down."""
        return self.zoomer.scales()

    # -- selection ------------------------------------------------------------------------

    def _on_selection(self) -> None:
        self.selection_changed.emit(self.selected_ids())

    def select_blocks(self, ids: list[str], scroll: bool = True) -> None:
        """Select these blocks (only these) and, with `scroll`, centre them when out of view."""
        items = [self.canvas.hiding_module(i) or self.canvas.item_for(i) for i in ids]
        chosen: list[Any] = list(dict.fromkeys(i for i in items if i is not None))
        self.canvas.blockSignals(True)
        self.canvas.clearSelection()
        for item in chosen:
            item.setSelected(True)
        self.canvas.blockSignals(False)
        self._on_selection()
        if chosen and scroll:
            rect = QRectF()
            for item in chosen:
                rect = rect.united(item.mapRectToScene(item.outline_rect()))
            if not self.visible_scene_rect().contains(rect):
                self.zoomer.touched()
                self.centerOn(rect.center())

    def select_module(self, module_id: str) -> None:
        """Select a module: its card while collapsed, else its blocks."""
        module = self.document.graph.module(module_id)
        self.select_blocks(list(module.members.values()))

    def reveal(self, block_id: str) -> None:
        """Scroll as little as it takes to show the whole block (a dropped one)."""
        item = self.canvas.item_for(block_id)
        if item is None:
            return
        rect = item.mapRectToScene(item.outline_rect())
        if not self.visible_scene_rect().contains(rect):
            self.zoomer.touched()
            self.canvas.update_scene_rect()  # room to scroll to a block beyond the old edge
            self.ensureVisible(rect, REVEAL_MARGIN, REVEAL_MARGIN)

    def select_all(self) -> None:
        self.select_blocks([b.id for b in self.document.graph.blocks])

    def show_match(self, block_id: str) -> None:
        """The find bar's match (find.py, Ctrl+F): selected and centred; a block inside a
        collapsed module expands it (one undo step for a run of finds)."""
        card = self.canvas.hiding_module(block_id)
        if card is not None:
            self._run(f"Expand module {card.name()} to show a found block",
                      lambda g: modules.set_module_collapsed(g, card.module_id, False),
                      merge_key="find.expand")
        self.select_blocks([block_id], scroll=False)
        item = self.canvas.item_for(block_id)
        if item is not None:
            self.zoomer.touched()
            self.centerOn(item.mapRectToScene(item.outline_rect()).center())

    # -- zoom (zoom.py) -------------------------------------------------------------------

    def zoom_in(self) -> None:
        self.zoomer.scale_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoomer.scale_by(1 / ZOOM_STEP)

    def reset_zoom(self) -> None:
        self.zoomer.reset()

    def fit_all(self) -> None:
        """The whole network in view (never magnified beyond 100 %, spread when tall)."""
        self.zoomer.fit_all()

    def initial_view(self) -> None:
        """A project's first view: fitted when it fits readably, else its top (the Input)."""
        self.zoomer.initial_view()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        self.zoomer.wheel(event)
        event.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.minimap and event.type() == QEvent.MouseButtonPress:
            self.zoomer.touched()
        return super().eventFilter(watched, event)

    # -- mouse gestures (see interactions.py) -----------------------------------------------

    def forward_press(self, event: QMouseEvent) -> None:
        super().mousePressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._close_editor(commit=True)
        self.zoomer.touched()
        if self._interaction is not None:
            return
        badge = self.itemAt(event.position().toPoint())
        if event.button() == Qt.LeftButton and not self.space_held:
            if isinstance(badge, BadgeItem) and isinstance(badge.parentItem(), BlockItem):
                self.show_fix_popup(badge.parentItem().block_id)  # type: ignore[union-attr]
                event.accept()
                return
            if isinstance(badge, CollapseButton):
                self.modules.collapse(badge.module_id())
                event.accept()
                return
        self._interaction = begin(self, event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._interaction is not None:
            self._interaction.move(event)
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        interaction, self._interaction = self._interaction, None
        if interaction is None:
            super().mouseReleaseEvent(event)
            return
        interaction.release(event)
        if interaction.forward_release:
            super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = self.mapToScene(event.position().toPoint())
        item = self.canvas.block_at(pos)
        card = self.canvas.module_at(pos) if item is None else None
        if event.button() == Qt.LeftButton and (item is not None or card is not None):
            if item is not None:
                self.block_activated.emit(item.block_id)
            elif card is not None:  # a card expands in place, a frame's title collapses
                self.modules.set_collapsed(card.module_id, not card.is_collapsed())
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        pos = self.mapToScene(event.pos())
        item = self.canvas.block_at(pos)
        card = self.canvas.module_at(pos) if item is None else None
        if item is not None and not item.isSelected():
            self.select_blocks([item.block_id])
        owner = self.document.graph.module_of(item.block_id) if item is not None else None
        module_id = card.module_id if card is not None else owner.id if owner else None
        if card is not None:
            if card.is_collapsed() and not card.isSelected():
                self.select_module(card.module_id)
            names: tuple[str, ...] = ("copy", "delete")
        else:
            names = ("rename", "duplicate", "collapse", "copy", "cut", "delete") if item else (
                "paste", "select_all", "auto_layout", "fit_all")
        menu = QMenu(self)
        if item is not None:
            for diagnostic in self.document.analysis.diagnostics_for(item.block_id):
                if repairs.can_repair(diagnostic):
                    fix = menu.addAction(f"Fix: {diagnostic.fix}")
                    fix.triggered.connect(lambda _c=False, d=diagnostic: self.apply_repair(d))
            if menu.actions():
                menu.addSeparator()
        for name in names:
            menu.addAction(self._actions[name])
        self.modules.add_menu_entries(menu, module_id, self._actions["make_module"])
        menu.exec(event.globalPos())

    def restore_cursor(self) -> None:
        if self.space_held:
            self.viewport().setCursor(Qt.OpenHandCursor)
        else:
            self.viewport().unsetCursor()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.space_held = True
            self.restore_cursor()
            return
        if event.key() == Qt.Key_Escape:
            if self._interaction is not None:
                self._interaction.cancel()
                self._interaction = None
            else:
                self.canvas.clearSelection()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.space_held = False
            self.restore_cursor()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        self.space_held = False
        super().focusOutEvent(event)

    # -- palette drops ----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasFormat(BLOCK_MIME) or event.mimeData().hasFormat(MODULE_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        if event.mimeData().hasFormat(MODULE_MIME):
            event.acceptProposedAction()
            return
        if not event.mimeData().hasFormat(BLOCK_MIME):
            event.ignore()
            return
        spec = _block_spec(event.mimeData().data(BLOCK_MIME).data())
        pos = self.mapToScene(event.position().toPoint())
        wire = self.canvas.wire_at(pos)
        insertable = spec is not None and edits.can_insert(spec[0])
        self.canvas.highlight_wire(wire if insertable else None)
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self.canvas.highlight_wire(None)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.canvas.highlight_wire(None)
        if event.mimeData().hasFormat(MODULE_MIME):
            event.acceptProposedAction()
            definition_id = bytes(event.mimeData().data(MODULE_MIME).data()).decode("utf-8")
            self.modules.insert(definition_id, self.mapToScene(event.position().toPoint()))
            self.setFocus()
            return
        if not event.mimeData().hasFormat(BLOCK_MIME):
            event.ignore()
            return
        spec = _block_spec(event.mimeData().data(BLOCK_MIME).data())
        if spec is None:
            self.status_message.emit("Cannot drop this: it is not a known block")
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_block_at(spec[0], spec[1], self.mapToScene(event.position().toPoint()))
        self.setFocus()

    def add_block_at(self, type_id: str, params: Mapping[str, Any] | None,
                     scene_pos: QPointF) -> str | None:
        """Add a block where a palette drop at scene_pos puts it: into the wire under the
        point, stacked under the end of a chain just above, or centred on the point (10 px
        grid). One undoable command; the new block is selected and scrolled into view, and its
        id returned."""
        if not registry.is_known(type_id):
            self.status_message.emit(f"Unknown block type {type_id!r}")
            return None
        display = registry.get(type_id).display_name
        wire = self.canvas.wire_at(scene_pos) if edits.can_insert(type_id) else None
        above = None if wire is not None else self.canvas.chain_end_above(scene_pos)
        graph = self.document.graph
        if above is not None and registry.get(type_id).max_inputs == 0:
            above = None
        position = (edits.snap(scene_pos.x()), edits.snap(scene_pos.y() - edits.BLOCK_H / 2))
        try:
            if wire is not None:
                edge = wire.edge
                block = self.document.edit(
                    f"Insert {display}",
                    lambda g: edits.insert_on_edge(g, edge, type_id, params, position))
            elif above is not None:
                spot = edits.place_below(graph.block(above))
                block = self.document.edit(
                    f"Add {display}", lambda g: edits.add_block(g, type_id, params, spot, above))
            else:
                block = self.document.edit(
                    f"Add {display}", lambda g: edits.add_block(g, type_id, params, position))
        except GraphError as err:
            self.status_message.emit(f"Cannot add {display}: {err}")
            return None
        self.select_blocks([block.id], scroll=False)
        self.reveal(block.id)
        return block.id

    # -- editing commands -----------------------------------------------------------------

    def _run(self, text: str, action: Callable[[Any], Any], merge_key: str | None = None) -> Any:
        try:
            return self.document.edit(text, action, merge_key)
        except GraphError as err:
            self.status_message.emit(f"{text}: {err}")
            return None

    def delete_selected(self) -> None:
        ids, wires = self.selected_ids(), self.canvas.selected_edges()
        if not ids and not wires:
            return
        count = len(ids) + len(wires)
        text = "Delete" if count > 1 else ("Delete block" if ids else "Delete wire")
        self._run(text, lambda g: edits.delete(g, ids, wires))

    def copy_selected(self) -> None:
        data = clipboard.serialise(self.document.graph, self.selected_ids())
        if data is not None:
            clipboard.put(data)
            self.status_message.emit(f"Copied {len(data['blocks'])} block(s)")

    def cut_selected(self) -> None:
        ids = self.selected_ids()
        data = clipboard.serialise(self.document.graph, ids)
        if data is None:
            return
        clipboard.put(data)
        self._run("Cut", lambda g: edits.delete(g, ids))

    def paste(self) -> None:
        data = clipboard.read()
        if data is None:
            self.status_message.emit("The clipboard holds no blocks")
            return
        key = json.dumps(data, sort_keys=True)
        self._paste_count = self._paste_count + 1 if key == self._paste_key else 1
        self._paste_key = key
        self._paste(data, "Paste", clipboard.PASTE_OFFSET * self._paste_count)

    def duplicate_selected(self) -> None:
        data = clipboard.serialise(self.document.graph, self.selected_ids())
        if data is not None:
            self._paste(data, "Duplicate", clipboard.PASTE_OFFSET)

    def _paste(self, data: dict[str, Any], text: str, offset: float) -> None:
        ids = self._run(text, lambda g: clipboard.paste(g, data, offset))
        if ids:
            self.select_blocks(ids)

    def toggle_collapse_selected(self) -> None:
        ids = self.selected_ids()
        if not ids or self.modules.toggle_selected():
            return
        graph = self.document.graph
        collapse = not all(graph.block(i).collapsed for i in ids)
        text = "Collapse" if collapse else "Expand"

        def action(g: Any) -> None:
            for block_id in ids:
                if g.block(block_id).collapsed != collapse:
                    g.set_collapsed(block_id, collapse)

        self._run(text, action)

    def auto_layout(self) -> None:
        """Lay the network out top to bottom: one undoable command."""
        self._lay_out(DOWN, "Automatic layout")

    def auto_layout_right(self) -> None:
        self._lay_out(RIGHT, "Automatic layout left to right")

    def _lay_out(self, direction: str, text: str) -> None:
        """Each module as one node, its blocks keeping their places (core/module_layout.py)."""
        self._run(text, lambda g: lay_out(g, direction))
        self.fit_all()

    def apply_repair(self, diagnostic: Diagnostic) -> None:
        """Carry out a diagnostic's one-click fix as one undoable command; the status bar says
        what it did."""
        self.status_message.emit(apply_repair(self.document, diagnostic))

    def show_fix_popup(self, block_id: str) -> FixPopup | None:
        """The block's problems at its badge, each with a Fix button where there is a repair."""
        item = self.canvas.item_for(block_id)
        if item is None or not self.document.analysis.diagnostics_for(block_id):
            return None
        if not item.isSelected():
            self.select_blocks([block_id])
        popup = FixPopup(self.document, block_id, self)
        popup.fix_chosen.connect(self.apply_repair)
        corner = item.badge.mapToScene(item.badge.boundingRect().bottomLeft())
        popup.popup_at(self.viewport().mapToGlobal(self.mapFromScene(corner)))
        return popup

    # -- rename -----------------------------------------------------------------------------

    def rename_selected(self) -> None:
        ids = self.selected_ids()
        item = self.canvas.item_for(ids[0]) if ids else None
        if item is None:
            return
        self._close_editor(commit=False)
        rect = self.mapFromScene(item.mapRectToScene(QRectF(
            item.body_rect().left() + 10, 2, item.body_rect().width() - 20, 22))).boundingRect()
        editor = NameEditor(self.viewport(), item.name())
        editor.setGeometry(rect.adjusted(0, 0, 0, 4) if rect.height() > 18
                           else QRect(rect.topLeft(), QSize(max(rect.width(), 160), 24)))
        editor.finished.connect(lambda commit, bid=item.block_id: self._finish_rename(bid, commit))
        self._editor = editor
        editor.show()
        editor.setFocus()
        editor.selectAll()

    def rename_editor(self) -> QLineEdit | None:
        return self._editor

    def _finish_rename(self, block_id: str, commit: bool) -> None:
        editor, self._editor = self._editor, None
        if editor is None:
            return
        name = editor.text().strip()
        editor.deleteLater()
        self.setFocus()
        graph = self.document.graph
        if commit and block_id in graph and name and name != graph.block(block_id).name:
            self._run(f"Rename to {name}", lambda g: g.rename(block_id, name))

    def _close_editor(self, commit: bool) -> None:
        if self._editor is not None:
            self._editor.finish(commit)

    # -- theme, background, export --------------------------------------------------------

    def refresh_theme(self) -> None:
        """Repaint with the colours of theme.current() (after a light/dark switch)."""
        self.canvas.refresh_theme()
        self.viewport().update()
        self.minimap.invalidate()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        draw_grid(painter, rect, self.zoom())

    def export_image(self, path: str) -> None:
        """The diagram alone (no grid, no selection), tight with a margin: .png at twice the
        size, or .svg (vector) through QtSvg."""
        export_diagram(self.canvas, Path(path))

    # -- Qt housekeeping ------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._first_show:
            self._first_show = False
            self.initial_view()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.zoomer.resized()
        if self.find_bar.isVisible():
            self.find_bar.place()


def _block_spec(raw: bytes) -> tuple[str, dict[str, Any]] | None:
    """(type id, preset params) from the palette's JSON, or None when it is not a block."""
    try:
        data = json.loads(bytes(raw).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not registry.is_known(str(data.get("type"))):
        return None
    params = data.get("params") or {}
    return str(data["type"]), params if isinstance(params, dict) else {}
