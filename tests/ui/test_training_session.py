"""The background training session: real training on a thread, driven like the window does."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.ui.training.session import TrainingSession


@pytest.fixture
def tiny_npz(tmp_path):
    from cnnstudio.train.data import load_dataset

    data = load_dataset("mnist-sample", (1, 28, 28))
    path = tmp_path / "tiny.npz"
    np.savez(path, x=data.train_x[:640, 0], y=data.train_y[:640])
    return f"npz:{path}"


def tiny_project(spec: str, epochs: int = 2) -> Project:
    g = Graph()
    g.chain([("Input", {"channels": 1, "height": 28, "width": 28}),
             ("Conv2D", {"filters": 4, "kernel": 3, "activation": "relu"}),
             ("Pooling", {}), ("Flatten", {}), ("Dense", {"units": 10}), ("Output", {})])
    return Project.new(g, dataset={"spec": spec},
                       training={"epochs": epochs, "batch_size": 32, "learning_rate": 0.01})


def test_a_run_trains_on_a_thread_and_reports_back(qtbot, tmp_path, tiny_npz):
    session = TrainingSession()
    seen = {"progress": 0, "epochs": [], "weights": [], "data": None, "states": []}
    session.progress.connect(lambda e: seen.__setitem__("progress", seen["progress"] + 1))
    session.epoch_ended.connect(lambda e: seen["epochs"].append(e.epoch))
    session.weights_ready.connect(lambda w, epoch: seen["weights"].append(epoch))
    session.data_ready.connect(lambda d: seen.__setitem__("data", d))
    session.state_changed.connect(seen["states"].append)
    project = tiny_project(tiny_npz)
    with qtbot.waitSignal(session.finished, timeout=120_000) as finished:
        session.start(project, tmp_path / "run")
        project.graph.add_block("Dropout")  # editing meanwhile does not touch the run
    result = finished.args[0]
    assert result.status == "completed", result.message
    assert seen["epochs"] == [1, 2] and seen["progress"] > 0
    assert seen["weights"][:2] == [1, 2]
    assert seen["data"].num_classes == 10
    assert seen["states"][0] == "loading" and "running" in seen["states"]
    assert seen["states"][-1] == "idle" and not session.running
    assert len(session.project.graph) == 6
    assert (tmp_path / "run" / "model.pt").exists()


def test_pause_resume_and_stop_from_the_window(qtbot, tmp_path, tiny_npz):
    session = TrainingSession()
    project = tiny_project(tiny_npz, epochs=50)
    session.start(project, tmp_path / "run")
    qtbot.waitUntil(lambda: session.state == "running", timeout=60_000)
    with qtbot.waitSignal(session.state_changed, timeout=30_000,
                          check_params_cb=lambda s: s == "paused"):
        session.pause()
    count = []
    session.progress.connect(lambda e: count.append(e))
    qtbot.wait(300)
    assert count == []  # nothing moves while paused
    with qtbot.waitSignal(session.state_changed, timeout=30_000,
                          check_params_cb=lambda s: s == "running"):
        session.resume()
    with qtbot.waitSignal(session.finished, timeout=60_000) as finished:
        session.stop()
    assert finished.args[0].status == "stopped"
    assert (tmp_path / "run" / "model.pt").exists()


def test_a_bad_dataset_finishes_with_a_message(qtbot, tmp_path):
    session = TrainingSession()
    with qtbot.waitSignal(session.finished, timeout=60_000) as finished:
        session.start(tiny_project(f"npz:{tmp_path}/missing.npz"), tmp_path / "run")
    result = finished.args[0]
    assert result.status == "failed" and "missing.npz" in result.message
    assert not session.running
