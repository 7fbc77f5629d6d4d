"""Graph editing: ids, names, wiring rules with reasons, events and copies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnstudio.core import modules, registry
from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Edge, EventKind, Graph, GraphError, GraphEvent, event_handlers
from cnnstudio.core.templates import build_template

PACKAGE = Path(__file__).resolve().parents[2] / "cnnstudio"
GRAPH_MODULE = PACKAGE / "core" / "graph.py"


def test_ids_are_stable_strings_and_names_course_like():
    g = Graph()
    a = g.add_block("Input")
    b = g.add_block("Conv2D")
    c = g.add_block("Conv2D")
    assert (a.id, b.id, c.id) == ("input_1", "conv2d_1", "conv2d_2")
    assert (a.name, b.name, c.name) == ("input", "conv1", "conv2")
    g.remove_block(b.id)
    assert g.add_block("Conv2D").id == "conv2d_1"


def test_defaults_are_filled_and_bad_params_refused():
    g = Graph()
    conv = g.add_block("Conv2D", {"filters": 8})
    assert conv.params == {**registry.get("Conv2D").defaults(), "filters": 8}
    with pytest.raises(GraphError, match="kernel: expected two positive integers"):
        g.add_block("Conv2D", {"kernel": [0, 3]})
    with pytest.raises(KeyError, match="unknown block type 'Conv3D'"):
        g.add_block("Conv3D")


def test_connection_rules_give_reasons():
    g = Graph()
    inp, conv, dense, out = g.chain([("Input", {}), ("Conv2D", {}), ("Dense", {}), ("Output", {})])
    other = g.add_block("Conv2D")
    assert "already has its input" in g.connection_problem(other.id, dense.id)
    assert "nothing can follow it" in g.connection_problem(out.id, other.id)
    assert "takes no input" in g.connection_problem(conv.id, inp.id)
    assert "cannot feed itself" in g.connection_problem(other.id, other.id)
    assert "already feeds" in g.connection_problem(inp.id, conv.id)
    with pytest.raises(GraphError):
        g.connect(out.id, other.id)


def test_merge_ports_keep_order_and_restore_exactly():
    g = Graph()
    inp = g.add_block("Input")
    branches = [g.add_block("Conv2D", {"padding": "same"}) for _ in range(3)]
    cat = g.add_block("Concatenate")
    for b in branches:
        g.connect(inp.id, b.id)
        g.connect(b.id, cat.id)
    assert g.inputs_of(cat.id) == [b.id for b in branches]
    middle = g.input_edges(cat.id)[1]
    g.disconnect(middle)
    g.connect(branches[1].id, cat.id)  # a new wire goes to the end
    assert g.inputs_of(cat.id) == [branches[0].id, branches[2].id, branches[1].id]
    g.disconnect(g.input_edges(cat.id)[2])
    g.restore_edge(middle)  # undo puts it back in its slot
    assert g.inputs_of(cat.id) == [b.id for b in branches]


def test_remove_returns_block_and_edges_for_undo():
    g = Graph()
    inp, conv, act = g.chain([("Input", {}), ("Conv2D", {}), ("Activation", {})])
    block, edges = g.remove_block(conv.id)
    assert block is conv and set(edges) == {Edge(inp.id, conv.id, 0), Edge(conv.id, act.id, 0)}
    g.insert(block)
    for e in edges:
        g.restore_edge(e)
    assert g.inputs_of(act.id) == [conv.id] and g.inputs_of(conv.id) == [inp.id]


def test_events_and_revision():
    g = Graph()
    seen = []
    unsubscribe = g.subscribe(lambda e: seen.append((e.kind, e.block_id)))
    conv = g.add_block("Conv2D")
    g.set_params(conv.id, {"filters": 3})
    g.rename(conv.id, "edge detector")
    g.move(conv.id, 10, 20)
    g.remove_block(conv.id)
    unsubscribe()
    g.add_block("Dense")
    assert [k for k, _ in seen] == [EventKind.BLOCK_ADDED, EventKind.PARAMS_CHANGED,
                                    EventKind.BLOCK_RENAMED, EventKind.BLOCK_MOVED,
                                    EventKind.BLOCK_REMOVED]
    assert g.revision == 6


def test_set_params_is_all_or_nothing():
    g = Graph()
    conv = g.add_block("Conv2D")
    with pytest.raises(GraphError, match="stride"):
        g.set_params(conv.id, {"filters": 5, "stride": 0})
    assert conv.params["filters"] == 32


def test_copy_is_deep_and_quiet():
    g = Graph()
    g.chain([("Input", {}), ("Conv2D", {"kernel": [3, 1]})])
    g.subscribe(lambda e: pytest.fail("copy must not notify the original's listeners"))
    other = g.copy()
    other.blocks[1].params["kernel"][0] = 9
    assert g.blocks[1].params["kernel"] == [3, 1]
    assert other.edges == g.edges


def test_topological_order_is_stable():
    g = Graph()
    inp = g.add_block("Input")
    a = g.add_block("Conv2D", {"padding": "same"})
    b = g.add_block("Conv2D", {"padding": "same"})
    add = g.add_block("Add")
    g.connect(inp.id, b.id)
    g.connect(inp.id, a.id)
    g.connect(b.id, add.id)
    g.connect(a.id, add.id)
    order, cyclic = g.topological_order()
    assert order == [inp.id, a.id, b.id, add.id] and cyclic == []


# -- roles: the Input, the main Output, what a block depends on ---------------------------------


def test_input_block_is_the_first_input_in_block_order_or_none():
    g = Graph()
    assert g.input_block() is None and g.input_blocks() == []
    g.add_block("Conv2D")
    first, second = g.add_block("Input"), g.add_block("Input")
    assert g.input_block() is first and g.input_blocks() == [first, second]
    g.remove_block(first.id)
    assert g.input_block() is second


def test_main_output_is_the_output_that_is_not_auxiliary():
    g = build_template("inception-small")
    main = g.main_output()
    aux = [b for b in g.output_blocks() if b is not main]
    assert main is not None and not main.params["auxiliary"] and main.is_main_output
    assert aux and all(b.params["auxiliary"] and b.is_auxiliary_output for b in aux)
    assert len(g.output_blocks()) == len(aux) + 1 and g.main_outputs() == [main]
    conv = g.blocks[1]
    assert not conv.is_main_output and not conv.is_auxiliary_output


def test_main_output_without_one_is_none_and_never_raises():
    g = Graph()
    assert g.main_output() is None and g.main_outputs() == []
    aux = g.add_block("Output", {"auxiliary": True})
    assert g.main_output() is None and g.output_blocks() == [aux]
    assert "no_main_output" in {d.code for d in analyze(g).diagnostics}


def test_with_several_main_outputs_the_first_in_block_order_is_the_one_analysis_keeps():
    g = Graph()
    g.add_block("Output", {"auxiliary": True}, name="aux")
    first = g.add_block("Output", name="first")
    second = g.add_block("Output", name="second")
    assert g.main_output() is first and g.main_outputs() == [first, second]
    extra = [d.block_id for d in analyze(g).diagnostics if d.code == "extra_main_output"]
    assert extra == [second.id]
    g.set_params(first.id, {"auxiliary": True})  # one edit, and the role moves
    assert g.main_output() is second


def test_ancestors_are_every_block_a_block_depends_on():
    g = Graph()
    inp, stem = g.chain([("Input", {}), ("Conv2D", {"padding": "same"})])
    left, right = (g.add_block("Conv2D", {"padding": "same"}) for _ in range(2))
    add = g.add_block("Add")
    for branch in (left, right):
        g.connect(stem.id, branch.id)
        g.connect(branch.id, add.id)
    head = g.chain([("Flatten", {}), ("Dense", {"units": 3}), ("Output", {})], after=add.id)
    side = g.chain([("Flatten", {}), ("Output", {"auxiliary": True})], after=left.id)
    assert g.ancestors(inp.id) == set()
    assert g.ancestors(add.id) == {inp.id, stem.id, left.id, right.id}
    assert g.ancestors(head[-1].id) == {inp.id, stem.id, left.id, right.id, add.id,
                                        head[0].id, head[1].id}
    assert g.ancestors(side[-1].id) == {inp.id, stem.id, left.id, side[0].id}
    assert right.id not in g.ancestors(side[-1].id)
    with pytest.raises(GraphError, match="no block with id 'nowhere'"):
        g.ancestors("nowhere")


def _python_files_outside_graph() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p != GRAPH_MODULE]


def _is_constant(node: ast.AST, values: set[str]) -> bool:
    return isinstance(node, ast.Constant) and node.value in values


def _reads_auxiliary(node: ast.AST) -> bool:
    """params.get("auxiliary", ...) or params["auxiliary"]."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "get" and bool(node.args) and \
            _is_constant(node.args[0], {"auxiliary"})
    return isinstance(node, ast.Subscript) and _is_constant(node.slice, {"auxiliary"})


