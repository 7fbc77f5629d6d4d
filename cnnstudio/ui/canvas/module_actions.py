"""What a user does with modules on the canvas: make one from the selection, expand and
collapse, rename, make an instance unique, dissolve, and drop one from the palette.

Each is one `document.edit(...)` (one undo step) of a core/modules.py function; the scene then
follows the model's events. Expanding a module that would cover its neighbours lays the
network out again in the same step (core/module_layout.py). The name of a new module is asked
through `ask_name`, which tests replace (like the window's other dialogs).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, cast

from PySide6.QtCore import QPointF, SignalInstance
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMenu, QWidget

from cnnstudio.core import edits, module_layout, modules
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.module_types import MAX_NAME
from cnnstudio.ui.canvas.scene import CanvasScene
from cnnstudio.ui.document import Document

MODULE_MIME = "application/x-cnnstudio-module"  # the palette's "My modules": a definition id

NameAsker = Callable[[QWidget, str, str, str], "str | None"]


def ask_name_dialog(parent: QWidget, title: str, label: str, text: str) -> str | None:
    """A name from the user (None: cancelled)."""
    name, ok = QInputDialog.getText(parent, title, label, QLineEdit.Normal, text)
    return name if ok else None


class ModuleHost(Protocol):
    """What the commands use of the canvas view (declared here: the view imports them)."""

    canvas: CanvasScene
    document: Document
    status_message: SignalInstance

    def selected_ids(self) -> list[str]: ...

    def select_blocks(self, ids: list[str], scroll: bool = True) -> None: ...

    def select_module(self, module_id: str) -> None: ...


class ModuleCommands:
    """The canvas's module commands, run against the view `host`."""

    def __init__(self, host: ModuleHost) -> None:
        self.host = host
        self.ask_name: NameAsker = ask_name_dialog

    @property
    def graph(self) -> Graph:
        return self.host.document.graph

    def _parent(self) -> QWidget:
        """The view, as the parent of a dialog."""
        return cast(QWidget, self.host)

    def _run(self, text: str, action: Callable[[Graph], Any]) -> Any:
        try:
            return self.host.document.edit(text, action)
        except GraphError as err:
            self.host.status_message.emit(f"{text}: {err}")
            return None

    # -- which module ----------------------------------------------------------------------

    def selected_module(self) -> str | None:
        """The module the selection stands for: a selected card, or the one module every
        selected block is in."""
        cards = self.host.canvas.selected_modules()
        if cards:
            return cards[0]
        owners = {m.id if m else None for m in map(self.graph.module_of, self.host.selected_ids())}
        return next(iter(owners)) if len(owners) == 1 else None

    # -- commands --------------------------------------------------------------------------

    def make_from_selection(self) -> str | None:
        """Make Module… (Ctrl+G): the selected blocks become a module named by the user, or the
        status bar says why they cannot. Returns the new module's id."""
        ids = self.host.selected_ids()
        problem = modules.selection_problem(self.graph, ids)
        if problem:
            self.host.status_message.emit(f"Cannot make a module: {problem}")
            return None
        default = _free_name(self.graph, "module")
        name = self.ask_name(self._parent(), "Make Module", "Name of the new module:", default)
        if name is None:
            return None
        name = name.strip()
        if not 0 < len(name) <= MAX_NAME:
            self.host.status_message.emit(
                f"Cannot make a module: a module name needs 1 to {MAX_NAME} characters")
            return None
        module = self._run(f"Make module {name}", lambda g: modules.make_module(g, ids, name))
        if module is None:
            return None
        self.host.status_message.emit(
            f"Made module {module.name!r} of {len(ids)} blocks; double-click a block inside "
            "to edit it, or collapse it into one block")
        return module.id

    def set_collapsed(self, module_id: str, collapsed: bool) -> None:
        """Collapse or expand a module, one undo step. Expanding one whose frame would cover
        its neighbours lays the network out again, in the same step, to make room."""
        module = self.graph.module(module_id)
        if module.collapsed == collapsed:
            return
        verb = "Collapse" if collapsed else "Expand"

        def action(g: Graph) -> bool:
            direction = module_layout.layout_direction(g)
            modules.set_module_collapsed(g, module_id, collapsed)
            crowded = not collapsed and module_layout.frame_overlaps(g, module_id)
            if crowded:
                module_layout.lay_out(g, direction)
            return crowded

        if self._run(f"{verb} module {module.name}", action):
            self.host.status_message.emit(
                f"Expanded module {module.name!r}; the blocks around it moved to make room "
                "(Ctrl+Z undoes both)")
        if collapsed:
            self.host.select_module(module_id)

    def expand(self, module_id: str) -> None:
        self.set_collapsed(module_id, False)

    def collapse(self, module_id: str) -> None:
        self.set_collapsed(module_id, True)

    def rename(self, module_id: str) -> None:
        module = self.graph.module(module_id)
        name = self.ask_name(self._parent(), "Rename Module", "New name of the module:",
                             module.name)
        if name is None or name.strip() == module.name:
            return
        self._run(f"Rename module {module.name}",
                  lambda g: modules.rename_module(g, module_id, name))

    def detach(self, module_id: str) -> None:
        """Make this instance unique: its own definition, so edits stay with it."""
        module = self.graph.module(module_id)
        definition = self._run(f"Make module {module.name} unique",
                               lambda g: modules.detach(g, module_id))
        if definition is not None:
            self.host.status_message.emit(
                f"Module {module.name!r} now has a definition of its own ({definition.name!r}); "
                "its edits no longer change the other instances")

    def dissolve(self, module_id: str) -> None:
        module = self.graph.module(module_id)
        members = list(module.members.values())
        if self._run(f"Dissolve module {module.name}",
                     lambda g: modules.dissolve(g, module_id)) is not None:
            self.host.select_blocks(members, scroll=False)
            self.host.status_message.emit(
                f"Dissolved module {module.name!r}: its blocks stay; its definition stays in "
                "the palette's My modules")

    def dissolve_selected(self) -> None:
        module_id = self.selected_module()
        if module_id is None:
            self.host.status_message.emit("Select a module (or a block inside one) to dissolve")
            return
        self.dissolve(module_id)

    def toggle_selected(self) -> bool:
        """H on selected module cards expands them (True: there were some)."""
        cards = self.host.canvas.selected_modules()
        for module_id in cards:
            self.expand(module_id)
        return bool(cards)

    def insert(self, definition_id: str, scene_pos: QPointF) -> str | None:
        """A new instance of a definition from the palette, its top centre at the drop point
        (collapsed, wired under the end of a chain just above it). Returns its id."""
        try:
            definition = self.graph.definition(definition_id)
        except GraphError:
            self.host.status_message.emit("Cannot drop this: the module is no longer in the "
                                          "project")
            return None
        above = self.host.canvas.chain_end_above(scene_pos)
        position = (edits.snap(scene_pos.x()), edits.snap(scene_pos.y()))

        def action(g: Graph) -> modules.ModuleInstance:
            spot = edits.place_below(g.block(above)) if above is not None else position
            module = modules.insert_module(g, definition_id, spot, collapsed=True)
            if above is not None:
                modules.connect_input(g, module.id, above)
            return module

        module = self._run(f"Add module {definition.name}", action)
        if module is None:
            return None
        self.host.select_module(module.id)
        return module.id

    # -- menus -----------------------------------------------------------------------------

    def add_menu_entries(self, menu: QMenu, module_id: str | None,
                         make: Any | None = None) -> None:
        """The module entries of a context menu: those of `module_id` (a card, a frame or a
        block inside), else `make` (the Make Module… action) when the selection can be one."""
        if module_id is None:
            if make is not None and len(self.host.selected_ids()) > 1:
                menu.addSeparator()
                menu.addAction(make)
            return
        module = self.graph.module(module_id)
        menu.addSeparator()
        if module.collapsed:
            menu.addAction("Expand module").triggered.connect(lambda: self.expand(module_id))
        else:
            menu.addAction(f"Collapse module '{module.name}'").triggered.connect(
                lambda: self.collapse(module_id))
        menu.addAction("Rename module…").triggered.connect(lambda: self.rename(module_id))
        unique = menu.addAction("Make this instance unique")
        shared = len(self.graph.instances_of(module.definition)) > 1
        unique.setEnabled(shared)
        unique.setToolTip("Give this module a definition of its own" if shared else
                          "It is the only instance of its definition already")
        unique.triggered.connect(lambda: self.detach(module_id))
        menu.addAction("Dissolve module").triggered.connect(lambda: self.dissolve(module_id))


def _free_name(graph: Graph, base: str) -> str:
    taken = {m.name for m in graph.modules}
    n = 1
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"
