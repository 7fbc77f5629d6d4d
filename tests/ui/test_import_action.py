"""File → Import…: the import runs on a worker, then the project is saved and opened."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cnnstudio.core.project import load_project, project_to_dict, save_project
from cnnstudio.core.templates import new_project
from cnnstudio.ui.import_action import TORCHVISION_MODELS, TorchvisionChoice
from cnnstudio.ui.main_window import MainWindow
from tests.test_cli_import import learnable, small_cnn_onnx

Button = QMessageBox.StandardButton
IMPORT_MS = 60_000


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window(recover=False)


def snapshot(window: MainWindow) -> dict:
    return project_to_dict(window.document.project)


def answer(window: MainWindow, monkeypatch, source: Path, target: Path | None) -> list[Path]:
    """The dialogs' answers: `source` to open, `target` to save as; the save dialog's
    suggestions are recorded."""
    suggested: list[Path] = []
    monkeypatch.setattr(window.importer, "ask_onnx_path", lambda: str(source))

    def ask_project_path(suggestion: Path) -> str | None:
        suggested.append(suggestion)
        return str(target) if target else None

    monkeypatch.setattr(window.importer, "ask_project_path", ask_project_path)
    return suggested


def import_onnx(window: MainWindow, qtbot) -> bool:
    with qtbot.waitSignal(window.importer.finished, timeout=IMPORT_MS) as blocker:
        window.actions["import_onnx"].trigger()
        assert not window.actions["import_onnx"].isEnabled()  # one import at a time
    assert window.actions["import_onnx"].isEnabled()
    return blocker.args[0]


def test_an_onnx_file_opens_as_the_project_with_its_weights(window, qtbot, tmp_path,
                                                             monkeypatch):
    source, module = small_cnn_onnx(tmp_path)
    target = tmp_path / "small.cnnproj"
    suggested = answer(window, monkeypatch, source, target)
    assert import_onnx(window, qtbot)
    assert suggested == [target]  # beside the ONNX file, its name
    weights = tmp_path / "small.weights.pt"
    assert target.is_file() and weights.is_file()
    document = window.document
    assert document.path == target.resolve() and not document.is_dirty
    assert project_to_dict(document.project) == project_to_dict(load_project(target))
    assert document.project.weights == "small.weights.pt"
    assert {b.type for b in document.graph.blocks} >= {"Input", "Conv2D", "Dense", "Output"}
    state = torch.load(weights, weights_only=True)
    assert torch.equal(next(v for k, v in state.items() if k.endswith("conv.weight")
                            and v.shape == module.conv1.weight.shape), module.conv1.weight)
    message = window.statusBar().currentMessage()
    assert message == (f"Imported small.onnx: {len(document.graph)} blocks, "
                       f"{learnable(module):,} parameters; weights in small.weights.pt")
    view = window.canvas
    assert view.visible_scene_rect().contains(view.canvas.diagram_rect())  # fitted
    assert window.settings.recent_files()[0] == target.resolve()


def test_a_refused_import_lists_the_nodes_and_changes_nothing(window, qtbot, tmp_path,
                                                              monkeypatch):
    source, _ = small_cnn_onnx(tmp_path, "sine.onnx", sine=True)
    suggested = answer(window, monkeypatch, source, tmp_path / "sine.cnnproj")
    before = snapshot(window)
    seen: list[str] = []

    def click_ok() -> None:  # the message box, once the worker has finished
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click_ok)
            return
        seen.append("\n".join((box.windowTitle(), box.text(), box.informativeText())))
        box.button(Button.Ok).click()

    QTimer.singleShot(0, click_ok)
    assert not import_onnx(window, qtbot)
    assert seen and "sine.onnx" in seen[0] and "Sin" in seen[0]
    assert "Traceback" not in seen[0]
    assert suggested == []  # never asked where to save
    assert snapshot(window) == before and window.document.path is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["sine.onnx"]


def test_a_file_that_is_not_onnx_shows_why(window, qtbot, tmp_path, monkeypatch):
    source = tmp_path / "notes.onnx"
    source.write_text("not a network", encoding="utf-8")
    answer(window, monkeypatch, source, tmp_path / "notes.cnnproj")
    errors: list[tuple] = []
    monkeypatch.setattr(window, "show_error", lambda *args: errors.append(args))
    before = snapshot(window)
    assert not import_onnx(window, qtbot)
    assert len(errors) == 1 and "notes.onnx" in " ".join(map(str, errors[0]))
    assert snapshot(window) == before


def test_replacing_asks_and_files_not_written_by_cnn_studio_stay(window, qtbot, tmp_path,
                                                                  monkeypatch):
    source, _ = small_cnn_onnx(tmp_path)
    target = tmp_path / "net.cnnproj"
    answer(window, monkeypatch, source, target)
    assert import_onnx(window, qtbot)
    written = target.read_bytes(), (tmp_path / "net.weights.pt").read_bytes()
    asked: list[list[Path]] = []
    monkeypatch.setattr(window.importer, "ask_replace",
                        lambda paths: asked.append(list(paths)) or False)
    assert not import_onnx(window, qtbot)
    assert asked == [[target, tmp_path / "net.weights.pt"]]
    assert (target.read_bytes(), (tmp_path / "net.weights.pt").read_bytes()) == written
    monkeypatch.setattr(window.importer, "ask_replace", lambda paths: True)
    assert import_onnx(window, qtbot)

    foreign = tmp_path / "other.weights.pt"
    foreign.write_bytes(b"another program's weights")
    answer(window, monkeypatch, source, tmp_path / "other.cnnproj")
    errors: list[tuple] = []
    monkeypatch.setattr(window, "show_error", lambda *args: errors.append(args))
    assert not import_onnx(window, qtbot)
    assert "not a file CNN Studio wrote" in errors[0][1][0]
    assert foreign.read_bytes() == b"another program's weights"
    assert not (tmp_path / "other.cnnproj").exists()


def test_unsaved_changes_are_asked_about_before_anything_is_written(window, qtbot, tmp_path,
                                                                   monkeypatch):
    window.document.edit("Add Dropout", lambda g: g.add_block("Dropout"))
    before = snapshot(window)
    source, _ = small_cnn_onnx(tmp_path)
    answer(window, monkeypatch, source, tmp_path / "small.cnnproj")
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Cancel)
    assert not import_onnx(window, qtbot)
    assert snapshot(window) == before and window.document.is_dirty
    assert not (tmp_path / "small.cnnproj").exists()
    assert not (tmp_path / "small.weights.pt").exists()


def test_a_torchvision_model_imports_from_the_menu(window, qtbot, tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.squeezenet1_1(weights=None)
    weights_file = tmp_path / "squeezenet1_1.pth"
    torch.save(reference.state_dict(), weights_file)
    monkeypatch.setattr(window.importer, "ask_torchvision_model",
                        lambda: ("squeezenet1_1", str(weights_file)))
    suggested: list[Path] = []
    monkeypatch.setattr(window.importer, "ask_project_path",
                        lambda s: suggested.append(s) or str(tmp_path / "sq.cnnproj"))
    with qtbot.waitSignal(window.importer.finished, timeout=IMPORT_MS) as blocker:
        window.actions["import_torchvision"].trigger()
    assert blocker.args == [True]
    assert suggested == [tmp_path / "squeezenet1_1.cnnproj"]
    assert window.document.path == (tmp_path / "sq.cnnproj").resolve()
    assert f"{learnable(reference):,} parameters" in window.statusBar().currentMessage()


def test_cancelling_the_save_dialog_writes_nothing(window, qtbot, tmp_path, monkeypatch):
    save_project(new_project("lenet5"), tmp_path / "keep.cnnproj")
    assert window.open_file(tmp_path / "keep.cnnproj")
    before = snapshot(window)
    source, _ = small_cnn_onnx(tmp_path)
    answer(window, monkeypatch, source, None)
    assert not import_onnx(window, qtbot)
    assert snapshot(window) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["keep.cnnproj",
                                                                         "small.onnx"]


def test_the_torchvision_choice_offers_models_torchvision_has(qtbot, tmp_path):
    from cnnstudio.importers.torch_fx import torchvision_models

    assert set(TORCHVISION_MODELS) <= set(torchvision_models())
    dialog = TorchvisionChoice()
    qtbot.addWidget(dialog)
    assert dialog.choice() == (TORCHVISION_MODELS[0], None)
    dialog.model_combo.setCurrentText(" resnet50 ")
    dialog.weights_edit.setText(str(tmp_path / "resnet50.pth"))
    assert dialog.choice() == ("resnet50", str(tmp_path / "resnet50.pth"))