def _compares_with_role(node: ast.AST) -> bool:
    """A comparison with the type name "Input" or "Output"."""
    return isinstance(node, ast.Compare) and any(
        _is_constant(side, {"Input", "Output"}) for side in (node.left, *node.comparators))


def _iterates_blocks(node: ast.AST) -> bool:
    """graph.blocks, or a local list of them called blocks."""
    return (isinstance(node, ast.Attribute) and node.attr == "blocks") or \
        (isinstance(node, ast.Name) and node.id == "blocks")


def role_rule_offences(path: Path) -> list[tuple[int, str]]:
    """(line, what) wherever a module re-writes the Input / main Output rule instead of asking
    the Graph: it reads the 'auxiliary' parameter, or picks blocks of `.blocks` by their type
    "Input" or "Output" (in a comprehension's condition or a for loop's body)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if _reads_auxiliary(node):
            found.append((node.lineno, "reads the 'auxiliary' parameter"))
        scans: list[ast.AST] = []
        if isinstance(node, ast.comprehension) and _iterates_blocks(node.iter):
            scans = list(node.ifs)
        elif isinstance(node, ast.For) and _iterates_blocks(node.iter):
            scans = list(node.body)
        if any(_compares_with_role(inner) for scan in scans for inner in ast.walk(scan)):
            found.append((node.iter.lineno, "picks Input or Output blocks by type"))
    return sorted(found)


def test_only_the_graph_decides_which_block_is_the_input_or_the_main_output():
    offences = [f"{path.relative_to(PACKAGE)}:{line} {what}"
                for path in _python_files_outside_graph()
                for line, what in role_rule_offences(path)]
    assert offences == [], "use Graph.input_block / main_output / output_blocks instead"


def test_the_role_check_finds_the_rule_written_again(tmp_path):
    rewritten = tmp_path / "rewritten.py"
    rewritten.write_text(
        "main = next(b for b in graph.blocks\n"
        "            if b.type == 'Output' and not b.params.get('auxiliary', False))\n"
        "for block in graph.blocks:\n"
        "    if block.type == 'Input':\n"
        "        source = block\n"
        "fine = [b for b in graph.blocks if b.type == 'Conv2D']\n"
        "blocks = graph.blocks\n"
        "inputs = [b for b in blocks if 'Input' == b.type]\n", encoding="utf-8")
    assert role_rule_offences(rewritten) == [(1, "picks Input or Output blocks by type"),
                                             (2, "reads the 'auxiliary' parameter"),
                                             (3, "picks Input or Output blocks by type"),
                                             (8, "picks Input or Output blocks by type")]


# -- typed events ------------------------------------------------------------------------------


def test_every_kind_of_edit_emits_its_typed_event():
    g = Graph()
    seen: list[GraphEvent] = []
    g.subscribe(seen.append)
    inp, conv, relu = g.chain([("Input", {}), ("Conv2D", {}), ("Activation", {})])
    g.set_params(conv.id, {"filters": 4})
    g.rename(conv.id, "c")
    g.set_collapsed(conv.id, True)
    g.move(conv.id, 5, 5)
    module = modules.make_module(g, [conv.id, relu.id], "pair")
    modules.rename_definition(g, module.definition, "pairs")
    modules.set_module_collapsed(g, module.id, True)
    modules.dissolve(g, module.id)
    g.remove_definition(module.definition)
    g.disconnect(g.edges[0])
    g.remove_block(conv.id)
    assert all(isinstance(e.kind, EventKind) for e in seen)
    assert {e.kind for e in seen} == set(EventKind)


def test_event_handlers_refuse_a_table_that_leaves_a_kind_out():
    def handle(event: GraphEvent) -> None:
        pass

    everything = {kind: handle for kind in EventKind}
    table = event_handlers("everything", everything)
    assert table == everything
    with pytest.raises(TypeError, match="missing: block_moved;"):
        event_handlers("view", {k: h for k, h in everything.items()
                                if k is not EventKind.BLOCK_MOVED})
    partial = event_handlers("view", {EventKind.BLOCK_ADDED: handle},
                             ignored=set(EventKind) - {EventKind.BLOCK_ADDED})
    assert partial[EventKind.BLOCK_ADDED] is handle and partial[EventKind.EDGE_ADDED] is None
    with pytest.raises(TypeError, match="both handled and ignored: block_added"):
        event_handlers("view", everything, ignored=[EventKind.BLOCK_ADDED])
    with pytest.raises(TypeError, match="not an EventKind: \\['block_moved'\\]"):
        event_handlers("view", {**everything, "block_moved": handle})  # type: ignore[dict-item]
    with pytest.raises(KeyError):
        table["block_added"]  # type: ignore[index]


def test_no_module_names_a_graph_event_by_its_string():
    values = {kind.value for kind in EventKind}
    found = [f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}"
             for path in _python_files_outside_graph()
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if _is_constant(node, values)]
    assert found == [], "compare event kinds with EventKind members, not strings"
