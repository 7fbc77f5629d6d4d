"""Undoable edits without Qt: record the graph events an action causes, then replay or invert.

Every edit of the window (add, delete, wire, paste, insert on a wire, a parameter, a one-click
repair, automatic layout) is a function of the graph; `record` runs it once and keeps its
events. Undo inverts them in reverse order, redo replays them. The window's QUndoCommand only
wraps an Edit, so undo and redo change the model and nothing else; the scene follows the
graph's events like after any other change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

from cnnstudio.core.graph import Graph, GraphEvent

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


def _apply(graph: Graph, event: GraphEvent, forward: bool) -> None:
    kind = event.kind
    if kind in ("block_added", "block_removed"):
        adding = (kind == "block_added") == forward
        if adding:
            assert event.block is not None
            graph.insert(event.block.copy(), event.index)
        else:
            graph.remove_block(event.block_id)  # type: ignore[arg-type]
    elif kind in ("edge_added", "edge_removed"):
        assert event.edge is not None
        if (kind == "edge_added") == forward:
            graph.restore_edge(event.edge)
        else:
            graph.disconnect(event.edge)
    else:
        index = 1 if forward else 0
        values = {name: pair[index] for name, pair in event.changes.items()}
        block_id = event.block_id
        assert block_id is not None
        if kind == "params_changed":
            graph.set_params(block_id, values)
        elif kind == "block_renamed":
            graph.rename(block_id, values["name"])
        elif kind == "block_collapsed":
            graph.set_collapsed(block_id, values["collapsed"])
        elif kind == "block_moved":
            graph.move(block_id, *values["position"])
        else:
            raise ValueError(f"cannot replay graph event {kind!r}")
