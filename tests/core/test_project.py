"""Project files: round trips, every kind of bad input located, atomic saving."""

from __future__ import annotations

import copy
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnstudio.core import project as project_module
from cnnstudio.core.graph import Graph
from cnnstudio.core.project import (
    MIGRATIONS,
    Project,
    ProjectError,
    dumps_project,
    load_project,
    project_from_dict,
    project_to_dict,
    save_project,
)
from cnnstudio.core.settings import DATASET, TRAINING


def sample_graph() -> Graph:
    """Input → stem conv → two branches → Concatenate (ports crossed) → head."""
    g = Graph()
    _, stem = g.chain(
        [("Input", {"channels": 1, "height": 28, "width": 28}), ("Conv2D", {"filters": 8,
          "padding": "same"}, "stem")]
    )
    (left,) = g.chain([("Conv2D", {"filters": 4, "kernel": [1, 1]}, "left")], after=stem.id,
                      x=-120.5, y=220)
    (right,) = g.chain([("Conv2D", {"filters": 6, "kernel": "3x1", "padding": "same",
                                    "activation": "relu"}, "right")],
                       after=stem.id, x=120.25, y=220)
    cat = g.add_block("Concatenate", name="cat", position=(0, 330))
    g.connect(right.id, cat.id, 0)
    g.connect(left.id, cat.id, 1)
    _, fc1, _ = g.chain([("Flatten", {}), ("Dense", {"units": 10}, "fc1"), ("Output", {})],
                        after=cat.id, y=440)
    g.set_collapsed(fc1.id, True)
    return g


def sample_project() -> Project:
    return Project.new(
        sample_graph(),
        name="Inception-ish",
        description="two branches\nüñíçødé",
        template="lenet5",
        dataset={"spec": "mnist:data", "validation_fraction": 0.1},
        training={"epochs": 3, "augment": "flip, rotate", "optimizer": "sgd"},
    )


def valid_doc() -> dict[str, Any]:
    return project_to_dict(sample_project())


# -- round trips ---------------------------------------------------------------------------


def test_round_trip_through_a_file(tmp_path: Path):
    original = sample_project()
    path = tmp_path / "net.cnnproj"
    save_project(original, path)
    loaded = load_project(path)
    assert project_to_dict(loaded) == project_to_dict(original)

    g = loaded.graph
    assert [b.id for b in g.blocks] == [b.id for b in original.graph.blocks]
    assert [(b.name, b.x, b.y, b.collapsed) for b in g.blocks] == [
        (b.name, b.x, b.y, b.collapsed) for b in original.graph.blocks
    ]
    cat = g.find("cat")
    assert [g.block(i).name for i in g.inputs_of(cat.id)] == ["right", "left"]
    assert g.find("right").params["kernel"] == [3, 1]
    assert g.find("left").x == -120.5
    assert g.find("fc1").collapsed is True
    assert loaded.training["augment"] == "flip, rotate"
    assert loaded.dataset["spec"] == "mnist:data"
    assert (loaded.name, loaded.template) == ("Inception-ish", "lenet5")
    assert loaded.description == "two branches\nüñíçødé"

    again = tmp_path / "again.cnnproj"
    save_project(loaded, again)
    assert again.read_bytes() == path.read_bytes()


def test_file_layout(tmp_path: Path):
    path = tmp_path / "net.cnnproj"
    save_project(sample_project(), path)
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "format": "cnnstudio-project",\n  "schema_version": 1,\n')
    assert "üñíçødé" in text
    assert '"kernel": [3, 1]' in text
    assert '{"from": "conv2d_1", "to": "conv2d_2", "port": 0}' in text
    data = json.loads(text)
    assert data == project_to_dict(sample_project())
    assert list(data) == ["format", "schema_version", "name", "description", "template",
                          "blocks", "connections", "dataset", "training"]
    assert list(data["blocks"][0]) == ["id", "type", "version", "name", "params", "position",
                                       "collapsed"]
    assert data["blocks"][1]["params"] == {
        "filters": 8, "kernel": [3, 3], "stride": [1, 1], "padding": "same",
        "dilation": [1, 1], "groups": 1, "depthwise": False, "bias": True, "activation": "none",
        "l1": 0.0, "l2": 0.0, "initial_kernel": None, "trainable": True,
    }
    assert list(data["training"]) == list(TRAINING.names)
    assert list(data["dataset"]) == list(DATASET.names)


