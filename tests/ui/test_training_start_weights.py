"""A project with a weights file (an imported network) trains from it in the window; a ticked
box says so, and unticking it starts from random weights (real clicks)."""

from __future__ import annotations

import torch

from cnnstudio.core.project import load_project, save_project
from cnnstudio.nn.build import build_model
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.training_pages import LONG, click, tiny_project


def imported(tmp_path, spec: str):
    """A saved project pointing at a weights file beside it, loaded back as File → Open does."""
    project = tiny_project(spec, epochs=1)
    torch.manual_seed(7)
    state = build_model(project.graph).state_dict()
    torch.save(state, tmp_path / "net.weights.pt")
    project.weights = "net.weights.pt"
    save_project(project, tmp_path / "net.cnnproj")
    return load_project(tmp_path / "net.cnnproj"), state


def run_to_the_end(qtbot, page) -> list[str]:
    """Click Train and wait for the end; returns the status lines shown while it ran."""
    shown: list[str] = []
    page.session.started.connect(lambda _event: shown.append(page.status.text()))
    with qtbot.waitSignal(page.session.finished, timeout=LONG):
        click(qtbot, page.train_button)
    return shown


def test_the_box_is_ticked_and_the_run_starts_from_the_weights(make_page, qtbot, tiny_npz,
                                                               tmp_path):
    project, _state = imported(tmp_path, tiny_npz)
    page = make_page(project)
    box = page.start_weights
    assert box.isVisible() and box.isEnabled() and box.isChecked()
    assert box.text() == "Start from the weights in net.weights.pt"
    shown = run_to_the_end(qtbot, page)
    assert page.session.project.weights == "net.weights.pt"
    assert "Started from the weights in net.weights.pt: loaded 2 of 2" in shown[0]


def test_unticked_the_run_starts_from_random_weights(make_page, qtbot, tiny_npz, tmp_path):
    project, _state = imported(tmp_path, tiny_npz)
    page = make_page(project)
    click(qtbot, page.start_weights)
    assert not page.start_weights.isChecked()
    shown = run_to_the_end(qtbot, page)
    assert page.session.project.weights is None
    assert shown and "net.weights.pt" not in shown[0]
    assert page.document.project.weights == "net.weights.pt"  # the project keeps its file


def test_a_missing_file_is_said_and_the_box_cannot_be_ticked(make_page, qtbot, tiny_npz,
                                                            tmp_path):
    project, _state = imported(tmp_path, tiny_npz)
    (tmp_path / "net.weights.pt").unlink()
    page = make_page(project)
    box = page.start_weights
    assert box.isVisible() and not box.isEnabled() and not box.isChecked()
    assert "missing: put it back beside the project" in box.text()


def test_a_project_without_weights_shows_no_box(make_page, tiny_npz):
    page = make_page(tiny_project(tiny_npz))
    assert not page.start_weights.isVisible()
