"""One-click repairs in words, and every repair of a network at once (Fix all).

A Diagnostic may carry a machine-readable repair; `edits.repair` carries out the ones that
change the graph (`GRAPH_ACTIONS`). The window's fix buttons (the badge popup, the Problems
dock, the block menu, the inspector) offer exactly the diagnostics `can_repair` accepts, name
the undo step and the status-bar message with `describe`, and Fix all runs `repair_all`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnstudio.core import edits, registry
from cnnstudio.core.analysis import Diagnostic, analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.history import record
from cnnstudio.core.params import format_value

# The repair actions edits.repair carries out; training-setting repairs ("set_setting") are the
# Training page's, not the graph's.
GRAPH_ACTIONS = frozenset({"set_param", "insert_before"})
MAX_REPAIRS = 200  # Fix all stops here even if repairs kept bringing up new problems
SHOWN_IN_SUMMARY = 3


@dataclass(frozen=True)
class RepairText:
    command: str  # the undo step: "Insert Flatten before 'fc1'"
    done: str  # the status bar afterwards: "Inserted Flatten before 'fc1'"


def can_repair(diagnostic: Diagnostic) -> bool:
    """Whether a click can carry out this diagnostic's repair on the graph."""
    repair = diagnostic.repair
    return (diagnostic.block_id is not None and bool(repair)
            and repair.get("action") in GRAPH_ACTIONS)  # type: ignore[union-attr]


def describe(graph: Graph, diagnostic: Diagnostic) -> RepairText:
    """What the repair does, naming the block and the values: for the undo step and the status
    bar. Falls back to the diagnostic's fix text for a block or action it does not know."""
    repair = dict(diagnostic.repair or {})
    block = graph.block(diagnostic.block_id) if diagnostic.block_id in graph else None
    if block is not None and repair.get("action") == "set_param":
        block_type = registry.get(block.type)
        param = str(repair.get("param"))
        title = block_type.param(param).title.lower() if block_type.has_param(param) else param
        text = f"Set {title} of '{block.name}' to {format_value(repair.get('value'))}"
        return RepairText(text, text)
    inserted = str(repair.get("type", ""))
    if block is not None and repair.get("action") == "insert_before" and registry.is_known(
            inserted):
        what = registry.get(inserted).display_name
        where = f"before '{block.name}'"
        if len(graph.input_edges(block.id)) > 1:
            where = f"before input {int(repair.get('input_index', 0)) + 1} of '{block.name}'"
        return RepairText(f"Insert {what} {where}", f"Inserted {what} {where}")
    fix = diagnostic.fix or "the suggested repair"
    return RepairText(f"Fix: {fix}", f"Fixed: {fix}")


def repairable(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if can_repair(d)]


def repair_all(graph: Graph) -> list[RepairText]:
    """Carry out every one-click repair (run inside one `Document.edit`: one undo step).

    Repairs can interact (two on one block, or one whose fix removes a problem further down),
    so the graph is analysed again after each one and only a repair the network still needs is
    carried out. A repair that fails leaves nothing behind and is not tried again.
    """
    done: list[RepairText] = []
    tried: list[Diagnostic] = []
    for _ in range(MAX_REPAIRS):
        pending = [d for d in repairable(analyze(graph).diagnostics) if d not in tried]
        if not pending:
            break
        diagnostic = pending[0]
        tried.append(diagnostic)
        text = describe(graph, diagnostic)
        try:
            record(graph, lambda g: edits.repair(g, diagnostic))
        except GraphError:
            continue
        done.append(text)
    return done


def summary(done: list[RepairText]) -> str:
    """The status-bar line after Fix all."""
    if not done:
        return "No problem has a one-click fix"
    if len(done) == 1:
        return done[0].done
    shown = "; ".join(text.done for text in done[:SHOWN_IN_SUMMARY])
    more = f"; and {len(done) - SHOWN_IN_SUMMARY} more" if len(done) > SHOWN_IN_SUMMARY else ""
    return f"Fixed {len(done)} problems: {shown}{more}"