def test_the_blocks_of_modern_networks_round_trip(tmp_path: Path):
    """Explicit and ceil-mode pooling, counted padding, adaptive pooling, the MobileNet
    activations, depthwise convolution and Multiply: saved, loaded, saved again, unchanged."""
    g = Graph()
    image, stem, dw, pool, adaptive, act = g.chain([
        ("Input", {"channels": 3, "height": 32, "width": 32}),
        ("Conv2D", {"filters": 8, "activation": "hardswish"}),
        ("Conv2D", {"depthwise": True, "padding": "same", "activation": "relu6"}),
        ("Pooling", {"mode": "average", "pool_size": 3, "stride": 2, "padding": [1, 1],
                     "ceil_mode": True, "count_padding": True}),
        ("Pooling", {"mode": "adaptive_max", "output_size": [5, 7]}),
        ("Activation", {"function": "silu"}),
    ])
    _, gate = g.chain([("Pooling", {"mode": "global_average"}),
                       ("Dense", {"units": 8, "activation": "hardsigmoid"})], after=act.id)
    multiply = g.add_block("Multiply")
    g.connect(gate.id, multiply.id, 0)
    g.connect(act.id, multiply.id, 1)
    g.chain([("Flatten", {}), ("Dense", {"units": 10}), ("Output", {})], after=multiply.id)
    path = tmp_path / "modern.cnnproj"
    save_project(Project.new(g, name="modern"), path)
    loaded = load_project(path)
    assert loaded.load_notes == []
    assert loaded.graph.block(dw.id).params["depthwise"] is True
    assert loaded.graph.block(pool.id).params["padding"] == [1, 1]
    assert loaded.graph.block(adaptive.id).params["output_size"] == [5, 7]
    assert loaded.graph.inputs_of(multiply.id) == [gate.id, act.id]
    assert project_to_dict(loaded) == project_to_dict(Project.new(g, name="modern"))
    again = tmp_path / "again.cnnproj"
    save_project(loaded, again)
    assert again.read_bytes() == path.read_bytes()


def test_connection_order_does_not_depend_on_wiring_order():
    first = sample_graph()
    second = sample_graph()
    for edge in reversed(second.edges):
        second.disconnect(edge)
    for edge in first.edges[::-1]:
        second.restore_edge(edge)
    assert first.edges != second.edges
    assert project_to_dict(Project(first))["connections"] == \
        project_to_dict(Project(second))["connections"]


def test_new_fills_defaults_and_checks_settings():
    project = Project.new(Graph())
    assert (project.name, project.description, project.template) == ("Untitled", "", None)
    assert project.training == TRAINING.defaults()
    assert project.dataset == DATASET.defaults()
    assert Project(Graph()).training == TRAINING.defaults()
    with pytest.raises(ProjectError) as caught:
        Project.new(Graph(), training={"batch_size": 0}, dataset={"spec": "x"})
    assert caught.value.problems[1] == "training.batch_size: expected an integer from 1 to " \
        "65,536, got 0"
    assert caught.value.problems[0].startswith("dataset.spec: unknown dataset 'x'; the "
                                               "accepted forms are mnist-sample")


def test_an_empty_network_round_trips(tmp_path: Path):
    path = tmp_path / "empty.cnnproj"
    save_project(Project.new(Graph()), path)
    assert len(load_project(path).graph) == 0


def test_unknown_keys_are_ignored_but_defaults_fill_missing_optional_fields():
    doc = valid_doc()
    doc["made_by"] = "CNN Studio 9"
    doc["blocks"][0]["colour"] = "red"
    doc["connections"][0]["style"] = "dashed"
    for key in ("name", "description", "template", "dataset", "training"):
        del doc[key]
    del doc["blocks"][2]["position"], doc["blocks"][2]["collapsed"], doc["blocks"][2]["name"]
    del doc["connections"][4]["port"]
    project = project_from_dict(doc)
    assert project.name == "Untitled" and project.training == TRAINING.defaults()
    assert project.graph.block("conv2d_2").name == "conv2d_2"
    assert len(project.graph.edges) == 8


