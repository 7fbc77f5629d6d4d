"""Undoable edits without Qt: record the graph events an action causes, then replay or invert.

Every edit of the window (add, delete, wire, paste, insert on a wire, a parameter, a one-click
repair, automatic layout, every module operation of `modules.py`) is a function of the graph;
`record` runs it once and keeps its events. Undo inverts them in reverse order, redo replays
them. The window's QUndoCommand only
wraps an Edit, so undo and redo change the model and nothing else; the scene follows the
graph's events like after any other change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from cnnstudio.core.graph import EventKind, Graph, GraphEvent, event_handlers

T = TypeVar("T")


@dataclass
class Edit:
    events: list[GraphEvent] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.events

    def redo(self, graph: Graph) -> None:
        for event in self.events:
            _apply(graph, event, forward=True)

    def undo(self, graph: Graph) -> None:
        for event in reversed(self.events):
            _apply(graph, event, forward=False)

    def extend(self, other: Edit) -> None:
        """Fold a later edit into this one (consecutive changes of one value merge)."""
        self.events.extend(other.events)

    def block_ids(self) -> set[str]:
        return {e.block_id for e in self.events if e.block_id is not None}


def record(graph: Graph, action: Callable[[Graph], T]) -> tuple[Edit, T]:
    """Run action(graph) and return what it changed. All or nothing: if the action raises,
    the changes it made so far are undone and the exception propagates."""
    events: list[GraphEvent] = []
    unsubscribe = graph.subscribe(events.append)
    try:
        result = action(graph)
    except BaseException:
        unsubscribe()
        Edit(events).undo(graph)
        raise
    unsubscribe()
    return Edit(events), result


def _replay_block(graph: Graph, event: GraphEvent, forward: bool) -> None:
    """Added forward or removed backward: put the block back; otherwise take it out."""
    if (event.kind is EventKind.BLOCK_ADDED) == forward:
        assert event.block is not None
        graph.insert(event.block.copy(), event.index)
    else:
        assert event.block_id is not None
        graph.remove_block(event.block_id)


def _replay_edge(graph: Graph, event: GraphEvent, forward: bool) -> None:
    assert event.edge is not None
    if (event.kind is EventKind.EDGE_ADDED) == forward:
        graph.restore_edge(event.edge)
    else:
        graph.disconnect(event.edge)


def _values(event: GraphEvent, forward: bool) -> tuple[str, dict[str, Any]]:
    """The block and the values to set: the new ones forward, the old ones backward."""
    assert event.block_id is not None
    return event.block_id, _fields(event, forward)


def _replay_params(graph: Graph, event: GraphEvent, forward: bool) -> None:
    graph.set_params(*_values(event, forward))


def _replay_rename(graph: Graph, event: GraphEvent, forward: bool) -> None:
    block_id, values = _values(event, forward)
    graph.rename(block_id, values["name"])


def _replay_collapse(graph: Graph, event: GraphEvent, forward: bool) -> None:
    block_id, values = _values(event, forward)
    graph.set_collapsed(block_id, values["collapsed"])


def _replay_move(graph: Graph, event: GraphEvent, forward: bool) -> None:
    block_id, values = _values(event, forward)
    graph.move(block_id, *values["position"])


def _replay_module(graph: Graph, event: GraphEvent, forward: bool) -> None:
    """A module added forward or removed backward: put it back; otherwise take it out."""
    if (event.kind is EventKind.MODULE_ADDED) == forward:
        assert event.module is not None
        graph.add_module(event.module, event.index)
    else:
        assert event.module_id is not None
        graph.remove_module(event.module_id)


def _replay_module_change(graph: Graph, event: GraphEvent, forward: bool) -> None:
    assert event.module_id is not None
    graph.change_module(event.module_id, **_fields(event, forward))


def _replay_definition(graph: Graph, event: GraphEvent, forward: bool) -> None:
    if (event.kind is EventKind.DEFINITION_ADDED) == forward:
        assert event.definition is not None
        graph.add_definition(event.definition, event.index)
    else:
        assert event.definition_id is not None
        graph.remove_definition(event.definition_id)


def _replay_definition_change(graph: Graph, event: GraphEvent, forward: bool) -> None:
    assert event.definition_id is not None
    graph.change_definition(event.definition_id, **_fields(event, forward))


def _fields(event: GraphEvent, forward: bool) -> dict[str, Any]:
    index = 1 if forward else 0
    return {name: pair[index] for name, pair in event.changes.items()}


Replay = Callable[[Graph, GraphEvent, bool], None]

# Checked complete when this module loads: an EventKind without a replay fails every import.
REPLAY: dict[EventKind, Replay | None] = event_handlers("history", {
    EventKind.BLOCK_ADDED: _replay_block,
    EventKind.BLOCK_REMOVED: _replay_block,
    EventKind.EDGE_ADDED: _replay_edge,
    EventKind.EDGE_REMOVED: _replay_edge,
    EventKind.PARAMS_CHANGED: _replay_params,
    EventKind.BLOCK_RENAMED: _replay_rename,
    EventKind.BLOCK_COLLAPSED: _replay_collapse,
    EventKind.BLOCK_MOVED: _replay_move,
    EventKind.MODULE_ADDED: _replay_module,
    EventKind.MODULE_REMOVED: _replay_module,
    EventKind.MODULE_CHANGED: _replay_module_change,
    EventKind.DEFINITION_ADDED: _replay_definition,
    EventKind.DEFINITION_REMOVED: _replay_definition,
    EventKind.DEFINITION_CHANGED: _replay_definition_change,
})


def _apply(graph: Graph, event: GraphEvent, forward: bool) -> None:
    replay = REPLAY.get(event.kind)
    if replay is None:
        raise ValueError(f"cannot replay graph event {event.kind!r}")
    replay(graph, event, forward)
