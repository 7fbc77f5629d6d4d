"""Reusable modules: make, insert, shared and detached edits, dissolve, undo, files, totals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstudio.core import modules
from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.history import record
from cnnstudio.core.project import (
    Project,
    ProjectError,
    load_project,
    project_from_dict,
    project_to_dict,
    save_project,
)
from cnnstudio.core.templates import build_template


def residual(g: Graph, source: str, tag: str) -> list[str]:
    """conv → batch norm → add (+ source) → relu, fed by `source`: one input feeding two
    blocks (the conv and the shortcut port of the add), one output."""
    conv, norm = g.chain([("Conv2D", {"filters": 8, "padding": "same"}, f"{tag}.conv"),
                          ("BatchNorm", {}, f"{tag}.bn")], after=source, x=0, y=200)
    add = g.add_block("Add", name=f"{tag}.add", position=(0, 420))
    g.connect(norm.id, add.id, 0)
    g.connect(source, add.id, 1)
    (relu,) = g.chain([("Activation", {"function": "relu"}, f"{tag}.relu")], after=add.id,
                      y=530)
    return [conv.id, norm.id, add.id, relu.id]


def residual_net() -> tuple[Graph, list[str], list[str]]:
    """Input → stem → two residual blocks → pooling → Dense → Output."""
    g = Graph()
    _, stem = g.chain([("Input", {"channels": 3, "height": 16, "width": 16}),
                       ("Conv2D", {"filters": 8, "padding": "same"}, "stem")])
    first = residual(g, stem.id, "block1")
    second = residual(g, first[-1], "block2")
    g.chain([("Pooling", {"mode": "global_average"}), ("Dense", {"units": 10}), ("Output", {})],
            after=second[-1])
    return g, first, second


def snapshot(g: Graph) -> dict[str, Any]:
    return project_to_dict(Project.new(g))


def block_params(g: Graph, block_id: str) -> dict[str, Any]:
    return dict(g.block(block_id).params)


# -- making a module --------------------------------------------------------------------------


def test_a_selection_becomes_a_definition_and_its_first_instance():
    g, first, _ = residual_net()
    before = analyze(g)
    module = modules.make_module(g, reversed(first), "Residual")
    definition = g.definition(module.definition)
    assert (module.name, definition.name) == ("Residual", "Residual")
    assert definition.roles == ["conv", "bn", "add", "relu"]  # names without "block1."
    assert dict(module.members) == dict(zip(definition.roles, first))
    assert [(e.role, e.port) for e in definition.inputs] == [("conv", 0), ("add", 1)]
    assert definition.output == "relu"
    assert [(w.src, w.dst, w.port) for w in definition.connections] == [
        ("conv", "bn", 0), ("bn", "add", 0), ("add", "relu", 0)]
    assert definition.block("conv").params["filters"] == 8
    assert definition.block("conv").offset == (0.0, 0.0)
    assert definition.block("relu").offset == (0.0, 330.0)
    assert all(g.module_of(b).id == module.id for b in first)
    assert g.module_of(g.find("stem").id) is None
    after = analyze(g)  # the graph stays flat: the numbers do not change
    assert after.total_params == before.total_params and after.ok


@pytest.mark.parametrize("pick, message", [
    (lambda g, a, b: [a[0]], "select at least two blocks to make a module"),
    (lambda g, a, b: [g.find("input").id, g.find("stem").id],
     "Input 'input' cannot be inside a module"),
    (lambda g, a, b: [b[-1], g.find("pool1").id, g.find("fc1").id, g.find("output").id],
     "Output 'output' cannot be inside a module"),
    (lambda g, a, b: [a[0], b[0]], "the selection is not connected: block2.conv is not wired"),
    (lambda g, a, b: [a[1], a[2]],
     "the selection has 2 inputs from outside: block1.conv, stem; a module takes one"),
    (lambda g, a, b: [g.find("stem").id, a[0]],
     "the selection has 2 outputs leaving it: stem, block1.conv; a module gives one"),
])
def test_a_selection_that_cannot_be_a_module_is_refused_with_the_reason(pick, message):
    g, first, second = residual_net()
    before = snapshot(g)
    ids = pick(g, first, second)
    assert modules.selection_problem(g, ids).startswith(message)
    with pytest.raises(GraphError, match=message.split(":")[0]):
        record(g, lambda graph: modules.make_module(graph, ids, "m"))
    assert snapshot(g) == before


def test_a_block_in_a_module_cannot_join_another_and_a_dangling_branch_is_refused():
    g, first, _ = residual_net()
    modules.make_module(g, first, "Residual")
    assert modules.selection_problem(g, [g.find("stem").id, first[0]]) == (
        "Conv2D 'block1.conv' is already in module 'Residual'; dissolve that module first")
    spare = g.add_block("Dropout", name="spare")
    g.connect(first[0], spare.id)
    h, first_h, _ = residual_net()
    h_spare = h.add_block("Dropout", name="spare")
    h.connect(first_h[0], h_spare.id)
    assert modules.selection_problem(h, [*first_h, h_spare.id]) == (
        "the output of spare goes nowhere; a module gives one output, from block1.relu")


# -- inserting, shared and detached edits -----------------------------------------------------


def test_an_inserted_instance_copies_the_definition_and_wires_in():
    g, first, _ = residual_net()
    made = modules.make_module(g, first, "Residual")
    before_blocks = {b.id for b in g.blocks}
    new = modules.insert_module(g, made.definition, (600.0, 100.0))
    assert new.name == "Residual 2" and new.definition == made.definition
    assert not set(new.members.values()) & before_blocks
    conv, relu = g.block(new.members["conv"]), g.block(new.members["relu"])
    assert (conv.name, conv.x, conv.y) == ("Residual 2/conv", 600.0, 100.0)
    assert (relu.x, relu.y) == (600.0, 430.0)
    assert g.inputs_of(new.members["add"]) == [new.members["bn"]]  # shortcut not wired yet
    # wire it between the second block and the pooling: the network still analyses cleanly
    pool = g.find("pool1")
    g.disconnect(g.input_edges(pool.id)[0])
    modules.connect_input(g, new.id, g.find("block2.relu").id)
    g.connect(modules.output_block(g, new.id), pool.id)
    assert g.inputs_of(new.members["add"]) == [new.members["bn"], g.find("block2.relu").id]
    analysis = analyze(g)
    assert analysis.ok
    assert analysis.blocks[new.members["relu"]].output_shape == (8, 16, 16)


def test_a_shared_edit_reaches_every_instance_and_the_definition():
    g, first, second = residual_net()
    one = modules.make_module(g, first, "Residual")
    two = modules.make_module(g, second, "Residual", share=True)
    assert two.definition == one.definition and len(g.definitions) == 1
    modules.set_member_params(g, second[0], {"filters": 8, "kernel": 5}, shared=True)
    assert block_params(g, first[0])["kernel"] == [5, 5]
    assert block_params(g, second[0])["kernel"] == [5, 5]
    assert g.definition(one.definition).block("conv").params["kernel"] == [5, 5]
    third = modules.insert_module(g, one.definition, (900, 0))
    assert block_params(g, third.members["conv"])["kernel"] == [5, 5]


def test_an_edit_of_this_instance_only_detaches_it_into_its_own_definition():
    g, first, second = residual_net()
    one = modules.make_module(g, first, "Residual")
    two = modules.make_module(g, second, "Residual", share=True)
    modules.set_member_params(g, second[1], {"momentum": 0.3}, shared=False)
    assert block_params(g, second[1])["momentum"] == 0.3
    assert block_params(g, first[1])["momentum"] == 0.1
    own = g.module(two.id).definition
    assert own != one.definition and g.definition(own).name == "Residual 2"
    assert g.definition(own).block("bn").params["momentum"] == 0.3
    assert g.definition(one.definition).block("bn").params["momentum"] == 0.1
    assert g.definition(own).structure()[1:] == g.definition(one.definition).structure()[1:]
    # alone with its definition now: an instance-only edit takes the definition along
    modules.set_member_params(g, second[1], {"momentum": 0.4}, shared=False)
    assert g.module(two.id).definition == own
    assert g.definition(own).block("bn").params["momentum"] == 0.4


def test_detach_gives_a_module_a_definition_of_what_it_is_now():
    g, first, second = residual_net()
    one = modules.make_module(g, first, "Residual")
    two = modules.make_module(g, second, "Residual", share=True)
    g.set_params(second[0], {"filters": 8, "stride": 1, "bias": False})  # a direct edit
    assert modules.differing_roles(g, two.id) == ["conv"]
    definition = modules.detach(g, two.id)
    assert g.module(two.id).definition == definition.id != one.definition
    assert definition.block("conv").params["bias"] is False
    assert modules.differing_roles(g, two.id) == []
    assert g.definition(one.definition).block("conv").params["bias"] is True


def test_removing_a_member_leaves_the_module_and_the_last_one_removes_it():
    g, first, _ = residual_net()
    module = modules.make_module(g, first[:2], "Pair")  # conv → bn
    edit, _ = record(g, lambda graph: graph.remove_block(first[1]))
    assert dict(g.module(module.id).members) == {"conv": first[0]}
    edit.undo(g)
    assert dict(g.module(module.id).members) == {"conv": first[0], "bn": first[1]}
    record(g, lambda graph: (graph.remove_block(first[0]), graph.remove_block(first[1])))
    assert g.modules == [] and len(g.definitions) == 1  # the definition stays for reuse


def test_structural_edits_inside_a_module_detach_it():
    g, first, second = residual_net()
    one = modules.make_module(g, first, "Residual")
    two = modules.make_module(g, second, "Residual", share=True)
    modules.remove_member(g, second[1])  # conv → add directly now
    own = g.definition(g.module(two.id).definition)
    assert own.id != one.definition and own.roles == ["conv", "add", "relu"]
    assert [(w.src, w.dst, w.port) for w in own.connections] == [("conv", "add", 0),
                                                                  ("add", "relu", 0)]
    assert len(g.definition(one.definition).roles) == 4
    extra = g.add_block("Dropout", {"rate": 0.1}, name="drop")
    relu = g.module(two.id).members["relu"]
    for edge in g.output_edges(relu):
        g.disconnect(edge)
        g.connect(extra.id, edge.dst, edge.port)
    g.connect(relu, extra.id)
    modules.add_member(g, two.id, extra.id)
    own = g.definition(g.module(two.id).definition)
    assert own.roles == ["conv", "add", "relu", "drop"] and own.output == "drop"
    with pytest.raises(GraphError, match="cannot join module 'Residual'"):
        modules.add_member(g, one.id, g.find("fc1").id)


def test_dissolve_keeps_the_blocks_and_drops_the_grouping():
    g, first, _ = residual_net()
    module = modules.make_module(g, first, "Residual")
    wires = sorted(g.edges)
    modules.dissolve(g, module.id)
    assert g.modules == [] and all(g.module_of(b) is None for b in first)
    assert sorted(g.edges) == wires and all(b in g for b in first)


# -- undo and redo ----------------------------------------------------------------------------


def _made(g: Graph) -> modules.ModuleInstance:
    return modules.make_module(g, [g.find(f"block1.{r}").id for r in ("conv", "bn", "add",
                                                                       "relu")], "Residual")


def _shared(g: Graph) -> modules.ModuleInstance:
    one = _made(g)
    modules.make_module(g, [g.find(f"block2.{r}").id for r in ("conv", "bn", "add", "relu")],
                        "Residual", share=True)
    return one


OPERATIONS: dict[str, tuple[Callable[[Graph], Any], Callable[[Graph], Any]]] = {
    # name: (set-up, the recorded operation)
    "make": (lambda g: None, _made),
    "insert": (_made, lambda g: modules.insert_module(g, g.definitions[0].id, (500, 0))),
    "collapse": (_made, lambda g: modules.set_module_collapsed(g, g.modules[0].id, True)),
    "rename": (_made, lambda g: modules.rename_module(g, g.modules[0].id, "Shortcut")),
    "rename definition": (_made, lambda g: modules.rename_definition(
        g, g.definitions[0].id, "Shortcut")),
    "shared edit": (_shared, lambda g: modules.set_member_params(
        g, g.find("block2.conv").id, {"filters": 8, "kernel": 1}, shared=True)),
    "instance edit": (_shared, lambda g: modules.set_member_params(
        g, g.find("block2.conv").id, {"filters": 8, "kernel": 1}, shared=False)),
    "detach": (_shared, lambda g: modules.detach(g, g.modules[1].id)),
    "dissolve": (_made, lambda g: modules.dissolve(g, g.modules[0].id)),
    "remove member": (_shared, lambda g: modules.remove_member(g, g.find("block2.bn").id)),
    "delete block": (_made, lambda g: g.remove_block(g.find("block1.relu").id)),
    "delete every block": (_made, lambda g: [g.remove_block(b) for b in
                                             list(g.modules[0].members.values())]),
}


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_module_operation_undoes_and_redoes_exactly(name):
    set_up, operation = OPERATIONS[name]
    g, _, _ = residual_net()
    set_up(g)
    before = snapshot(g)
    edit, _ = record(g, operation)
    after = snapshot(g)
    assert after != before and not edit.empty
    edit.undo(g)
    assert snapshot(g) == before
    edit.redo(g)
    assert snapshot(g) == after
    edit.undo(g)
    assert snapshot(g) == before


def _first_module(g: Graph) -> str:
    return g.modules[0].id


def _member(g: Graph, index: int) -> str:
    ids = [b for m in g.modules for b in m.members.values()]
    return ids[index % len(ids)] if ids else "none"


STEPS: dict[str, Callable[[Graph], Any]] = {
    "insert": lambda g: modules.insert_module(g, g.definitions[-1].id, (700, 0)),
    "collapse": lambda g: modules.set_module_collapsed(g, _first_module(g), True),
    "rename": lambda g: modules.rename_module(g, _first_module(g), "Renamed"),
    "shared": lambda g: modules.set_member_params(g, _member(g, 1), {"momentum": 0.2},
                                                  shared=True),
    "own": lambda g: modules.set_member_params(g, _member(g, 5), {"momentum": 0.3},
                                               shared=False),
    "detach": lambda g: modules.detach(g, g.modules[-1].id),
    "dissolve": lambda g: modules.dissolve(g, _first_module(g)),
    "remove member": lambda g: modules.remove_member(g, _member(g, 2)),
    "delete block": lambda g: g.remove_block(_member(g, 3)),
}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=6))
def test_any_sequence_of_module_edits_unwinds(names):
    g, _, _ = residual_net()
    _shared(g)
    states, edits = [snapshot(g)], []
    for name in names:
        try:
            edit, _ = record(g, STEPS[name])
        except (GraphError, IndexError):
            assert snapshot(g) == states[-1]  # a refused edit changes nothing
            continue
        edits.append(edit)
        states.append(snapshot(g))
    for edit, state in zip(reversed(edits), reversed(states[:-1])):
        edit.undo(g)
        assert snapshot(g) == state
    for edit, state in zip(edits, states[1:]):
        edit.redo(g)
        assert snapshot(g) == state


def test_copy_holds_the_modules_and_is_independent():
    g, first, _ = residual_net()
    module = modules.make_module(g, first, "Residual", collapsed=True)
    other = g.copy()
    assert other.modules == g.modules and other.definitions == g.definitions
    modules.rename_module(other, module.id, "Changed")
    other.remove_block(first[0])
    assert g.module(module.id).name == "Residual" and len(g.module(module.id).members) == 4
    assert snapshot(g.copy()) == snapshot(g)


# -- project files ----------------------------------------------------------------------------


def test_modules_round_trip_through_a_file(tmp_path: Path):
    g, first, second = residual_net()
    modules.make_module(g, first, "Residual", collapsed=True)
    modules.make_module(g, second, "Residual", share=True)
    path = tmp_path / "res.cnnproj"
    save_project(Project.new(g, name="res"), path)
    loaded = load_project(path)
    assert loaded.graph.modules == g.modules and loaded.graph.definitions == g.definitions
    assert loaded.graph.module_of(second[2]).name == "Residual 2"
    again = tmp_path / "again.cnnproj"
    save_project(loaded, again)
    assert again.read_bytes() == path.read_bytes()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data)[6:9] == ["connections", "modules", "dataset"]


def test_files_without_modules_are_written_as_before_and_older_files_open(tmp_path: Path):
    g, _, _ = residual_net()
    document = project_to_dict(Project.new(g))
    assert list(document) == ["format", "schema_version", "name", "description", "template",
                              "blocks", "connections", "dataset", "training"]
    older = project_from_dict(document)  # a file written before modules existed
    assert older.graph.modules == [] and older.graph.definitions == []
    assert snapshot(older.graph) == snapshot(g)


def _valid_document() -> dict[str, Any]:
    g, first, second = residual_net()
    modules.make_module(g, first, "Residual")
    modules.make_module(g, second, "Residual", share=True)
    return project_to_dict(Project.new(g))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = document
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value
    return change


@pytest.mark.parametrize("change, problem", [
    (_set("modules", []), "modules: expected an object, got []"),
    (_set("modules/instances/0/members/conv", "nowhere"),
     "modules.instances[0].members.conv: no block has id 'nowhere'"),
    (_set("modules/instances/1/definition", "definition_9"),
     "modules.instances[1].definition: no module definition has id 'definition_9'"),
    (_set("modules/instances/1/members/conv", "conv2d_2"),
     "modules.instances[1].members.conv: block 'conv2d_2' is in modules.instances[0] too"),
    (_set("modules/instances/0/members/conv", "batchnorm_1"),
     "modules.instances[0].members.conv: BatchNorm 'block1.bn' cannot be 'conv', which is a "
     "Conv2D"),
    (_set("modules/instances/0/members/extra", "conv2d_1"),
     "modules.instances[0].members.extra: the definition 'Residual' has no block 'extra'"),
    (_set("modules/definitions/0/connections/0/to", "ghost"),
     "modules.definitions[0].connections[0].to: the definition has no block 'ghost'"),
    (_set("modules/definitions/0/output", "ghost"),
     "modules.definitions[0].output: the definition has no block 'ghost'"),
    (_set("modules/definitions/0/blocks/0/params/filters", -3),
     "modules.definitions[0].blocks[0].params.filters:"),
    (lambda d: d["modules"]["definitions"][0]["connections"].append(
        {"from": "relu", "to": "conv", "port": 0}),
     "modules.definitions[0]: connecting Activation 'Residual/relu' to Conv2D 'Residual/conv' "
     "would make a cycle"),
    (_set("modules/instances/0/collapsed", "yes"),
     "modules.instances[0].collapsed: expected true or false, got 'yes'"),
])
def test_damaged_module_sections_are_refused_with_located_problems(change, problem):
    document = _valid_document()
    change(document)
    with pytest.raises(ProjectError) as caught:
        project_from_dict(document)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


# -- totals -----------------------------------------------------------------------------------


def test_module_totals_are_the_sums_of_its_rows():
    g, first, _ = residual_net()
    module = modules.make_module(g, first, "Residual")
    analysis = analyze(g)
    summary = modules.module_summary(g, analysis, module.id)
    rows = [analysis.blocks[b] for b in first]
    assert summary.trainable == sum(r.trainable for r in rows) > 0
    assert summary.non_trainable == sum(r.non_trainable for r in rows) == 16  # BN statistics
    assert summary.params == sum(r.params for r in rows)
    assert summary.total_params == sum(r.total_params for r in rows)
    assert summary.macs == sum(r.macs for r in rows) > 0
    assert summary.blocks == 4 and summary.diagnostics == ()
    assert summary.input_shape == summary.output_shape == (8, 16, 16)
    g.set_params(first[0], {"filters": 4})  # the Add's inputs no longer match
    summary = modules.module_summary(g, analyze(g), module.id)
    assert summary.errors and all(d.block_id in first for d in summary.errors)


def test_templates_group_their_blocks_without_changing_a_number():
    googlenet = build_template("googlenet")
    names = [m.name for m in googlenet.modules]
    assert names == [f"inception ({n})" for n in ("3a", "3b", "4a", "4b", "4c", "4d", "4e",
                                                   "5a", "5b")]
    assert all(m.collapsed for m in googlenet.modules)
    assert len(googlenet.definitions) == 9 and analyze(googlenet).total_params == 13_378_280
    assert sum(len(m.members) for m in googlenet.modules) == 9 * 8
    resnet = build_template("resnet18")
    shared = {d.name: [m.name for m in resnet.instances_of(d.id)] for d in resnet.definitions}
    assert shared["BasicBlock 64→64"] == ["layer1.0", "layer1.1"]
    assert shared["BasicBlock 64→128, stride 2"] == ["layer2.0"]
    assert analyze(resnet).total_params == 11_699_112
    mobilenet = build_template("mobilenet-v2")
    assert len(mobilenet.modules) == 17 and len(mobilenet.definitions) == 12
    assert [m.name for m in mobilenet.instances_of(
        mobilenet.module_of(mobilenet.find("features.9.add").id).definition)] == [
        "features.8", "features.9", "features.10"]
    for template_id in ("inception-small", "inception-v3-module", "resnet50"):
        graph = build_template(template_id)
        assert graph.modules and all(
            modules.module_summary(graph, analyze(graph), m.id).output_shape for m in
            graph.modules)


def test_compiled_model_is_the_same_with_and_without_modules():
    torch_build = pytest.importorskip("cnnstudio.nn.build")
    g, first, second = residual_net()
    flat = torch_build.build_model(g.copy())
    modules.make_module(g, first, "Residual", collapsed=True)
    modules.make_module(g, second, "Residual", share=True)
    grouped = torch_build.build_model(g)
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(grouped) == count(flat) == analyze(g).learnable_params
    assert sorted(dict(grouped.named_modules())) == sorted(dict(flat.named_modules()))