# -- bad documents, each problem located ---------------------------------------------------


def set_at(*path_and_value: Any) -> Callable[[dict], None]:
    *path, value = path_and_value

    def mutate(doc: dict) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def delete_at(*path: Any) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def add_connection(src: str, dst: str, port: Any = 0) -> Callable[[dict], None]:
    return lambda doc: doc["connections"].append({"from": src, "to": dst, "port": port})


BAD_DOCUMENTS = [
    (set_at("blocks", 1, "params", "kernel", [0, 3]),
     "blocks[1].params.kernel: expected two positive integers (at most 255), got [0, 3]"),
    (set_at("blocks", 1, "params", "filters", 10**30),
     "blocks[1].params.filters: expected an integer from 1 to 65,536, got "
     "1000000000000000000000000000000"),
    (set_at("blocks", 1, "params", "colour", "red"),
     "blocks[1].params.colour: unknown parameter for Conv2D"),
    (set_at("blocks", 1, "params", "kernel", "²"),
     "blocks[1].params.kernel: expected two positive integers (at most 255), got '²'"),
    (set_at("blocks", 1, "params", [1]), "blocks[1].params: expected an object, got [1]"),
    (set_at("blocks", 2, "type", "Conv3D"),
     "blocks[2].type: unknown block type 'Conv3D'; known types: Activation, Add, BatchNorm, "),
    (set_at("blocks", 2, "type", 3), "blocks[2].type: expected a block type name, got 3"),
    (delete_at("blocks", 5, "type"), "blocks[5]: missing field 'type'"),
    (delete_at("blocks", 5, "id"), "blocks[5]: missing field 'id'"),
    (set_at("blocks", 2, "id", "conv2d_1"),
     "blocks[2].id: duplicate id 'conv2d_1' (blocks[1] has it too)"),
    (set_at("blocks", 2, "id", "2nd"),
     "blocks[2].id: block id '2nd' must start with a letter and hold only letters, digits and "
     "underscores"),
    (set_at("blocks", 2, "id", None), "blocks[2].id: expected a text, got null"),
    (set_at("blocks", 1, "version", 2),
     "blocks[1].version: this Conv2D block was saved by a newer CNN Studio (Conv2D version 2; "
     "this version knows Conv2D version 1): update CNN Studio to open it"),
    (set_at("blocks", 1, "version", 0), "blocks[1].version: expected a positive integer, got 0"),
    (set_at("blocks", 0, "position", [float("nan"), 0]),
     "blocks[0].position: expected two finite numbers between -1e9 and 1e9, got [NaN, 0]"),
    (set_at("blocks", 0, "position", [1e300, 0]),
     "blocks[0].position: expected two finite numbers between -1e9 and 1e9, got [1e+300, 0]"),
    (set_at("blocks", 0, "position", [1, True]),
     "blocks[0].position: expected two finite numbers between -1e9 and 1e9, got [1, true]"),
    (set_at("blocks", 0, "position", "10,20"),
     "blocks[0].position: expected two finite numbers between -1e9 and 1e9, got '10,20'"),
    (set_at("blocks", 3, "name", ""),
     "blocks[3].name: expected a name of 1 to 64 characters, got ''"),
    (set_at("blocks", 3, "name", 7),
     "blocks[3].name: expected a name of 1 to 64 characters, got 7"),
    (set_at("blocks", 3, "collapsed", "no"),
     "blocks[3].collapsed: expected true or false, got 'no'"),
    (set_at("blocks", 4, 5), "blocks[4]: expected an object, got 5"),
    (set_at("blocks", {}), "blocks: expected a list, got {}"),
    (delete_at("blocks"), "missing field 'blocks'"),
    (delete_at("connections"), "missing field 'connections'"),
    (set_at("connections", "all"), "connections: expected a list, got 'all'"),
    (add_connection("conv2d_1", "conv9"), "connections[8].to: no block has id 'conv9'"),
    (add_connection("nothing", "dense_1"), "connections[8].from: no block has id 'nothing'"),
    (add_connection("conv2d_1", "dense_1", 1),
     "connections[8]: Dense 'fc1' already has its input; remove that wire first or use "
     "Concatenate or Add to merge branches"),
    (add_connection("output_1", "concatenate_1", 2),
     "connections[8]: Output 'output' is a network output: nothing can follow it"),
    (add_connection("conv2d_3", "concatenate_1", 2),
     "connections[8]: Conv2D 'right' already feeds Concatenate 'cat'"),
    (add_connection("conv2d_1", "concatenate_1", 1),
     "connections[8]: input 2 of Concatenate 'cat' is already connected"),
    (add_connection("flatten_1", "concatenate_1", 2),
     "connections[8]: connecting Flatten 'flatten1' to Concatenate 'cat' would make a cycle"),
    (add_connection("conv2d_1", "concatenate_1", -1),
     "connections[8].port: expected an integer from 0 to 65,535, got -1"),
    (add_connection("conv2d_1", "concatenate_1", "2"),
     "connections[8].port: expected an integer from 0 to 65,535, got '2'"),
    (add_connection(3, "conv2d_1"), "connections[8].from: expected a block id, got 3"),
    (set_at("connections", 2, [1, 2]), "connections[2]: expected an object, got [1, 2]"),
    (delete_at("connections", 2, "to"), "connections[2]: missing field 'to'"),
    (set_at("training", "batch_size", 0),
     "training.batch_size: expected an integer from 1 to 65,536, got 0"),
    (set_at("training", "augment", "flip, blur"),
     "training.augment: unknown augmentation 'blur'; the allowed names are flip, translate, "
     "rotate, scale, channel_permute, grayscale (separated by commas)"),
    (set_at("training", "speed", "fast"), "training.speed: unknown training setting"),
    (set_at("training", []), "training: expected an object, got []"),
    (set_at("dataset", "spec", "imagenet:/x"),
     "dataset.spec: unknown dataset 'imagenet:/x'; the accepted forms are mnist-sample (the "
     "MNIST sample that ships with CNN Studio), mnist:DIR, fashion-mnist:DIR, cifar10:DIR, "
     "cifar100:DIR, folder:DIR (one subfolder per class), idx:IMAGES,LABELS (two IDX files), "
     "npz:FILE (arrays x and y)"),
    (set_at("name", 5), "name: expected a text of at most 200 characters, got 5"),
    (set_at("template", ["x"]),
     "template: expected a text of at most 200 characters or null, got [\"x\"]"),
    (set_at("schema_version", 7),
     "schema_version: this file was saved by a newer CNN Studio (schema 7; this version reads "
     "schema 1 and older): update CNN Studio to open it"),
    (set_at("schema_version", "1"), "schema_version: expected a positive integer, got '1'"),
    (set_at("schema_version", True), "schema_version: expected a positive integer, got true"),
    (delete_at("schema_version"), "missing field 'schema_version'"),
    (set_at("format", "keras"),
     "format: not a CNN Studio project (expected 'cnnstudio-project', got 'keras')"),
    (delete_at("format"),
     "format: not a CNN Studio project (expected 'cnnstudio-project', missing field 'format')"),
]


