"""Reusable modules (composite blocks): make, insert, edit, detach, dissolve, and their totals.

The graph stays flat. Every block of every module is an ordinary block of the `Graph`, wired as
usual, so analysis, compile, training, inspection and every export see through modules without
knowing of them. A module adds two records, stored by the graph (`core/module_types.py`):

- a `ModuleDef` (definition): blocks by *role* (a stable name inside the definition, such as
  "conv1" or "3x3_reduce") with type, parameters and offset from the module's anchor, the wires
  among roles, the entries of the one input (`inputs`: the (role, port) it feeds; an Inception
  module's input feeds four branches) and the role that gives the one output (`output`);
- a `ModuleInstance`: a named group of block ids of the graph, `members` {role: block id},
  its `definition` and whether the canvas shows it `collapsed` (as one card).

Several instances may share one definition, like a symbol in a drawing program. Every function
here changes the graph through its methods only, so `core.history.record` makes each one
undoable (the graph emits MODULE_* and DEFINITION_* events). The API for views:

- `selection_problem(graph, ids)`: why a selection cannot become a module (or None);
  `make_module(graph, ids, name)`: a definition from the selection, which becomes its first
  instance.
- `insert_module(graph, definition_id, position)`: a new instance (fresh blocks and wires laid
  out with their top centre at `position`, names "<module>/<role>"); `connect_input` wires a
  block's output to every entry (`input_problem` says why it cannot), `output_block` is the
  block whose output leaves.
- `set_module_collapsed`, `rename_module`, `rename_definition`.
- `set_member_params(graph, block_id, changes, shared=…)`: a parameter of a block inside a
  module. `shared=True` changes the block's role in every instance of the definition and in
  the definition; `shared=False` changes this instance only, which detaches it into its own
  new definition first (a module alone with its definition simply takes the change along).
- `detach(graph, module_id)`: the module gets a definition of its own, made from what its
  blocks are now. Structural edits inside a module detach it the same way: `add_member`, and
  `remove_member` (which deletes the block keeping a chain connected). A block deleted any
  other way (`Graph.remove_block`) just leaves its module; a module left without blocks
  disappears, in the same edit.
- `dissolve(graph, module_id)`: the blocks stay, the grouping goes; its definition stays in the
  project (the palette's "My modules") until `Graph.remove_definition`.
- `module_summary(graph, analysis, module_id)`: input and output shape, parameters, MACs and
  problems of a module's blocks together, for the collapsed card and the inspector;
  `differing_roles`: roles whose block no longer has its definition's parameters (edited
  directly, as a one-click fix or fitting to a dataset do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from cnnstudio.core import edits, registry
from cnnstudio.core.analysis import Analysis, Diagnostic
from cnnstudio.core.blocks.base import Shape
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.module_types import (
    MAX_NAME,
    DefBlock,
    ModuleDef,
    ModuleEntry,
    ModuleInstance,
    RoleWire,
)

__all__ = [
    "DefBlock", "ModuleDef", "ModuleEntry", "ModuleInstance", "ModuleSummary", "RoleWire",
    "add_member", "connect_input", "detach", "differing_roles", "dissolve", "input_problem",
    "insert_module", "make_module", "module_summary", "output_block", "remove_member",
    "rename_definition", "rename_module", "selection_problem", "set_member_params",
    "set_module_collapsed",
]

Entries = list[tuple[str, int]]  # (block id, input port) fed by the module's input


# -- the shape of a selection -----------------------------------------------------------------


def selection_problem(graph: Graph, block_ids: Iterable[str]) -> str | None:
    """Why these blocks cannot become a module, in plain words, or None when they can.

    A module holds at least two connected blocks, none of them an Input or Output or in
    another module, with one input from outside (it may feed several blocks) and one block
    whose output leaves (or, when nothing leaves yet, one last block).
    """
    ids = list(dict.fromkeys(block_ids))
    if len(ids) < 2:
        return "select at least two blocks to make a module"
    for block_id in ids:
        if block_id not in graph:
            return f"there is no block with id {block_id!r}"
        owner = graph.module_of(block_id)
        if owner is not None:
            return (f"{graph.block(block_id).label} is already in module {owner.name!r}; "
                    "dissolve that module first")
    problem = _members_problem(graph, ids)
    return problem if problem else _boundary(graph, ids)[0]


def _members_problem(graph: Graph, ids: Sequence[str]) -> str | None:
    """Input/Output blocks inside, or a selection in several pieces."""
    for block_id in ids:
        block = graph.block(block_id)
        block_type = registry.get(block.type)
        if block_type.max_inputs == 0 or not block_type.has_output_port:
            return (f"{block.label} cannot be inside a module: a module holds blocks between "
                    "the network's input and its outputs")
    inside = set(ids)
    reached, stack = {ids[0]}, [ids[0]]
    while stack:
        current = stack.pop()
        for neighbour in (*graph.inputs_of(current), *graph.outputs_of(current)):
            if neighbour in inside and neighbour not in reached:
                reached.add(neighbour)
                stack.append(neighbour)
    apart = [graph.block(i).name for i in ids if i not in reached]
    if apart:
        return (f"the selection is not connected: {_names(apart)} "
                f"{'is' if len(apart) == 1 else 'are'} not wired to the rest; a module is "
                "one connected piece")
    return None


def _boundary(graph: Graph, ids: Sequence[str], previous: ModuleInstance | None = None,
              definition: ModuleDef | None = None) -> tuple[str | None, Entries, str]:
    """(problem, entries, exit): where the one input enters and which block's output leaves.

    Nothing wired from outside: the one block without inputs is the entry, or, for a module
    already made (`previous` with its `definition`), the entries it had. Nothing leaving: the
    one block feeding nothing, or the module's output block.
    """
    inside = set(ids)
    sources: list[str] = []
    entries: Entries = []
    exits: list[str] = []
    for block_id in ids:
        for edge in graph.input_edges(block_id):
            if edge.src not in inside:
                sources += [edge.src] if edge.src not in sources else []
                entries.append((block_id, edge.port))
        if any(dst not in inside for dst in graph.outputs_of(block_id)):
            exits.append(block_id)
    heads = [i for i in ids if not graph.inputs_of(i)]
    tails = [i for i in ids if not graph.outputs_of(i)]

    def named(block_ids: Sequence[str]) -> str:
        return ", ".join(graph.block(i).name for i in block_ids)

    if len(sources) > 1:
        return (f"the selection has {len(sources)} inputs from outside: {named(sources)}; "
                "a module takes one"), [], ""
    if not sources:
        entries = _previous_entries(previous, definition)
        if not entries and len(heads) > 1:
            return (f"the selection takes no input from outside and starts at {len(heads)} "
                    f"blocks: {named(heads)}; a module takes one input"), [], ""
        entries = entries or [(h, 0) for h in heads]
    elif heads:
        return (f"{named(heads)} {'has' if len(heads) == 1 else 'have'} no input; a module "
                "takes one input, from outside"), [], ""
    if len(exits) > 1:
        return (f"the selection has {len(exits)} outputs leaving it: {named(exits)}; a module "
                "gives one"), [], ""
    fallback = _previous_output(previous, definition)
    exit_id = exits[0] if exits else (fallback or (tails[0] if len(tails) == 1 else ""))
    if not exit_id:
        return (f"the selection ends in {len(tails)} blocks: {named(tails)}; a module gives "
                "one output"), [], ""
    dangling = [t for t in tails if t != exit_id]
    if dangling:
        return (f"the output of {named(dangling)} goes nowhere; a module gives one output, "
                f"from {graph.block(exit_id).name}"), [], ""
    if not entries:
        return "the selection has no block that takes its input", [], ""
    return None, entries, exit_id


def _previous_entries(module: ModuleInstance | None, definition: ModuleDef | None) -> Entries:
    if module is None or definition is None:
        return []
    return [(module.members[e.role], e.port) for e in definition.inputs
            if e.role in module.members]


def _previous_output(module: ModuleInstance | None, definition: ModuleDef | None) -> str | None:
    if module is None or definition is None:
        return None
    return module.members.get(definition.output)


def _names(names: Iterable[str]) -> str:
    return ", ".join(names)


# -- making and inserting ---------------------------------------------------------------------


def make_module(
    graph: Graph,
    block_ids: Iterable[str],
    name: str,
    *,
    roles: Mapping[str, str] | None = None,
    definition_name: str | None = None,
    collapsed: bool = False,
    share: bool = False,
) -> ModuleInstance:
    """Turn a selection into a module: a new definition and its first instance.

    `roles` {block id: role} names the blocks inside the definition (default: their names,
    without the prefix they all share, such as "layer1.0."). With `share`, a definition of the
    same structure already in the graph (same roles, types, parameters and wires) is used
    instead of a new one. Raises GraphError saying why a selection cannot be a module.
    """
    given = list(dict.fromkeys(block_ids))
    problem = selection_problem(graph, given) or _name_problem(name)
    if problem:
        raise GraphError(problem)
    ids = _in_order(graph, given)
    role_of = _roles(graph, ids, roles)
    _, entries, exit_id = _boundary(graph, ids)
    definition = _definition(graph, ids, role_of, entries, exit_id,
                             graph_id=_free_id(graph, "definition"),
                             name=definition_name or name)
    structure = definition.structure() if share else None
    same = [d for d in graph.definitions if share and d.structure() == structure]
    if same:
        definition = same[0]
    else:
        definition = _with_free_name(graph, definition)
        graph.add_definition(definition)
    module = ModuleInstance(_free_id(graph, "module"), _free_module_name(graph, name.strip()),
                            definition.id, {role_of[i]: i for i in ids}, collapsed)
    graph.add_module(module)
    return module


def insert_module(graph: Graph, definition_id: str, position: tuple[float, float], *,
                  name: str | None = None, collapsed: bool = False) -> ModuleInstance:
    """A new instance of a definition: its blocks (new ids, names "<module>/<role>") with
    their top centre at `position`, and the wires among them. Its input is not wired yet:
    `connect_input` does that."""
    definition = graph.definition(definition_id)
    module_name = _free_module_name(graph, (name or definition.name).strip())
    problem = _name_problem(module_name)
    if problem:
        raise GraphError(problem)
    x, y = position
    members: dict[str, str] = {}
    for item in definition.blocks:
        block = graph.add_block(item.type, item.params, name=_block_name(module_name, item.role),
                                position=(x + item.offset[0], y + item.offset[1]))
        members[item.role] = block.id
    for wire in definition.connections:
        graph.connect(members[wire.src], members[wire.dst], wire.port)
    module = ModuleInstance(_free_id(graph, "module"), module_name, definition.id, members,
                            collapsed)
    graph.add_module(module)
    return module


def connect_input(graph: Graph, module_id: str, source_id: str) -> None:
    """Wire `source_id`'s output to every entry of the module's input (GraphError, saying
    why, when it cannot: see `input_problem`)."""
    problem = input_problem(graph, module_id, source_id)
    if problem:
        raise GraphError(problem)
    for block_id, port in _entries(graph, graph.module(module_id)):
        graph.connect(source_id, block_id, port)


def input_problem(graph: Graph, module_id: str, source_id: str) -> str | None:
    """Why `source_id`'s output cannot feed the module's input, in plain words, or None."""
    module = graph.module(module_id)
    if source_id not in graph:
        return f"there is no block with id {source_id!r}"
    source = graph.block(source_id)
    if source_id in module.members.values():
        return f"module {module.name!r} cannot feed its own input"
    entries = _entries(graph, module)
    if not entries:
        return f"module {module.name!r} has no block left that takes its input"
    inside = set(module.members.values())
    feeding = [e.src for block_id, _ in entries for e in graph.input_edges(block_id)
               if e.src not in inside]
    if feeding:
        return (f"module {module.name!r} already has its input, from "
                f"{graph.block(feeding[0]).label}; remove that wire first")
    if source_id in _downstream(graph, inside):
        return (f"connecting {source.label} to module {module.name!r} would make a cycle: "
                f"{source.name} comes after the module")
    for block_id, port in entries:
        problem = graph.connection_problem(source_id, block_id, port)
        if problem:
            return problem
    return None


def _downstream(graph: Graph, ids: Iterable[str]) -> set[str]:
    """Every block the given blocks' outputs reach."""
    reached: set[str] = set()
    stack = list(ids)
    while stack:
        for dst in graph.outputs_of(stack.pop()):
            if dst not in reached:
                reached.add(dst)
                stack.append(dst)
    return reached


