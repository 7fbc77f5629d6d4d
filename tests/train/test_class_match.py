"""The network's classes must match the dataset's: the one core check (core.adapt), and the
engine, the command line and export refusing a mismatch before anything is trained or written."""

from __future__ import annotations

import json

import pytest

from cnnstudio.cli import main
from cnnstudio.core.adapt import (
    class_mismatches,
    outputs_fit_classes,
    repair_class_mismatches,
)
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.core.project import save_project
from cnnstudio.core.templates import new_project
from cnnstudio.nn.export import ExportError, load_run
from cnnstudio.train import run_folder as rf
from cnnstudio.train.engine import train
from cnnstudio.train.events import RunStarted
from tests.nn.test_export import make_run
from tests.train.conftest import MNIST_SHAPE, options, run, tiny_graph, tiny_project


def id_of(graph: Graph, name: str) -> str:
    return next(b.id for b in graph.blocks if b.name == name)


# -- the core rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("units, classes, fits", [
    (10, 10, True), (1000, 10, False), (5, 10, False), (2, 2, True),
    (1, 2, True),  # one sigmoid score: binary classification
    (1, 3, False), (1, 1, True), (2, 3, False),
])
def test_outputs_fit_classes(units, classes, fits):
    assert outputs_fit_classes(units, classes) is fits


def test_a_1000_unit_dense_on_10_classes_names_the_block_both_numbers_and_the_repair():
    graph = tiny_graph(units=1000)
    (mismatch,) = class_mismatches(graph, 10, "mnist-sample")
    assert (mismatch.output_id, mismatch.block_id, mismatch.units, mismatch.classes) == (
        id_of(graph, "output"), id_of(graph, "fc"), 1000, 10)
    assert not mismatch.auxiliary and mismatch.repair == {"units": 10}
    assert mismatch.message == (f"the Dense block 'fc' (id {mismatch.block_id}) gives 1000 "
                                "class scores but the dataset 'mnist-sample' has 10 classes: "
                                "set its units to 10")
    assert class_mismatches(tiny_graph(units=10), 10, "mnist-sample") == []


def test_a_block_named_by_its_id_is_named_once():
    graph = tiny_graph(units=1000)
    dense_id = id_of(graph, "fc")
    graph.rename(dense_id, dense_id)
    (mismatch,) = class_mismatches(graph, 10)
    assert mismatch.message.startswith(f"the Dense block '{dense_id}' gives 1000 class scores")
    assert "(id" not in mismatch.message and "the dataset has 10 classes" in mismatch.message


def test_a_single_unit_output_matches_two_classes_only():
    assert class_mismatches(tiny_graph(units=1, before_output=[
        ("Activation", {"function": "sigmoid"})]), 2) == []
    (mismatch,) = class_mismatches(tiny_graph(units=1), 3)
    assert "gives 1 class score but" in mismatch.message and mismatch.repair == {"units": 3}


def test_the_classifier_behind_a_softmax_activation_and_dropout_is_the_block_to_fix():
    graph = tiny_graph(units=7, before_output=[("Dropout", {"rate": 0.2}),
                                               ("Activation", {"function": "softmax"})])
    (mismatch,) = class_mismatches(graph, 10)
    assert mismatch.block_id == id_of(graph, "fc") and mismatch.repair == {"units": 10}
    repair_class_mismatches(graph, [mismatch])
    assert graph.block(mismatch.block_id).params["units"] == 10
    assert class_mismatches(graph, 10) == []


def test_an_output_without_a_dense_has_no_automatic_repair():
    graph = Graph()
    graph.chain([("Input", {"channels": 1, "height": 4, "width": 4}, "input"),
                 ("Flatten", {}, "flatten"), ("Output", {}, "output")])
    (mismatch,) = class_mismatches(graph, 10)
    assert mismatch.block_id == id_of(graph, "flatten") and mismatch.units == 16
    assert mismatch.repair is None
    assert "end the network with a Dense layer of 10 units" in mismatch.message
    with pytest.raises(GraphError, match="16 class scores"):
        repair_class_mismatches(graph, [mismatch])