# When a block loses its id, the connections that named it are reported too.
LOST_CONV2D_2 = [
    "connections[1].to: no block has id 'conv2d_2'",
    "connections[4].from: no block has id 'conv2d_2'",
]
FOLLOW_UPS = {
    "blocks[2].id: duplicate id 'conv2d_1' (blocks[1] has it too)": LOST_CONV2D_2,
    "blocks[2].id: expected a text, got null": LOST_CONV2D_2,
    "blocks[2].id: block id '2nd' must start with a letter and hold only letters, digits and "
    "underscores": LOST_CONV2D_2,
    "blocks[4]: expected an object, got 5": [
        "connections[3].to: no block has id 'concatenate_1'",
        "connections[4].to: no block has id 'concatenate_1'",
        "connections[5].from: no block has id 'concatenate_1'",
    ],
    "blocks[5]: missing field 'id'": [
        "connections[5].to: no block has id 'flatten_1'",
        "connections[6].from: no block has id 'flatten_1'",
    ],
}


@pytest.mark.parametrize(("mutate", "expected"), BAD_DOCUMENTS)
def test_each_bad_input_is_reported_with_its_location(mutate, expected):
    doc = valid_doc()
    mutate(doc)
    before = copy.deepcopy(doc)
    with pytest.raises(ProjectError) as caught:
        project_from_dict(doc)
    problems = caught.value.problems
    assert problems[0].startswith(expected), problems
    assert problems[1:] == FOLLOW_UPS.get(expected, []), problems
    assert doc == before  # never modified


