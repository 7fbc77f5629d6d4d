"""Copy and paste of blocks: selected blocks and the wires between them, as JSON.

The system clipboard carries the JSON twice, under a custom mime type and as text, so paste
works within a window, between windows and through a text editor. Pasting gives the blocks new
ids (and new names where the old ones are taken) and offsets them by +30, +30.

A module whose blocks are all copied (a selected card) travels as its blocks plus a note of
its definition; pasted into a project holding that definition it becomes a new instance of it
(core/modules.py `insert_module`, same collapsed state, blocks where the copied ones stood),
elsewhere its blocks come as loose blocks.
"""

from __future__ import annotations

import atexit
import json
from typing import Any

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication

from cnnstudio.core import modules, registry
from cnnstudio.core.graph import Graph, GraphError

CLIPBOARD_MIME = "application/x-cnnstudio-blocks"
FORMAT = "cnnstudio-blocks"
PASTE_OFFSET = 30.0


def serialise(graph: Graph, block_ids: list[str]) -> dict[str, Any] | None:
    """The blocks (in graph order) and the wires among them; None when nothing is given."""
    chosen = set(block_ids)
    blocks = [b for b in graph.blocks if b.id in chosen]
    if not blocks:
        return None
    wires = [e for e in graph.edges if e.src in chosen and e.dst in chosen]
    wires.sort(key=lambda e: (e.dst, e.port))
    data: dict[str, Any] = {
        "format": FORMAT,
        "blocks": [
            {"id": b.id, "type": b.type, "name": b.name, "params": json.loads(json.dumps(b.params)),
             "position": [b.x, b.y], "collapsed": b.collapsed}
            for b in blocks
        ],
        "connections": [{"from": e.src, "to": e.dst, "port": e.port} for e in wires],
    }
    whole = [m for m in graph.modules if set(m.members.values()) <= chosen]
    if whole:
        data["modules"] = [
            {"name": m.name, "definition": m.definition,
             "definition_name": graph.definition(m.definition).name,
             "collapsed": m.collapsed, "members": dict(m.members)}
            for m in whole
        ]
    return data


def to_mime(data: dict[str, Any]) -> QMimeData:
    text = json.dumps(data, indent=1)
    mime = QMimeData()
    mime.setData(CLIPBOARD_MIME, text.encode("utf-8"))
    mime.setText(text)
    return mime


_release_registered = False


def _release_clipboard() -> None:
    """Hand our data back before Python shuts down.

    The clipboard owns the QMimeData we gave it; Qt's own exit handlers delete it after the
    interpreter has finalised, and PySide6 then crashes (segmentation fault) destroying its
    Python wrapper. Clearing it from a Python atexit hook, while Python still runs, avoids that.
    """
    clipboard = QGuiApplication.clipboard() if QGuiApplication.instance() else None
    if clipboard is not None and clipboard.ownsClipboard():
        clipboard.clear()
    elif clipboard is not None and clipboard.mimeData() is not None and \
            clipboard.mimeData().hasFormat(CLIPBOARD_MIME):
        clipboard.clear()


def put(data: dict[str, Any]) -> None:
    global _release_registered
    if not _release_registered:
        atexit.register(_release_clipboard)
        _release_registered = True
    QGuiApplication.clipboard().setMimeData(to_mime(data))


def read() -> dict[str, Any] | None:
    """Blocks on the clipboard, or None when it holds none."""
    mime = QGuiApplication.clipboard().mimeData()
    if mime is None:
        return None
    if mime.hasFormat(CLIPBOARD_MIME):
        text = bytes(mime.data(CLIPBOARD_MIME).data()).decode("utf-8", "replace")
    elif mime.hasText():
        text = mime.text()
    else:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def paste(graph: Graph, data: dict[str, Any], offset: float = PASTE_OFFSET) -> list[str]:
    """Add the blocks of `data` with new ids and their wires; returns the new ids.
    Raises GraphError for a damaged or foreign clipboard."""
    try:
        return _paste(graph, data, offset)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        if isinstance(err, GraphError):
            raise
        raise GraphError(f"the clipboard does not hold valid blocks ({err})") from None


def _paste(graph: Graph, data: dict[str, Any], offset: float) -> list[str]:
    new_ids: dict[str, str] = {}
    inside = _paste_modules(graph, data, offset, new_ids)
    used_names = {b.name for b in graph.blocks}
    for entry in data["blocks"]:
        if str(entry["id"]) in new_ids:
            continue  # pasted as a member of a new module instance
        type_id = str(entry["type"])
        if not registry.is_known(type_id):
            raise GraphError(f"unknown block type {type_id!r} on the clipboard")
        name = str(entry.get("name", ""))
        if not name or name in used_names:
            name = graph.new_name(type_id)
        used_names.add(name)
        x, y = (float(v) for v in entry.get("position", (0.0, 0.0)))
        block = graph.add_block(type_id, entry.get("params") or {}, name=name,
                                position=(x + offset, y + offset))
        if entry.get("collapsed"):
            graph.set_collapsed(block.id, True)
        new_ids[str(entry["id"])] = block.id
    wires = sorted(data.get("connections", []), key=lambda c: (str(c["to"]), int(c["port"])))
    for wire in wires:
        src, dst = new_ids.get(str(wire["from"])), new_ids.get(str(wire["to"]))
        if src is None or dst is None:
            continue
        module = inside.get(src)
        if module is not None and inside.get(dst) == module:
            continue  # the instance has its wires already
        graph.connect(src, dst)
    return list(new_ids.values())


def _paste_modules(graph: Graph, data: dict[str, Any], offset: float,
                   new_ids: dict[str, str]) -> dict[str, str]:
    """New instances of the copied modules whose definitions this graph holds, their blocks
    where the copied ones stood (moved by `offset`) with the copied parameters; fills
    `new_ids` (copied id -> new id) and returns {new block id: new module id}."""
    entries = {str(entry["id"]): entry for entry in data["blocks"]}
    inside: dict[str, str] = {}
    for note in data.get("modules", []):
        members = {str(role): str(old) for role, old in dict(note["members"]).items()}
        if not _same_definition(graph, note, members, entries):
            continue
        module = modules.insert_module(graph, str(note["definition"]), (0.0, 0.0),
                                       name=str(note["name"]), collapsed=bool(note["collapsed"]))
        for role, old in members.items():
            block_id, entry = module.members[role], entries[old]
            x, y = (float(v) for v in entry.get("position", (0.0, 0.0)))
            graph.move(block_id, x + offset, y + offset)
            params = entry.get("params") or {}
            if params != graph.block(block_id).params:
                graph.set_params(block_id, params)
            new_ids[old] = block_id
            inside[block_id] = module.id
    return inside


def _same_definition(graph: Graph, note: dict[str, Any], members: dict[str, str],
                     entries: dict[str, Any]) -> bool:
    """Whether the graph holds the copied module's definition: same id and name, and a block
    of the same type for each copied role (else the blocks are pasted loose)."""
    try:
        definition = graph.definition(str(note["definition"]))
    except GraphError:
        return False
    types = {block.role: block.type for block in definition.blocks}
    return (definition.name == note.get("definition_name") and set(types) == set(members)
            and all(old in entries and entries[old]["type"] == types[role]
                    for role, old in members.items()))
