"""Modules in a project file: the `"modules"` object of a .cnnproj, written and checked.

```
"modules": {
  "definitions": [{"id", "name", "blocks": [{"role", "type", "version", "params",
                   "position"}], "connections": [{"from", "to", "port"}],
                   "inputs": [{"to", "port"}], "output"}],
  "instances": [{"id", "name", "definition", "members": {role: block id}, "collapsed"}]
}
```

A definition's block positions are offsets from the module's top centre; its wires and inputs
name roles. The object is written only when the project has module definitions, so files
without modules stay byte for byte as before, and an older CNN Studio, which ignores unknown
top-level keys, opens a file with modules as the flat network it is. Loading checks everything
with located problems, as `project.py` does for blocks: a definition block exactly like a block
of the network (`file_checks.py`), wires and entries against the definition's roles, members
against the network's blocks (a block in two modules, a block of the wrong type for its role).
"""

from __future__ import annotations

from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.file_checks import (
    is_number,
    list_field,
    ordered_params,
    read_block_params,
    read_block_type,
    read_position,
    show,
)
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.module_types import (
    MAX_NAME,
    DefBlock,
    ModuleDef,
    ModuleEntry,
    ModuleInstance,
    RoleWire,
)
from cnnstudio.core.modules import insert_module

KEY = "modules"
MAX_DEFINITIONS = 10_000
MAX_PORT = 65_535


# -- writing ----------------------------------------------------------------------------------


def modules_to_dict(graph: Graph) -> dict[str, Any] | None:
    """The "modules" object of a project file, or None when the graph has no definitions."""
    if not graph.definitions:
        return None
    return {
        "definitions": [_definition_to_dict(d) for d in graph.definitions],
        "instances": [
            {"id": m.id, "name": m.name, "definition": m.definition,
             "members": dict(m.members), "collapsed": bool(m.collapsed)}
            for m in graph.modules
        ],
    }


def _definition_to_dict(definition: ModuleDef) -> dict[str, Any]:
    return {
        "id": definition.id,
        "name": definition.name,
        "blocks": [
            {"role": b.role, "type": b.type, "version": registry.get(b.type).version,
             "params": ordered_params(b.type, dict(b.params)),
             "position": [float(b.offset[0]), float(b.offset[1])]}
            for b in definition.blocks
        ],
        "connections": [{"from": w.src, "to": w.dst, "port": w.port}
                        for w in definition.connections],
        "inputs": [{"to": e.role, "port": e.port} for e in definition.inputs],
        "output": definition.output,
    }


# -- reading ----------------------------------------------------------------------------------


def read_modules(data: dict[str, Any], graph: Graph, declared: set[str],
                 problems: list[str]) -> None:
    """Add the file's module definitions and instances to `graph` (whose blocks are read);
    every problem goes to `problems`, located ("modules.instances[2].members.conv: ...").
    `declared`: the block ids the file declares, usable or not (those already reported)."""
    if KEY not in data:
        return
    section = data[KEY]
    if not isinstance(section, dict):
        problems.append(f"{KEY}: expected an object, got {show(section)}")
        return
    for index, entry in enumerate(list_field(section, "definitions", MAX_DEFINITIONS,
                                             problems, KEY) or []):
        definition = _read_definition(entry, f"{KEY}.definitions[{index}]", graph, problems)
        if definition is not None:
            _add(graph.add_definition, definition, f"{KEY}.definitions[{index}]", problems)
    owners: dict[str, str] = {}
    for index, entry in enumerate(list_field(section, "instances", MAX_DEFINITIONS,
                                             problems, KEY) or []):
        where = f"{KEY}.instances[{index}]"
        module = _read_instance(entry, where, graph, declared, owners, problems)
        if module is not None:
            _add(graph.add_module, module, where, problems)


def _add(adder: Any, record: Any, where: str, problems: list[str]) -> None:
    try:
        adder(record)
    except GraphError as err:
        problems.append(f"{where}: {err}")