def test_the_same_bad_input_through_a_file_names_the_file(tmp_path: Path):
    doc = valid_doc()
    doc["blocks"][1]["params"]["kernel"] = [0, 3]
    path = tmp_path / "x.cnnproj"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    assert str(caught.value).splitlines() == [
        f"cannot open '{path}': 1 problem",
        "  blocks[1].params.kernel: expected two positive integers (at most 255), got [0, 3]",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path):
    doc = valid_doc()
    doc["blocks"][0]["position"] = [0, float("inf")]
    doc["blocks"][1]["params"]["filters"] = 0
    doc["blocks"][1]["params"]["stride"] = [1]
    doc["blocks"][2]["type"] = "Conv3D"
    doc["blocks"][3]["collapsed"] = 1
    doc["connections"].append({"from": "conv2d_1", "to": "conv9", "port": 0})
    doc["training"]["epochs"] = 0
    doc["dataset"]["validation_fraction"] = 2
    path = tmp_path / "many.cnnproj"
    path.write_text(json.dumps(doc, allow_nan=True), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    error = caught.value
    assert [p.split(":")[0] for p in error.problems] == [
        "blocks[0].position",
        "blocks[1].params.filters",
        "blocks[1].params.stride",
        "blocks[2].type",
        "blocks[3].collapsed",
        "connections[8].to",
        "dataset.validation_fraction",
        "training.epochs",
    ]
    lines = str(error).splitlines()
    assert lines[0] == f"cannot open '{path}': 8 problems"
    assert lines[1:] == [f"  {p}" for p in error.problems]


def test_connections_to_blocks_already_reported_are_not_reported_again():
    doc = valid_doc()
    doc["blocks"][2]["type"] = "Conv3D"  # conv2d_2: two connections touch it
    with pytest.raises(ProjectError) as caught:
        project_from_dict(doc)
    assert len(caught.value.problems) == 1


def test_long_reports_are_cut_after_twenty_lines():
    doc = valid_doc()
    doc["blocks"][1]["params"] = {f"p{i}": i for i in range(25)}
    with pytest.raises(ProjectError) as caught:
        project_from_dict(doc)
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid project: 25 problems"
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"
    assert len(caught.value.problems) == 25


def test_top_level_must_be_an_object():
    with pytest.raises(ProjectError) as caught:
        project_from_dict([1, 2])
    assert caught.value.problems == ["top level: expected a JSON object, got [1, 2]"]


# -- file-level problems -------------------------------------------------------------------


def file_problem(path: Path) -> str:
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    error = caught.value
    assert len(error.problems) == 1
    assert str(error) == f"cannot open '{path}': {error.problems[0]}"
    return error.problems[0]


def test_missing_file_and_folder(tmp_path: Path):
    assert file_problem(tmp_path / "none.cnnproj") == "the file does not exist"
    assert file_problem(tmp_path / "none" / "x.cnnproj") == "the file does not exist"
    assert file_problem(tmp_path) == "it is a folder, not a project file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_is_refused_without_blocking(tmp_path: Path):
    pipe = tmp_path / "pipe.cnnproj"
    os.mkfifo(pipe)
    assert file_problem(pipe) == "it is not a regular file"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "secret.cnnproj"
    save_project(sample_project(), path)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)  # root could read a chmod-0 file anyway
    assert file_problem(path) == "permission denied"