def _entries(graph: Graph, module: ModuleInstance) -> Entries:
    """(block id, port) of each entry of the module's input still in the module."""
    return [(module.members[entry.role], entry.port)
            for entry in graph.definition(module.definition).inputs
            if entry.role in module.members]


def output_block(graph: Graph, module_id: str) -> str | None:
    """The id of the block whose output is the module's (None once it has been deleted)."""
    module = graph.module(module_id)
    return module.members.get(graph.definition(module.definition).output)


# -- simple changes -----------------------------------------------------------------------


def set_module_collapsed(graph: Graph, module_id: str, collapsed: bool) -> None:
    graph.change_module(module_id, collapsed=bool(collapsed))


def rename_module(graph: Graph, module_id: str, name: str) -> None:
    problem = _name_problem(name)
    if problem:
        raise GraphError(problem)
    graph.change_module(module_id, name=name.strip())


def rename_definition(graph: Graph, definition_id: str, name: str) -> None:
    problem = _name_problem(name)
    if problem:
        raise GraphError(problem)
    graph.change_definition(definition_id, name=name.strip())


def dissolve(graph: Graph, module_id: str) -> ModuleInstance:
    """Ungroup: the blocks and wires stay as they are, the module goes."""
    return graph.remove_module(module_id)


# -- edits inside a module --------------------------------------------------------------------


