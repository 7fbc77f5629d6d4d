"""The open project as the window sees it: the graph, its undo stack and its analysis.

The graph is the one source of truth. Views listen to `graph_event` (every change of the graph,
whoever made it: an edit, an undo, a redo) and to `analysis_changed`; they change the graph only
through `edit()`, which records the change as one undoable command.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.graph import Graph, GraphEvent
from cnnstudio.core.history import Edit, record
from cnnstudio.core.params import ParamError
from cnnstudio.core.project import Project, name_from_file
from cnnstudio.core.settings import GROUPS

T = TypeVar("T")


class GraphCommand(QUndoCommand):
    """One recorded edit. redo/undo replay or invert its graph events: the model only."""

    def __init__(self, document: Document, text: str, edit: Edit, merge_key: str | None):
        super().__init__(text)
        self.document = document
        self.edit = edit
        self.merge_key = merge_key
        self._done = True  # the action already ran once when the edit was recorded

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.edit.redo(self.document.graph)

    def undo(self) -> None:
        self.edit.undo(self.document.graph)

    def id(self) -> int:
        return 1 if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt's name)
        if not isinstance(other, GraphCommand) or other.merge_key != self.merge_key:
            return False
        self.edit.extend(other.edit)
        return True


class SettingsCommand(QUndoCommand):
    """A change of the project's dataset or training settings; edits of one setting merge."""

    def __init__(self, document: Document, group: str, before: dict[str, Any],
                 after: dict[str, Any]) -> None:
        names = ", ".join(GROUPS[group].param(n).title.lower() for n in after)
        super().__init__(f"Change {names}")
        self.document, self.group = document, group
        self.before, self.after = before, after

    def redo(self) -> None:
        self.document._apply_settings(self.group, self.after)

    def undo(self) -> None:
        self.document._apply_settings(self.group, self.before)

    def id(self) -> int:
        return 2

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt's name)
        if (not isinstance(other, SettingsCommand) or other.group != self.group
                or set(other.after) != set(self.after) or len(self.after) != 1):
            return False
        self.after = dict(other.after)
        self.setObsolete(self.after == self.before)  # back where it started: no step left
        return True


class Document(QObject):
    graph_event = Signal(object)  # GraphEvent
    analysis_changed = Signal()
    project_replaced = Signal()  # a new or opened project: views rebuild from scratch
    dirty_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None
    settings_changed = Signal(str, object)  # "dataset" | "training", {name: new value}

    def __init__(self, project: Project | None = None, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_stack.indexChanged.connect(self._on_index_changed)
        self._project = project or Project.new(Graph())
        self._path = path
        self._unsubscribe = self._project.graph.subscribe(self.graph_event.emit)
        self._analysis: Analysis | None = None
        self._analysed_revision = -1

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    def _on_index_changed(self, _index: int) -> None:
        self.analysis_changed.emit()

    # -- state -----------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        return self._project

    @property
    def graph(self) -> Graph:
        return self._project.graph

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        return self._path.name if self._path else self._project.name

    @property
    def analysis(self) -> Analysis:
        """The analysis of the graph as it is now (recomputed only after a change)."""
        if self._analysis is None or self._analysed_revision != self.graph.revision:
            self._analysis = analyze(self.graph)
            self._analysed_revision = self.graph.revision
        return self._analysis

    # -- changing it -----------------------------------------------------------------------

    def edit(self, text: str, action: Callable[[Graph], T], merge_key: str | None = None) -> T:
        """Run action(graph) as one undoable command; a GraphError leaves nothing behind."""
        change, result = record(self.graph, action)
        if not change.empty:
            self.undo_stack.push(GraphCommand(self, text, change, merge_key))
        return result

    def update_settings(self, group: str, changes: dict[str, Any]) -> bool:
        """Change dataset or training settings as one undoable command (False: no change).

        Every value is checked with the group's declaration first; a bad name or value raises
        ParamError naming the setting, and nothing changes.
        """
        declared = GROUPS.get(group)
        if declared is None:
            raise ParamError(f"unknown settings group {group!r}; use {' or '.join(GROUPS)}")
        current = self._settings(group)
        after: dict[str, Any] = {}
        for name, value in changes.items():
            if not declared.has_param(name):
                raise ParamError(f"unknown {declared.title} setting {name!r}")
            try:
                normal = declared.coerce(name, value)
            except ParamError as err:
                raise ParamError(f"{declared.param(name).title}: {err}") from None
            if current.get(name, declared.param(name).default) != normal:
                after[name] = normal
        if not after:
            return False
        before = {n: current.get(n, declared.param(n).default) for n in after}
        self.undo_stack.push(SettingsCommand(self, group, before, after))  # redo() applies it
        return True

    def _settings(self, group: str) -> dict[str, Any]:
        return self._project.dataset if group == "dataset" else self._project.training

    def _apply_settings(self, group: str, values: dict[str, Any]) -> None:
        self._settings(group).update(values)
        self.settings_changed.emit(group, dict(values))

    def set_project(self, project: Project, path: Path | None = None, dirty: bool = False) -> None:
        """Replace the whole project (New, Open, Recover): the undo history starts afresh. A
        network nobody named takes the name of its file (core.project.name_from_file)."""
        self._unsubscribe()
        if path is not None:
            project.name = name_from_file(project.name, path)
        self._project = project
        self._unsubscribe = project.graph.subscribe(self.graph_event.emit)
        self._analysis = None
        self.undo_stack.clear()
        if dirty:
            self.undo_stack.resetClean()
            # an empty stack is always clean: record dirtiness with a marker command
            self.undo_stack.push(QUndoCommand("Recovered changes"))
        self.set_path(path)
        self.project_replaced.emit()
        self.analysis_changed.emit()
        self.dirty_changed.emit(self.is_dirty)

    def set_path(self, path: Path | None) -> None:
        self._path = Path(path) if path is not None else None
        self.path_changed.emit(self._path)

    def mark_saved(self, path: Path) -> None:
        """Saved to `path` (as `file_project(path)` wrote it)."""
        self._project.name = name_from_file(self._project.name, path)
        self.set_path(path)
        self.undo_stack.setClean()

    def file_project(self, path: Path) -> Project:
        """The project as a file at `path` holds it: named after the file when nobody named
        it (Save As course.cnnproj: runs and exports say 'course', not 'Untitled')."""
        return dataclasses.replace(self._project,
                                   name=name_from_file(self._project.name, path))