def _read_definition(entry: Any, where: str, graph: Graph,
                     problems: list[str]) -> ModuleDef | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object, got {show(entry)}")
        return None
    before = len(problems)
    definition_id = _text(entry, "id", where, problems)
    if definition_id is not None and any(d.id == definition_id for d in graph.definitions):
        problems.append(f"{where}.id: duplicate definition id {definition_id!r}")
    name = _text(entry, "name", where, problems)
    blocks: list[DefBlock] = []
    for index, item in enumerate(list_field(entry, "blocks", MAX_DEFINITIONS, problems,
                                            where) or []):
        block = _read_def_block(item, f"{where}.blocks[{index}]", problems)
        if block is not None and block.role in {b.role for b in blocks}:
            problems.append(f"{where}.blocks[{index}].role: {block.role!r} is taken by "
                            "another block of this definition")
        elif block is not None:
            blocks.append(block)
    roles = {b.role for b in blocks}
    wires: list[RoleWire] = []
    for index, item in enumerate(list_field(entry, "connections", MAX_DEFINITIONS, problems,
                                            where) or []):
        src, dst, port = _read_wire(item, f"{where}.connections[{index}]", roles, problems,
                                    ("from", "to"))
        if src is not None and dst is not None:
            wires.append(RoleWire(src, dst, port))
    inputs: list[ModuleEntry] = []
    for index, item in enumerate(list_field(entry, "inputs", MAX_DEFINITIONS, problems,
                                            where) or []):
        _, dst, port = _read_wire(item, f"{where}.inputs[{index}]", roles, problems, ("to",))
        if dst is not None:
            inputs.append(ModuleEntry(dst, port))
    output = _text(entry, "output", where, problems)
    if output is not None and output not in roles:
        problems.append(f"{where}.output: the definition has no block {output!r}")
    if len(problems) > before or definition_id is None or name is None or output is None:
        return None
    definition = ModuleDef(definition_id, name, tuple(blocks), tuple(wires), tuple(inputs),
                           output)
    trial = Graph()  # a definition that cannot be laid out (a cycle, two wires on one port)
    try:
        trial.add_definition(definition)
        insert_module(trial, definition.id, (0.0, 0.0))
    except GraphError as err:
        problems.append(f"{where}: {err}")
        return None
    return definition


def _read_def_block(item: Any, where: str, problems: list[str]) -> DefBlock | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: expected an object, got {show(item)}")
        return None
    role = _text(item, "role", where, problems)
    block_type = read_block_type(item, where, problems)
    params, _ = read_block_params(item, where, block_type, problems)
    offset = read_position(item, where, problems)
    if role is None or block_type is None:
        return None
    return DefBlock(role, block_type.type_id, params, offset)


def _read_wire(item: Any, where: str, roles: set[str], problems: list[str],
               ends: tuple[str, ...]) -> tuple[str | None, str | None, int]:
    """(from role, to role, port) of a wire ({"from", "to", "port"}) or an entry ({"to",
    "port"}, from None); (None, None, 0) when it is not usable."""
    unusable: tuple[None, None, int] = (None, None, 0)
    if not isinstance(item, dict):
        problems.append(f"{where}: expected an object, got {show(item)}")
        return unusable
    found: list[str | None] = []
    for key in ends:
        role = _text(item, key, where, problems)
        if role is not None and role not in roles:
            problems.append(f"{where}.{key}: the definition has no block {role!r}")
            role = None
        found.append(role)
    port = item.get("port", 0)
    if not is_number(port) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
        problems.append(f"{where}.port: expected an integer from 0 to {MAX_PORT:,}, "
                        f"got {show(port)}")
        return unusable
    if None in found:
        return unusable
    return (found[0] if len(found) == 2 else "", found[-1], port)


def _read_instance(entry: Any, where: str, graph: Graph, declared: set[str],
                   owners: dict[str, str], problems: list[str]) -> ModuleInstance | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object, got {show(entry)}")
        return None
    before = len(problems)
    module_id = _text(entry, "id", where, problems)
    name = _text(entry, "name", where, problems)
    definition_id = _text(entry, "definition", where, problems)
    definition = next((d for d in graph.definitions if d.id == definition_id), None)
    if definition_id is not None and definition is None:
        problems.append(f"{where}.definition: no module definition has id {definition_id!r}")
    members = entry.get("members")
    if not isinstance(members, dict) or not members:
        problems.append(f"{where}.members: expected an object {{role: block id}} with at least "
                        f"one block, got {show(members)}")
        members = {}
    types = {b.role: b.type for b in definition.blocks} if definition else {}
    for role, block_id in members.items():
        place = f"{where}.members.{role}"
        if definition is not None and role not in types:
            problems.append(f"{place}: the definition {definition.name!r} has no block {role!r}")
        elif not isinstance(block_id, str):
            problems.append(f"{place}: expected a block id, got {show(block_id)}")
        elif block_id not in graph:
            if block_id not in declared:
                problems.append(f"{place}: no block has id {block_id!r}")
        elif block_id in owners:
            problems.append(f"{place}: block {block_id!r} is in {owners[block_id]} too; a block "
                            "belongs to one module at most")
        elif definition is not None and graph.block(block_id).type != types[role]:
            problems.append(f"{place}: {graph.block(block_id).label} cannot be {role!r}, "
                            f"which is a {types[role]}")
        else:
            owners[block_id] = where
    collapsed = entry.get("collapsed", False)
    if not isinstance(collapsed, bool):
        problems.append(f"{where}.collapsed: expected true or false, got {show(collapsed)}")
    if len(problems) > before or None in (module_id, name, definition_id):
        return None
    return ModuleInstance(str(module_id), str(name), str(definition_id), dict(members),
                          collapsed)


def _text(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    """A required name or id of 1 to 64 characters."""
    if key not in entry:
        problems.append(f"{where}: missing field {key!r}")
        return None
    value = entry[key]
    if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_NAME:
        problems.append(f"{where}.{key}: expected a text of 1 to {MAX_NAME} characters, "
                        f"got {show(value)}")
        return None
    return value