def set_member_params(graph: Graph, block_id: str, changes: Mapping[str, Any], *,
                      shared: bool) -> None:
    """Change parameters of a block inside a module: in every instance of its definition and
    in the definition (`shared`), or in this instance only, which first detaches it into a
    definition of its own. A block outside any module is simply changed."""
    module = graph.module_of(block_id)
    if module is None:
        graph.set_params(block_id, changes)
        return
    role = module.role_of(block_id)
    assert role is not None
    alone = len(graph.instances_of(module.definition)) == 1
    if not shared and not alone:
        detach(graph, module.id)
    module = graph.module(module.id)
    for other in graph.instances_of(module.definition):
        if role in other.members:
            graph.set_params(other.members[role], changes)
    definition = graph.definition(module.definition)
    values = graph.block(block_id).params
    blocks = tuple(
        DefBlock(b.role, b.type, {**b.params, **{k: values[k] for k in changes}}, b.offset)
        if b.role == role else b for b in definition.blocks)
    graph.change_definition(definition.id, blocks=blocks)


def detach(graph: Graph, module_id: str, name: str | None = None) -> ModuleDef:
    """Give a module a definition of its own, made from what its blocks and wires are now.

    A module sharing its definition gets a new one (named after the module); a module alone
    with its definition has that definition brought up to date. Raises GraphError when the
    module's blocks no longer have one input and one output.
    """
    module = graph.module(module_id)
    old = graph.definition(module.definition)
    ids = list(module.members.values())
    problem = _members_problem(graph, ids)
    problem, entries, exit_id = (problem, [], "") if problem else \
        _boundary(graph, ids, module, old)
    if problem:
        raise GraphError(f"module {module.name!r} is no longer one piece with one input and "
                         f"one output ({problem}); dissolve it instead")
    role_of = {block_id: role for role, block_id in module.members.items()}
    alone = len(graph.instances_of(old.id)) == 1
    fresh = _definition(graph, _in_order(graph, ids), role_of, entries, exit_id,
                        graph_id=old.id if alone else _free_id(graph, "definition"),
                        name=name or (old.name if alone else module.name))
    if alone:
        graph.change_definition(old.id, **{k: getattr(fresh, k) for k in
                                           ("name", "blocks", "connections", "inputs", "output")})
        return graph.definition(old.id)
    fresh = _with_free_name(graph, fresh)
    graph.add_definition(fresh)
    graph.change_module(module_id, definition=fresh.id)
    return fresh


