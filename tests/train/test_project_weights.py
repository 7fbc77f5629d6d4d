"""Training starts from the weights file a project points at (an imported network's)."""

from __future__ import annotations

import torch

from cnnstudio.core.project import load_project, save_project
from cnnstudio.nn.build import build_model
from cnnstudio.train.events import RunStarted
from tests.train.conftest import options, run, tiny_project


def _saved_weights(project, folder, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = build_model(project.graph).state_dict()
    torch.save(state, folder / "net.weights.pt")
    project.weights = "net.weights.pt"
    save_project(project, folder / "net.cnnproj")
    return state


def test_a_run_starts_from_the_projects_weights_and_says_so(tmp_path, small_data):
    project = tiny_project()
    state = _saved_weights(project, tmp_path, seed=123)
    loaded = load_project(tmp_path / "net.cnnproj")
    result = run(loaded, small_data, options=options(learning_rate=0.0))
    trained = result.trainer.model.state_dict()
    assert all(torch.equal(trained[k].cpu(), state[k]) for k in state)
    started = result.of(RunStarted)[0]
    assert any("net.weights.pt" in note and "loaded 2 of 2" in note for note in started.notes)


def test_without_weights_the_same_seed_gives_other_start_values(tmp_path, small_data):
    project = tiny_project()
    state = _saved_weights(project, tmp_path, seed=123)
    loaded = load_project(tmp_path / "net.cnnproj")
    loaded.weights = None  # --random-start, or "Start from random weights"
    result = run(loaded, small_data, options=options(learning_rate=0.0))
    trained = result.trainer.model.state_dict()
    key = f"blocks.{loaded.graph.find('conv').id}.conv.weight"
    assert not torch.equal(trained[key].cpu(), state[key])


def test_blocks_changed_since_the_import_keep_their_fresh_start_and_are_named(tmp_path, small_data):
    project = tiny_project()
    _saved_weights(project, tmp_path, seed=5)
    loaded = load_project(tmp_path / "net.cnnproj")
    conv, fc = loaded.graph.find("conv").id, loaded.graph.find("fc").id
    loaded.graph.set_params(conv, {"filters": 6})  # conv and, through Flatten, fc no longer fit
    result = run(loaded, small_data, options=options(learning_rate=0.0))
    note = next(n for n in result.of(RunStarted)[0].notes if "net.weights.pt" in n)
    assert "loaded 0 of 2" in note and conv in note and fc in note
    assert result.finished.status == "completed"


def test_a_missing_weights_file_stops_the_run_with_what_to_do(tmp_path, small_data):
    project = tiny_project()
    _saved_weights(project, tmp_path, seed=1)
    (tmp_path / "net.weights.pt").unlink()
    loaded = load_project(tmp_path / "net.cnnproj")
    finished = run(loaded, small_data, options=options()).finished
    assert finished.status == "failed"
    assert "does not exist: put the file back" in finished.message