def test_too_large_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "huge.cnnproj"
    with open(path, "wb") as handle:
        handle.truncate(64 * 1024 * 1024 + 1)  # sparse: costs no disk
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail("the file was opened"))
    assert file_problem(path) == (
        "the file is too large (64.0 MiB; a project file is at most 64 MiB)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b" \n\t", "the file is empty"),
        (b'{"format": "cnnstudio-project"\xff}',
         "not UTF-8 text (byte 0xff at offset 30); it is not a CNN Studio project or it is "
         "damaged"),
        (b"{\n  \"format\": \"cnnstudio-project\"\n  \"schema_version\": 1}",
         "not valid JSON (line 3, column 3: Expecting ',' delimiter); the file may be truncated "
         "or damaged"),
        (b"[" * 100_000, "not valid JSON (nested too deeply); the file may be damaged"),
        (b"1" * 5000, "not valid JSON (Exceeds the limit (4300 digits)"),
        ('{"name": "ü'.encode()[:-1], "the file ends inside a character; it may be truncated"),
        (b"\xef\xbb\xbf{\xfe}", "not UTF-8 text (byte 0xfe at offset 4)"),
        (b"[1, 2]", "top level: expected a JSON object, got [1, 2]"),
    ],
)
def test_damaged_files(tmp_path: Path, content: bytes, expected: str):
    path = tmp_path / "bad.cnnproj"
    path.write_bytes(content)
    with pytest.raises(ProjectError) as caught:
        load_project(path)
    assert caught.value.problems[0].startswith(expected), caught.value.problems
    assert path.read_bytes() == content


def test_a_file_cut_in_half(tmp_path: Path):
    path = tmp_path / "cut.cnnproj"
    save_project(sample_project(), path)
    content = path.read_bytes()[: len(path.read_bytes()) // 2]
    path.write_bytes(content)
    problem = file_problem(path)
    assert problem.startswith("not valid JSON (line ")
    assert problem.endswith("the file may be truncated or damaged")
    assert path.read_bytes() == content


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.cnnproj"
    path.write_bytes(b"\xef\xbb\xbf" + dumps_project(sample_project()).encode())
    assert project_to_dict(load_project(path)) == valid_doc()


def test_loading_a_broken_file_leaves_it_untouched(tmp_path: Path):
    doc = valid_doc()
    doc["blocks"][1]["params"]["filters"] = 10**30
    doc["schema_version"] = 1
    path = tmp_path / "broken.cnnproj"
    path.write_text(json.dumps(doc, indent=4), encoding="utf-8")
    before = path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(tmp_path))
    with pytest.raises(ProjectError):
        load_project(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(tmp_path))) == before


# -- saving --------------------------------------------------------------------------------


def crash(*args: Any, **kwargs: Any) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("target", ["os.replace", "json.dumps", "os.fsync"])
def test_a_crash_while_saving_keeps_the_previous_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, target):
    path = tmp_path / "net.cnnproj"
    save_project(Project.new(sample_graph(), name="first"), path)
    before = path.read_bytes()
    monkeypatch.setattr(target, crash)
    with pytest.raises(ProjectError) as caught:
        save_project(Project.new(Graph(), name="second"), path)
    monkeypatch.undo()
    assert str(caught.value).startswith(f"cannot save '{path}': the disk is full")
    assert caught.value.problems[0].startswith("the disk is full")
    if target != "json.dumps":  # a failed write says how much room it needed, and where
        assert caught.value.problems[0].startswith(f"the disk is full: 0.1 MB needed at {path}")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.cnnproj"]