def add_member(graph: Graph, module_id: str, block_id: str, role: str | None = None) -> None:
    """Put a block (wired to the module's blocks) into a module; the module gets a definition
    of its own that includes it (see `detach`)."""
    module = graph.module(module_id)
    block = graph.block(block_id)
    owner = graph.module_of(block_id)
    if owner is not None:
        raise GraphError(f"{block.label} is already in module {owner.name!r}")
    role = role or _unique(block.name, set(module.members))
    ids = [*module.members.values(), block_id]
    problem = _members_problem(graph, ids) or _boundary(
        graph, ids, module, graph.definition(module.definition))[0]
    if problem:
        raise GraphError(f"{block.label} cannot join module {module.name!r}: {problem}")
    definition = graph.definition(module.definition)
    if len(graph.instances_of(definition.id)) > 1:
        definition = detach(graph, module_id)
    placeholder = DefBlock(role, block.type, dict(block.params))
    graph.change_definition(definition.id, blocks=(*definition.blocks, placeholder))
    graph.change_module(module_id, members={**module.members, role: block_id})
    detach(graph, module_id)


def remove_member(graph: Graph, block_id: str) -> None:
    """Delete a block inside a module, keeping a chain connected (as the canvas's delete
    does); the module gets a definition of its own without it (see `detach`)."""
    module = graph.module_of(block_id)
    edits.delete(graph, [block_id])
    if module is not None and module.id in {m.id for m in graph.modules}:
        detach(graph, module.id)


