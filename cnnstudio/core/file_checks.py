"""The checks every part of a project file shares: a value shown in a message, a list field,
a block's type, parameters and position, each problem located ("blocks[3].params.kernel: ...").

`project.py` reads the network with them and `module_files.py` the module definitions, so a
block inside a definition is checked exactly as a block of the network.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from cnnstudio.core import registry

MAX_COORDINATE = 1e9


def show(value: Any) -> str:
    """Short text for a value in a message: 'abc', [0, 3], true, null, NaN."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)[:200]
        except (TypeError, ValueError, RecursionError):
            text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def list_field(
    data: dict[str, Any], key: str, limit: int, problems: list[str], where: str = ""
) -> list[Any] | None:
    """data[key] when it is a list of at most `limit` items; else None and a problem, located
    at `where` (an object inside the file, such as "modules") when given."""
    place = f"{where}.{key}" if where else key
    if key not in data:
        problems.append(f"{where + ': ' if where else ''}missing field {key!r}")
        return None
    value = data[key]
    if not isinstance(value, list):
        problems.append(f"{place}: expected a list, got {show(value)}")
        return None
    if len(value) > limit:
        problems.append(f"{place}: a project holds at most {limit:,} {key}, "
                        f"this one {len(value):,}")
        return None
    return value


def ordered_params(type_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """A block's parameters as a file holds them: in the order the block type declares them
    (any others after), each value copied."""
    names = [p.name for p in registry.get(type_id).params if p.name in params]
    names += [n for n in params if n not in names]
    return {n: copy.deepcopy(params[n]) for n in names}


def read_block_type(entry: dict[str, Any], where: str, problems: list[str]) -> Any:
    if "type" not in entry:
        problems.append(f"{where}: missing field 'type'")
        return None
    type_id = entry["type"]
    if not isinstance(type_id, str):
        problems.append(f"{where}.type: expected a block type name, got {show(type_id)}")
        return None
    if not registry.is_known(type_id):
        problems.append(f"{where}.type: {registry.UnknownBlockType(type_id)}")
        return None
    block_type = registry.get(type_id)
    version = entry.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"{where}.version: expected a positive integer, got {show(version)}")
    elif version > block_type.version:
        problems.append(
            f"{where}.version: this {block_type.display_name} block was saved by a newer CNN "
            f"Studio ({type_id} version {version}; this version knows {type_id} version "
            f"{block_type.version}): update CNN Studio to open it"
        )
        return None
    return block_type


def read_block_params(
    entry: dict[str, Any], where: str, block_type: Any, problems: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """The block's parameters, checked, and the names of those the file left out."""
    params = entry.get("params", {})
    if not isinstance(params, dict):
        problems.append(f"{where}.params: expected an object, got {show(params)}")
        return (block_type.defaults() if block_type else {}), []
    if block_type is None:
        return {}, []
    values, found = block_type.normalize(params)
    problems.extend(f"{where}.params.{param}: {message}" for param, message in found)
    # a parameter added after the file was written takes its default without a note: the
    # default is what the block did before the parameter existed
    return values, [spec.name for spec in block_type.params
                    if spec.name not in params and spec.name not in block_type.added_params]


def read_position(entry: dict[str, Any], where: str, problems: list[str]) -> tuple[float, float]:
    position = entry.get("position", [0.0, 0.0])
    ok = (
        isinstance(position, list)
        and len(position) == 2
        and all(is_number(v) and math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in position)
    )
    if not ok:
        problems.append(f"{where}.position: expected two finite numbers between -1e9 and 1e9, "
                        f"got {show(position)}")
        return 0.0, 0.0
    return float(position[0]), float(position[1])
