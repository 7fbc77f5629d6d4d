"""The network graph: blocks with stable ids, ordered edges, events.

The graph is the one source of truth. Views listen to its events; undo commands call its
methods. It knows nothing of torch or Qt.

Reusable modules live here too, as storage only: definitions (`ModuleDef`) and instances
(`ModuleInstance`, a named group of ordinary blocks) with their events; the graph itself stays
flat, and `modules.py` holds the logic that makes and edits them.

It is also the one place for the graph's roles: which block is the Input (`input_block`),
which Output is the main one that predicts (`main_output`; an auxiliary Output only helps
training) and what a block depends on (`ancestors`). Events are typed (`EventKind`) and every
consumer dispatches them through `event_handlers`, which refuses a table that leaves a kind out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, TypeVar

from cnnstudio.core import registry
from cnnstudio.core.grid import STEP_Y
from cnnstudio.core.module_types import (
    ModuleDef,
    ModuleInstance,
    changed_fields,
    definition_problem,
    member_problem,
    placed,
)
from cnnstudio.core.params import ParamError

_ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
INPUT_TYPE = "Input"
OUTPUT_TYPE = "Output"


class GraphError(ValueError):
    """An edit the graph refuses; the message says why, in plain language."""


@dataclass
class Block:
    id: str
    type: str
    name: str
    params: dict[str, Any]
    x: float = 0.0
    y: float = 0.0
    collapsed: bool = False

    def copy(self) -> Block:
        return replace(self, params={k: _copy(v) for k, v in self.params.items()})

    @property
    def label(self) -> str:
        """How messages name a block: Conv2D 'conv3'."""
        return f"{registry.get(self.type).display_name} '{self.name}'"

    @property
    def is_auxiliary_output(self) -> bool:
        """An Output ticked 'auxiliary': its loss helps training, but it does not predict."""
        return self.type == OUTPUT_TYPE and bool(self.params.get("auxiliary", False))

    @property
    def is_main_output(self) -> bool:
        """An Output that is not auxiliary: what the network predicts (and exports)."""
        return self.type == OUTPUT_TYPE and not self.is_auxiliary_output


@dataclass(frozen=True, order=True)
class Edge:
    """Output of `src` feeds input slot `port` of `dst`; ports order the inputs of merges."""

    src: str
    dst: str
    port: int = 0


class EventKind(Enum):
    """What a GraphEvent says happened, and which of its fields carry the details."""

    BLOCK_ADDED = "block_added"  # block: a copy of the new block; index: its place
    BLOCK_REMOVED = "block_removed"  # block: a copy of the removed block (its wires went first)
    PARAMS_CHANGED = "params_changed"  # changes: {param: (old, new)}
    BLOCK_RENAMED = "block_renamed"  # changes: {"name": (old, new)}
    BLOCK_COLLAPSED = "block_collapsed"  # changes: {"collapsed": (old, new)}
    BLOCK_MOVED = "block_moved"  # changes: {"position": ((x, y), (x, y))}
    EDGE_ADDED = "edge_added"  # edge
    EDGE_REMOVED = "edge_removed"  # edge
    MODULE_ADDED = "module_added"  # module_id; module: the new instance; index: its place
    MODULE_REMOVED = "module_removed"  # module_id; module: the removed instance; index
    # module_id; changes: {"name" | "collapsed" | "definition" | "members": (old, new)}
    MODULE_CHANGED = "module_changed"
    DEFINITION_ADDED = "definition_added"  # definition_id; definition; index
    DEFINITION_REMOVED = "definition_removed"  # definition_id; definition; index
    # definition_id; changes: {"name" | "blocks" | "connections" | "inputs" | "output": (old, new)}
    DEFINITION_CHANGED = "definition_changed"


@dataclass(frozen=True)
class GraphEvent:
    """One change of the graph, with what is needed to redo or undo it."""

    kind: EventKind
    block_id: str | None = None
    edge: Edge | None = None
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    block: Block | None = None
    index: int | None = None  # the place in the graph's order of a block, module or definition
    module_id: str | None = None
    module: ModuleInstance | None = None
    definition_id: str | None = None
    definition: ModuleDef | None = None


Listener = Callable[[GraphEvent], None]
Handler = TypeVar("Handler")


def event_handlers(
    owner: str, handlers: Mapping[EventKind, Handler], ignored: Iterable[EventKind] = ()
) -> dict[EventKind, Handler | None]:
    """A complete dispatch table: `handlers` and `ignored` together must name every EventKind
    exactly once, or this raises (at construction, so a forgotten or new kind fails every test
    that builds the consumer instead of being skipped in silence). Ignored kinds map to None;
    a value that is not an EventKind has no entry, so looking it up raises KeyError."""
    ignored = frozenset(ignored)
    unknown = [k for k in (*handlers, *ignored) if not isinstance(k, EventKind)]
    both = sorted(k.value for k in ignored.intersection(handlers))
    missing = sorted(k.value for k in EventKind if k not in handlers and k not in ignored)
    if unknown or both or missing:
        raise TypeError(
            f"{owner}: graph event handlers must name every EventKind once "
            f"(missing: {', '.join(missing) or 'none'}; both handled and ignored: "
            f"{', '.join(both) or 'none'}; not an EventKind: {unknown or 'none'})"
        )
    return {kind: handlers.get(kind) for kind in EventKind}


def _checked_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 64:
        raise GraphError("a block name needs 1 to 64 characters")
    return name


def _free_id(item_id: str, taken: Mapping[str, Any]) -> str | None:
    if not isinstance(item_id, str) or not _ID_PATTERN.match(item_id):
        return (f"id {item_id!r} must start with a letter and hold only letters, digits and "
                "underscores")
    return f"the id {item_id!r} is taken" if item_id in taken else None


def _copy(value: Any) -> Any:
    return [_copy(v) for v in value] if isinstance(value, list) else value


class Graph:
    def __init__(self) -> None:
        self._blocks: dict[str, Block] = {}
        self._in: dict[str, list[Edge]] = {}
        self._out: dict[str, list[Edge]] = {}
        self._edges: dict[Edge, None] = {}
        self._modules: dict[str, ModuleInstance] = {}
        self._definitions: dict[str, ModuleDef] = {}
        self._module_of: dict[str, str] = {}  # member block id -> module id
        self._listeners: list[Listener] = []
        self.revision = 0  # bumped on every change; lets views cache analysis

    # -- reading ---------------------------------------------------------------------------

    @property
    def blocks(self) -> list[Block]:
        return list(self._blocks.values())

    @property
    def edges(self) -> list[Edge]:
        return list(self._edges)

    def block(self, block_id: str) -> Block:
        try:
            return self._blocks[block_id]
        except KeyError:
            raise GraphError(f"there is no block with id {block_id!r}") from None

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def input_edges(self, block_id: str) -> list[Edge]:
        return sorted(self._in[block_id], key=lambda e: e.port)

    def output_edges(self, block_id: str) -> list[Edge]:
        return list(self._out[block_id])

    def inputs_of(self, block_id: str) -> list[str]:
        return [e.src for e in self.input_edges(block_id)]

    def outputs_of(self, block_id: str) -> list[str]:
        return [e.dst for e in self._out[block_id]]

    def find(self, name: str) -> Block | None:
        """The first block with this display name."""
        return next((b for b in self._blocks.values() if b.name == name), None)

    # -- roles: these never raise, so an invalid graph can still be analysed -----------------

    def input_blocks(self) -> list[Block]:
        """Every Input block, in block order (the analysis reports all but the first)."""
        return [b for b in self._blocks.values() if b.type == INPUT_TYPE]

    def input_block(self) -> Block | None:
        """The Input block the network reads: the first in block order; None without one."""
        return next(iter(self.input_blocks()), None)

    def output_blocks(self) -> list[Block]:
        """Every Output block, auxiliary ones included, in block order."""
        return [b for b in self._blocks.values() if b.type == OUTPUT_TYPE]

    def main_outputs(self) -> list[Block]:
        """The Outputs that are not auxiliary, in block order. A valid graph has exactly one;
        the analysis reports none or several as errors."""
        return [b for b in self.output_blocks() if b.is_main_output]

    def main_output(self) -> Block | None:
        """The Output the network predicts with: the first non-auxiliary Output in block order
        (the one the analysis keeps when there are several); None when every Output is
        auxiliary or there is none."""
        return next(iter(self.main_outputs()), None)

    def ancestors(self, block_id: str) -> set[str]:
        """The ids of every block `block_id` depends on through its input wires (itself
        excluded, even on a cycle). Raises GraphError for an unknown id."""
        self.block(block_id)
        seen: set[str] = set()
        stack = self.inputs_of(block_id)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.inputs_of(current))
        seen.discard(block_id)
        return seen

    def topological_order(self) -> tuple[list[str], list[str]]:
        """(blocks in dependency order, blocks on or behind a cycle). Stable: insertion order."""
        indegree = {bid: len(edges) for bid, edges in self._in.items()}
        ready = [bid for bid in self._blocks if indegree[bid] == 0]
        order: list[str] = []
        position = {bid: i for i, bid in enumerate(self._blocks)}
        while ready:
            ready.sort(key=position.__getitem__, reverse=True)
            current = ready.pop()
            order.append(current)
            for edge in self._out[current]:
                indegree[edge.dst] -= 1
                if indegree[edge.dst] == 0:
                    ready.append(edge.dst)
        placed = set(order)
        return order, [bid for bid in self._blocks if bid not in placed]

    # -- ids and names ---------------------------------------------------------------------

    def new_id(self, type_id: str) -> str:
        prefix = type_id.lower()
        n = 1
        while f"{prefix}_{n}" in self._blocks:
            n += 1
        return f"{prefix}_{n}"

    def new_name(self, type_id: str) -> str:
        prefix = registry.get(type_id).name_prefix
        used = {b.name for b in self._blocks.values()}
        if prefix in ("input", "output") and prefix not in used:
            return prefix
        n = 1
        while f"{prefix}{n}" in used:
            n += 1
        return f"{prefix}{n}"

    # -- editing ---------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, event: GraphEvent) -> None:
        self.revision += 1
        for listener in list(self._listeners):
            listener(event)

    def add_block(
        self,
        type_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        position: tuple[float, float] = (0.0, 0.0),
        block_id: str | None = None,
    ) -> Block:
        block_type = registry.get(type_id)
        values, problems = block_type.normalize(params or {})
        if problems:
            raise GraphError(
                "; ".join(f"{block_type.display_name} {param}: {msg}" for param, msg in problems)
            )
        block = Block(
            id=block_id or self.new_id(type_id),
            type=type_id,
            name=_checked_name(name) if name is not None else self.new_name(type_id),
            params=values,
            x=float(position[0]),
            y=float(position[1]),
        )
        self.insert(block)
        return block

    def insert(self, block: Block, index: int | None = None) -> None:
        """Put a block (for example one removed earlier) into the graph as it is, at the end
        of the block order or at `index`."""
        if not _ID_PATTERN.match(block.id):
            raise GraphError(
                f"block id {block.id!r} must start with a letter and hold only letters, digits "
                "and underscores"
            )
        if block.id in self._blocks:
            raise GraphError(f"a block with id {block.id!r} already exists")
        registry.get(block.type)
        if index is None or index >= len(self._blocks):
            index = len(self._blocks)
            self._blocks[block.id] = block
        else:
            items = list(self._blocks.items())
            items.insert(max(index, 0), (block.id, block))
            self._blocks = dict(items)
        self._in[block.id] = []
        self._out[block.id] = []
        self._emit(GraphEvent(EventKind.BLOCK_ADDED, block.id, block=block.copy(), index=index))

    def remove_block(self, block_id: str) -> tuple[Block, list[Edge]]:
        """Remove a block and its wires; returns both so an undo can put them back."""
        block = self.block(block_id)
        removed = self._in[block_id] + self._out[block_id]
        for edge in list(removed):
            self.disconnect(edge)
        module_id = self._module_of.get(block_id)
        if module_id is not None:  # the block leaves its module (which goes with its last block)
            module = self._modules[module_id]
            members = {r: b for r, b in module.members.items() if b != block_id}
            if members:
                self.change_module(module_id, members=members)
            else:
                self.remove_module(module_id)
        index = list(self._blocks).index(block_id)
        del self._blocks[block_id], self._in[block_id], self._out[block_id]
        self._emit(GraphEvent(EventKind.BLOCK_REMOVED, block_id, block=block.copy(), index=index))
        return block, removed

    def connection_problem(self, src: str, dst: str, port: int | None = None) -> str | None:
        """Why src → dst cannot be wired, or None when it can."""
        if src not in self._blocks or dst not in self._blocks:
            return "both ends of a connection must be blocks of this network"
        a, b = self._blocks[src], self._blocks[dst]
        a_type, b_type = registry.get(a.type), registry.get(b.type)
        if src == dst:
            return "a block cannot feed itself"
        if not a_type.has_output_port:
            return f"{a.label} is a network output: nothing can follow it"
        if b_type.max_inputs == 0:
            return f"{b.label} takes no input"
        if any(e.src == src for e in self._in[dst]):
            return f"{a.label} already feeds {b.label}"
        if b_type.max_inputs is not None and len(self._in[dst]) >= b_type.max_inputs:
            if b_type.max_inputs > 1:
                return (f"{b.label} already has its {b_type.max_inputs} inputs; remove one of "
                        "those wires first")
            return (
                f"{b.label} already has its input; remove that wire first or use "
                "Concatenate or Add to merge branches"
            )
        if port is not None and any(e.port == port for e in self._in[dst]):
            return f"input {port + 1} of {b.label} is already connected"
        if self._reaches(dst, src):
            return f"connecting {a.label} to {b.label} would make a cycle"
        return None

    def _reaches(self, start: str, target: str) -> bool:
        stack, seen = [start], {start}
        while stack:
            current = stack.pop()
            if current == target:
                return True
            for edge in self._out[current]:
                if edge.dst not in seen:
                    seen.add(edge.dst)
                    stack.append(edge.dst)
        return False

    def connect(self, src: str, dst: str, port: int | None = None) -> Edge:
        problem = self.connection_problem(src, dst, port)
        if problem:
            raise GraphError(problem)
        if port is None:
            port = max((e.port for e in self._in[dst]), default=-1) + 1
        edge = Edge(src, dst, port)
        self._add_edge(edge)
        return edge

    def restore_edge(self, edge: Edge) -> None:
        """Put back a wire exactly as it was (undo), port included."""
        problem = self.connection_problem(edge.src, edge.dst, edge.port)
        if problem:
            raise GraphError(problem)
        self._add_edge(edge)

    def _add_edge(self, edge: Edge) -> None:
        self._edges[edge] = None
        self._in[edge.dst].append(edge)
        self._out[edge.src].append(edge)
        self._emit(GraphEvent(EventKind.EDGE_ADDED, edge.dst, edge=edge))

    def disconnect(self, edge: Edge) -> None:
        if edge not in self._edges:
            raise GraphError(f"there is no wire from {edge.src!r} to {edge.dst!r}")
        del self._edges[edge]
        self._in[edge.dst].remove(edge)
        self._out[edge.src].remove(edge)
        self._emit(GraphEvent(EventKind.EDGE_REMOVED, edge.dst, edge=edge))

    def set_params(self, block_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change parameters (all or none); returns the previous values for undo."""
        block = self.block(block_id)
        block_type = registry.get(block.type)
        new_values: dict[str, Any] = {}
        for name, value in changes.items():
            if not block_type.has_param(name):
                raise GraphError(f"{block.label} has no parameter {name!r}")
            try:
                new_values[name] = block_type.param(name).coerce(value)
            except ParamError as err:
                raise GraphError(f"{block.label}, {name}: {err}") from None
        old = {name: block.params.get(name) for name in new_values}
        block.params.update({k: _copy(v) for k, v in new_values.items()})
        self._emit(
            GraphEvent(
                EventKind.PARAMS_CHANGED, block_id,
                changes={k: (_copy(old[k]), _copy(new_values[k])) for k in new_values},
            )
        )
        return old

    def rename(self, block_id: str, name: str) -> str:
        block = self.block(block_id)
        name = _checked_name(name)
        old, block.name = block.name, name
        self._emit(GraphEvent(EventKind.BLOCK_RENAMED, block_id, changes={"name": (old, name)}))
        return old

    def move(self, block_id: str, x: float, y: float) -> tuple[float, float]:
        block = self.block(block_id)
        old = (block.x, block.y)
        block.x, block.y = float(x), float(y)
        self._emit(GraphEvent(EventKind.BLOCK_MOVED, block_id,
                              changes={"position": (old, (float(x), float(y)))}))
        return old

    def set_collapsed(self, block_id: str, collapsed: bool) -> bool:
        block = self.block(block_id)
        old, block.collapsed = block.collapsed, bool(collapsed)
        self._emit(GraphEvent(EventKind.BLOCK_COLLAPSED, block_id,
                              changes={"collapsed": (old, bool(collapsed))}))
        return old

    # -- modules: storage and events (the logic is modules.py) ------------------------------

    @property
    def modules(self) -> list[ModuleInstance]:
        return list(self._modules.values())

    @property
    def definitions(self) -> list[ModuleDef]:
        return list(self._definitions.values())

    def module(self, module_id: str) -> ModuleInstance:
        if module_id not in self._modules:
            raise GraphError(f"there is no module with id {module_id!r}")
        return self._modules[module_id]

    def definition(self, definition_id: str) -> ModuleDef:
        if definition_id not in self._definitions:
            raise GraphError(f"there is no module definition with id {definition_id!r}")
        return self._definitions[definition_id]

    def module_of(self, block_id: str) -> ModuleInstance | None:
        """The module a block belongs to, or None (a block is in one module at most)."""
        module_id = self._module_of.get(block_id)
        return None if module_id is None else self._modules[module_id]

    def instances_of(self, definition_id: str) -> list[ModuleInstance]:
        return [m for m in self._modules.values() if m.definition == definition_id]

    def add_definition(self, definition: ModuleDef, index: int | None = None) -> None:
        problem = _free_id(definition.id, self._definitions) or definition_problem(definition)
        if problem:
            raise GraphError(problem)
        self._definitions = placed(self._definitions, definition.id, definition, index)
        self._emit(GraphEvent(EventKind.DEFINITION_ADDED, definition_id=definition.id,
                              definition=definition, index=index))

    def remove_definition(self, definition_id: str) -> ModuleDef:
        """Remove a definition no module uses (dissolve or delete its modules first)."""
        definition = self.definition(definition_id)
        users = ", ".join(repr(m.name) for m in self.instances_of(definition_id))
        if users:
            raise GraphError(f"module {definition.name!r} is still used by {users}")
        index = list(self._definitions).index(definition_id)
        del self._definitions[definition_id]
        self._emit(GraphEvent(EventKind.DEFINITION_REMOVED, definition_id=definition_id,
                              definition=definition, index=index))
        return definition

    def change_definition(self, definition_id: str, **fields: Any) -> ModuleDef:
        """Replace fields of a definition (name, blocks, connections, inputs, output); every
        module using it must still fit it. Returns the definition as it was."""
        old = self.definition(definition_id)
        new = replace(old, **fields)
        problems = [self._member_problem(m, new) for m in self.instances_of(definition_id)]
        problem = definition_problem(new) or next(filter(None, problems), None)
        if problem:
            raise GraphError(problem)
        if changes := changed_fields(old, new, fields):
            self._definitions[definition_id] = new
            self._emit(GraphEvent(EventKind.DEFINITION_CHANGED, definition_id=definition_id,
                                  changes=changes))
        return old

    def add_module(self, module: ModuleInstance, index: int | None = None) -> None:
        module = replace(module, members=dict(module.members))
        problem = _free_id(module.id, self._modules) or self._member_problem(module)
        if problem:
            raise GraphError(problem)
        self._modules = placed(self._modules, module.id, module, index)
        self._module_of.update(dict.fromkeys(module.members.values(), module.id))
        self._emit(GraphEvent(EventKind.MODULE_ADDED, module_id=module.id, module=module,
                              index=index))

    def remove_module(self, module_id: str) -> ModuleInstance:
        """Remove the grouping; the blocks stay. Returns the removed module."""
        module = self.module(module_id)
        index = list(self._modules).index(module_id)
        del self._modules[module_id]
        for block_id in module.members.values():
            del self._module_of[block_id]
        self._emit(GraphEvent(EventKind.MODULE_REMOVED, module_id=module_id, module=module,
                              index=index))
        return module

    def change_module(self, module_id: str, **fields: Any) -> ModuleInstance:
        """Replace fields of a module (name, collapsed, definition, members); returns it as
        it was."""
        old = self.module(module_id)
        new = replace(old, **{**fields, "members": dict(fields.get("members", old.members))})
        problem = self._member_problem(new)
        if problem:
            raise GraphError(problem)
        if changes := changed_fields(old, new, fields):
            self._modules[module_id] = new
            for block_id in old.members.values():
                del self._module_of[block_id]
            self._module_of.update(dict.fromkeys(new.members.values(), module_id))
            self._emit(GraphEvent(EventKind.MODULE_CHANGED, module_id=module_id,
                                  changes=changes))
        return old

    def _member_problem(self, module: ModuleInstance, definition: ModuleDef | None = None) -> \
            str | None:
        """Why a module does not fit the graph or its definition (default: its own)."""
        def other_owner(block_id: str) -> str | None:
            owner = self._module_of.get(block_id)
            return None if owner in (None, module.id) else self._modules[owner].name

        definition = definition or self._definitions.get(module.definition)
        return member_problem(module, definition, self._blocks.get, other_owner)

    # -- whole-graph helpers ---------------------------------------------------------------

    def copy(self) -> Graph:
        """A deep copy without listeners."""
        other = Graph()
        for block in self._blocks.values():
            other.insert(block.copy())
        for edge in self._edges:
            other._add_edge(edge)
        for definition in self._definitions.values():
            other.add_definition(definition)
        for module in self._modules.values():
            other.add_module(module)
        other.revision = 0
        return other

    def chain(
        self,
        specs: Iterable[tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], str]],
        after: str | None = None,
        x: float = 0.0,
        y: float = 0.0,
        step: float = STEP_Y,
    ) -> list[Block]:
        """Add blocks one after another, each fed by the previous (and the first by `after`)."""
        added: list[Block] = []
        previous = after
        for i, spec in enumerate(specs):
            type_id, params = spec[0], spec[1]
            name = spec[2] if len(spec) > 2 else None  # type: ignore[misc]
            block = self.add_block(type_id, params, name=name, position=(x, y + i * step))
            if previous is not None:
                self.connect(previous, block.id)
            previous = block.id
            added.append(block)
        return added