def test_saving_into_a_missing_folder_or_onto_a_folder(tmp_path: Path):
    with pytest.raises(ProjectError, match="the folder does not exist"):
        save_project(sample_project(), tmp_path / "nowhere" / "x.cnnproj")
    with pytest.raises(ProjectError, match="it is a folder"):
        save_project(sample_project(), tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_saving_keeps_permissions_and_follows_links(tmp_path: Path):
    path = tmp_path / "net.cnnproj"
    save_project(Project.new(Graph()), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~project_module._umask()
    path.chmod(0o640)
    link = tmp_path / "link.cnnproj"
    link.symlink_to(path)
    save_project(sample_project(), link)
    assert link.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert project_to_dict(load_project(path)) == valid_doc()
    assert sorted(os.listdir(tmp_path)) == ["link.cnnproj", "net.cnnproj"]


def test_a_read_only_file_is_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "net.cnnproj"
    save_project(Project.new(Graph()), path)
    path.chmod(0o444)
    before = path.read_bytes()
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # root may write anyway
    with pytest.raises(ProjectError, match="the file is read-only"):
        save_project(sample_project(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.cnnproj"]


def test_unsaveable_values_give_a_project_error(tmp_path: Path):
    project = sample_project()
    project.graph.move("input_1", float("nan"), 0)
    with pytest.raises(ProjectError, match="cannot save"):
        save_project(project, tmp_path / "nan.cnnproj")
    assert os.listdir(tmp_path) == []


# -- migrations ----------------------------------------------------------------------------


def test_older_schemas_are_migrated_in_order(monkeypatch: pytest.MonkeyPatch):
    def rename_blocks(doc: dict) -> dict:
        assert doc["schema_version"] == 1
        doc["blocks"] = doc.pop("layers")
        return doc

    monkeypatch.setattr(project_module, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(MIGRATIONS, 1, rename_blocks)
    monkeypatch.setitem(MIGRATIONS, 2, lambda doc: {**doc, "name": doc["name"] + " (2)"})
    old = valid_doc()
    old["schema_version"] = 1
    old["layers"] = old.pop("blocks")
    kept = copy.deepcopy(old)
    project = project_from_dict(old)
    assert old == kept
    assert project.name == "Inception-ish (2)"
    assert len(project.graph) == 8
    assert project_to_dict(project)["schema_version"] == 3


def test_missing_or_failing_migrations_are_reported(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(project_module, "SCHEMA_VERSION", 2)
    with pytest.raises(ProjectError) as caught:
        project_from_dict(valid_doc() | {"schema_version": 1})
    assert caught.value.problems == ["schema_version: no way to upgrade schema 1 to 2"]
    monkeypatch.setitem(MIGRATIONS, 1, lambda doc: doc["layers"])
    with pytest.raises(ProjectError) as caught:
        project_from_dict(valid_doc() | {"schema_version": 1})
    assert caught.value.problems == [
        "schema_version: cannot upgrade schema 1 to 2 (KeyError: 'layers')"
    ]


# -- nothing but ProjectError, whatever the damage -----------------------------------------

SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["Conv2D", "conv2d_1", "dense_1", "same", "3x3", "²", 10**30, -1, [0, 3]])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, prefix + (index,))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_damage_only_ever_raises_project_error(data: st.DataObject):
    doc: Any = valid_doc()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["delete", "replace", "add"]))
        value = data.draw(JSON_VALUES)
        if not path:
            doc = value if action == "replace" else doc
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = value
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(st.text(max_size=6))] = value
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(value)
    try:
        project = project_from_dict(doc)
    except ProjectError as err:
        assert err.problems and all(isinstance(p, str) and p for p in err.problems)
        assert str(err)
        return
    text = dumps_project(project)
    assert project_to_dict(project_from_dict(json.loads(text))) == project_to_dict(project)


def test_a_conv_initial_kernel_round_trips(tmp_path: Path):
    project = sample_project()
    conv = next(b for b in project.graph.blocks if b.type == "Conv2D")
    kernel = [[1.0, 0.0, -1.0], [2.0, 0.5, -2.0], [1.0, 0.0, -1.0]]
    project.graph.set_params(conv.id, {"kernel": [3, 3], "initial_kernel": kernel})
    path = tmp_path / "kernel.cnnproj"
    save_project(project, path)
    loaded = load_project(path)
    assert loaded.graph.block(conv.id).params["initial_kernel"] == kernel
    data = json.loads(path.read_text(encoding="utf-8"))
    data["blocks"][1]["params"]["initial_kernel"] = [[1, 2], [3]]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ProjectError) as err:
        load_project(path)
    assert "initial_kernel: expected null or a matrix (at most 255×255)" in str(err.value.problems)