# -- totals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleSummary:
    """A module's blocks taken together: what its collapsed card and the inspector show."""

    module_id: str
    name: str
    definition_name: str
    input_shape: Shape | None
    output_shape: Shape | None
    params: int  # learnable values, as PyTorch counts them
    trainable: int
    non_trainable: int  # running statistics plus frozen values
    macs: int
    blocks: int
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def total_params(self) -> int:
        """Keras's Param #: trainable + non-trainable, as every view shows it."""
        return self.trainable + self.non_trainable

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def module_summary(graph: Graph, analysis: Analysis, module_id: str) -> ModuleSummary:
    """Sums over the module's blocks of `analysis` (of this graph); shapes where it has them."""
    module = graph.module(module_id)
    ids = _in_order(graph, module.members.values())
    infos = [analysis.blocks[i] for i in ids if i in analysis.blocks]
    inside = set(ids)
    outside_sources = [e.src for i in ids for e in graph.input_edges(i) if e.src not in inside]
    source = analysis.blocks.get(outside_sources[0]) if outside_sources else None
    exit_id = output_block(graph, module_id)
    exit_info = analysis.blocks.get(exit_id) if exit_id else None
    return ModuleSummary(
        module_id=module.id,
        name=module.name,
        definition_name=graph.definition(module.definition).name,
        input_shape=source.output_shape if source else None,
        output_shape=exit_info.output_shape if exit_info else None,
        params=sum(b.params for b in infos),
        trainable=sum(b.trainable for b in infos),
        non_trainable=sum(b.non_trainable for b in infos),
        macs=sum(b.macs for b in infos),
        blocks=len(ids),
        diagnostics=tuple(d for d in analysis.diagnostics if d.block_id in inside),
    )