def test_auxiliary_outputs_are_checked_after_the_main_one():
    project = new_project("inception-small", (3, 32, 32), 1000)
    main_output, aux_output = class_mismatches(project.graph, 10, "cifar10:data")
    assert (main_output.block_id, main_output.auxiliary) == ("classifier", False)
    assert (aux_output.block_id, aux_output.auxiliary) == ("aux_classifier", True)
    assert "feeds the auxiliary output 'aux/output'" in aux_output.message
    assert "(id aux_classifier)" in aux_output.message and "1000" in aux_output.message


# -- the engine ------------------------------------------------------------------------------


def test_the_engine_refuses_more_outputs_than_classes_before_writing(small_data, tmp_path):
    result = run(tiny_project(tiny_graph(units=1000)), small_data, tmp_path / "run",
                 options=options())
    finished = result.finished
    assert finished.status == "failed" and not result.of(RunStarted)
    dense_id = id_of(result.trainer.project.graph, "fc")
    for part in ("Dense block 'fc'", dense_id, "1000", "10 classes", "set its units to 10"):
        assert part in finished.message, finished.message
    assert not (tmp_path / "run").exists()


def _aux_graph(aux_units: int) -> Graph:
    """tiny_graph with an auxiliary Output fed by its own Dense from the flattened maps."""
    graph = tiny_graph()
    graph.chain([("Dense", {"units": aux_units}, "aux_fc"),
                 ("Output", {"auxiliary": True, "loss_weight": 0.3}, "aux_output")],
                after=id_of(graph, "flatten"))
    return graph


def test_the_engine_refuses_an_auxiliary_output_that_does_not_match(small_data, tmp_path):
    graph = _aux_graph(4)
    finished = train(tiny_project(graph), small_data, tmp_path / "run", options=options())
    assert finished.status == "failed"
    assert "Dense block 'aux_fc'" in finished.message and "4 class scores" in finished.message
    assert id_of(graph, "aux_fc") in finished.message
    assert "auxiliary output 'aux_output'" in finished.message
    assert not (tmp_path / "run").exists()


def test_a_matching_auxiliary_output_trains(small_data):
    finished = train(tiny_project(_aux_graph(10)), small_data, options=options())
    assert finished.status == "completed", finished.message


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def project_1000(tmp_path):
    path = tmp_path / "resnet.cnnproj"
    save_project(new_project("keras-mnist", MNIST_SHAPE, 1000), path)
    return path


def test_the_cli_refuses_a_1000_class_project_on_10_classes(capsys, tmp_path, project_1000):
    out = tmp_path / "run"
    code = main(["train", str(project_1000), "--dataset", "mnist-sample", "--epochs", "1",
                 "--out", str(out)])
    _, err = capsys.readouterr()
    assert code != 0
    assert "Dense block 'fc2'" in err and "1000 class scores" in err
    assert "'mnist-sample' has 10 classes" in err and "--classes 10" in err
    assert "Traceback" not in err and "internal error" not in err
    assert not out.exists()


def test_the_cli_leaves_an_existing_folder_untouched(capsys, tmp_path, project_1000):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = main(["train", str(project_1000), "--dataset", "mnist-sample", "--out", str(out)])
    assert code != 0 and "1000 class scores" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_the_cli_trains_it_with_classes_given(capsys, tmp_path, project_1000):
    out = tmp_path / "run"
    code = main(["train", str(project_1000), "--dataset", "mnist-sample", "--epochs", "1",
                 "--classes", "10", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / rf.FINAL).read_text())["status"] == "completed"


# -- export ----------------------------------------------------------------------------------


def test_export_names_what_differs_instead_of_different_runs(tmp_path):
    run_dir = make_run(tmp_path / "run", "keras-mnist", classes=1000)
    data = json.loads((run_dir / "data.json").read_text())
    data["classes"] = [str(k) for k in range(10)]
    (run_dir / "data.json").write_text(json.dumps(data))
    with pytest.raises(ExportError) as caught:
        load_run(run_dir)
    message = str(caught.value)
    assert "lists 10 classes but the network gives 1000 scores" in message
    assert "Dense block 'fc2'" in message and "set its units to 10" in message
