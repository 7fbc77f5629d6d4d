"""The records of reusable modules: a definition (`ModuleDef`) and its instances.

They sit below `graph.py`, which stores them and emits their events; the logic that makes,
inserts, edits and dissolves modules is `modules.py`. The records are immutable values: the
graph replaces a record on every change and never changes one in place, so an event can carry
the record it replaced (their dicts are read-only by convention: build a new record with
`dataclasses.replace` instead of changing one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from cnnstudio.core import registry

MAX_NAME = 64  # module, definition and role names, as block names


@dataclass(frozen=True)
class DefBlock:
    """One block of a definition: its role (a stable name inside the definition), type,
    parameters and place relative to the module's anchor (the top centre of its blocks)."""

    role: str
    type: str
    params: Mapping[str, Any]
    offset: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True, order=True)
class RoleWire:
    """A wire inside a definition: the output of role `src` feeds input `port` of role `dst`."""

    src: str
    dst: str
    port: int = 0


@dataclass(frozen=True, order=True)
class ModuleEntry:
    """Where the module's input goes in: input `port` of the block with this role. A module
    has one input tensor, but it may feed several blocks (each branch of an Inception module,
    the shortcut of a residual block), so a definition lists every entry."""

    role: str
    port: int = 0


@dataclass(frozen=True)
class ModuleDef:
    """A module definition, shared by its instances: blocks by role, the wires among them,
    where the one input enters and which role gives the one output."""

    id: str
    name: str
    blocks: tuple[DefBlock, ...]
    connections: tuple[RoleWire, ...] = ()
    inputs: tuple[ModuleEntry, ...] = ()
    output: str = ""

    @property
    def roles(self) -> list[str]:
        return [b.role for b in self.blocks]

    def block(self, role: str) -> DefBlock:
        """The block with this role; KeyError naming the role when there is none."""
        for block in self.blocks:
            if block.role == role:
                return block
        raise KeyError(f"module {self.name!r} has no block {role!r}")

    def structure(self) -> tuple[Any, ...]:
        """What makes two definitions the same module, names, ids and layout aside."""
        blocks = tuple((b.role, b.type, tuple(sorted((k, _frozen(v)) for k, v in b.params.items())))
                       for b in self.blocks)
        return (blocks, tuple(sorted(self.connections)), tuple(sorted(self.inputs)), self.output)


@dataclass(frozen=True)
class ModuleInstance:
    """A module in the network: a named group of ordinary blocks of the graph, each standing
    for one role of its definition. `collapsed`: the canvas shows it as one card."""

    id: str
    name: str
    definition: str
    members: Mapping[str, str] = field(default_factory=dict)  # role -> block id
    collapsed: bool = False

    def role_of(self, block_id: str) -> str | None:
        """The role a member block plays, or None when the block is not a member."""
        return next((role for role, member in self.members.items() if member == block_id), None)

    @property
    def block_ids(self) -> list[str]:
        return list(self.members.values())


def _name_problem(what: str, name: Any) -> str | None:
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
        return f"{what} needs 1 to {MAX_NAME} characters, got {name!r}"
    return None


def definition_problem(definition: ModuleDef) -> str | None:
    """Why a definition is not whole (a wire to a role it does not have, two blocks with one
    role), or None. Parameter values are not checked here: the blocks check them."""
    where = f"module {definition.name!r}"
    problem = _name_problem("a module name", definition.name)
    roles = definition.roles
    if problem is None and not roles:
        problem = f"{where} has no blocks"
    for role in roles:
        problem = problem or _name_problem(f"{where}: a role name", role)
    duplicates = sorted({r for r in roles if roles.count(r) > 1})
    if problem is None and duplicates:
        problem = f"{where} has two blocks called {duplicates[0]!r}"
    unknown = [b.type for b in definition.blocks if not registry.is_known(b.type)]
    if problem is None and unknown:
        problem = f"{where}: {registry.UnknownBlockType(unknown[0])}"
    used = [r for wire in definition.connections for r in (wire.src, wire.dst)]
    used += [entry.role for entry in definition.inputs] + [definition.output]
    missing = [r for r in used if r not in roles]
    if problem is None and missing:
        problem = f"{where} has no block {missing[0]!r}"
    if problem is None and not definition.inputs:
        problem = f"{where} has no input"
    return problem


def member_problem(
    module: ModuleInstance,
    definition: ModuleDef | None,
    block: Callable[[str], Any],
    other_owner: Callable[[str], str | None],
) -> str | None:
    """Why a module does not fit the graph or its definition, or None when it does.

    `block(id)` is the graph's block or None; `other_owner(id)` the name of another module
    that already holds that block, or None.
    """
    where = f"module {module.name!r}"
    if definition is None:
        return f"{where}: there is no definition {module.definition!r}"
    problem = _name_problem("a module name", module.name)
    if problem or not module.members:
        return problem or f"{where} has no blocks"
    if len(set(module.members.values())) != len(module.members):
        return f"{where} names one block for two roles"
    types = {b.role: b.type for b in definition.blocks}
    for role, block_id in module.members.items():
        member = block(block_id)
        if role not in types:
            return f"{where}: its definition {definition.name!r} has no block {role!r}"
        if member is None:
            return f"{where}: there is no block with id {block_id!r}"
        if member.type != types[role]:
            return f"{where}: {member.label} cannot be its {role!r}, which is a {types[role]}"
        owner = other_owner(block_id)
        if owner is not None:
            return f"{member.label} is already in module {owner!r}"
    return None


def changed_fields(old: Any, new: Any, fields: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """{field: (old, new)} for the fields of two records that differ."""
    return {k: (getattr(old, k), getattr(new, k)) for k in fields
            if getattr(old, k) != getattr(new, k)}


def placed(items: dict[str, Any], key: str, value: Any, index: int | None) -> dict[str, Any]:
    """`items` with `value` under `key` at place `index` (None: at the end)."""
    pairs = list(items.items())
    pairs.insert(len(pairs) if index is None else max(index, 0), (key, value))
    return dict(pairs)


def _frozen(value: Any) -> Any:
    """Lists (parameter values such as [3, 3]) as tuples, so a structure can be compared."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value