def differing_roles(graph: Graph, module_id: str) -> list[str]:
    """Roles whose block's parameters differ from the definition's."""
    module = graph.module(module_id)
    definition = graph.definition(module.definition)
    return [b.role for b in definition.blocks if b.role in module.members
            and dict(graph.block(module.members[b.role]).params) != dict(b.params)]


# -- helpers ----------------------------------------------------------------------------------


def _definition(graph: Graph, ids: Sequence[str], role_of: Mapping[str, str], entries: Entries,
                exit_id: str, *, graph_id: str, name: str) -> ModuleDef:
    """A definition of these blocks as they are now, laid out around their top centre."""
    blocks = [graph.block(i) for i in ids]
    anchor_x = (min(b.x for b in blocks) + max(b.x for b in blocks)) / 2
    anchor_y = min(b.y for b in blocks)
    inside = set(ids)
    wires = [RoleWire(role_of[e.src], role_of[e.dst], e.port)  # in block order, then port
             for i in ids for e in graph.input_edges(i) if e.src in inside]
    return ModuleDef(
        id=graph_id,
        name=name.strip(),
        blocks=tuple(DefBlock(role_of[b.id], b.type, dict(b.params),
                              (b.x - anchor_x, b.y - anchor_y)) for b in blocks),
        connections=tuple(wires),
        inputs=tuple(ModuleEntry(role_of[block_id], port) for block_id, port in entries),
        output=role_of[exit_id],
    )


def _roles(graph: Graph, ids: Sequence[str], given: Mapping[str, str] | None) -> dict[str, str]:
    """{block id: role}: the given roles, else the blocks' names without their shared prefix
    (up to a '/' or '.': "inception_3a/1x1" → "1x1"), made unique."""
    if given is not None:
        missing = [graph.block(i).name for i in ids if i not in given]
        if missing:
            raise GraphError(f"no role given for {_names(missing)}")
        chosen = {i: given[i] for i in ids}
        if len(set(chosen.values())) != len(chosen):
            raise GraphError("two blocks of a module cannot have the same role")
        return chosen
    names = [graph.block(i).name for i in ids]
    prefix = os.path.commonprefix(names)
    cut = max(prefix.rfind("/"), prefix.rfind("."))
    if cut >= 0 and all(len(n) > cut + 1 for n in names):
        names = [n[cut + 1:] for n in names]
    roles: dict[str, str] = {}
    for block_id, role in zip(ids, names, strict=True):
        roles[block_id] = _unique(role, set(roles.values()))
    return roles


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`… the first not taken."""
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base[:MAX_NAME - 1 - len(str(n))]}_{n}", n + 1
    return candidate


def _free_id(graph: Graph, prefix: str) -> str:
    """A free id for a module ("module_1") or a definition ("definition_1")."""
    taken = {m.id for m in graph.modules} | {d.id for d in graph.definitions}
    n = 1
    while f"{prefix}_{n}" in taken:
        n += 1
    return f"{prefix}_{n}"


def _free_module_name(graph: Graph, name: str) -> str:
    """The name, or "name 2", "name 3"… the first no other module has."""
    return _spaced_unique(name, {m.name for m in graph.modules})


def _with_free_name(graph: Graph, definition: ModuleDef) -> ModuleDef:
    name = _spaced_unique(definition.name, {d.name for d in graph.definitions})
    return definition if name == definition.name else \
        ModuleDef(definition.id, name, definition.blocks, definition.connections,
                  definition.inputs, definition.output)


def _spaced_unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name[:MAX_NAME - 1 - len(str(n))]} {n}", n + 1
    return candidate


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
        return f"a module name needs 1 to {MAX_NAME} characters"
    return None


def _block_name(module_name: str, role: str) -> str:
    """ "<module>/<role>", shortened to a block name's 64 characters."""
    room = MAX_NAME - len(role) - 1
    return f"{module_name[:max(room, 1)]}/{role}"[-MAX_NAME:]


def _in_order(graph: Graph, ids: Iterable[str]) -> list[str]:
    wanted = set(ids)
    return [b.id for b in graph.blocks if b.id in wanted]
