"""The inspection views: feature maps, filters, confusion matrix, predict, and the export dialog.

One real run (Keras MNIST CNN, 1 epoch on 640 images of the bundled sample, tests/trained_runs.py)
is trained once per module; the views are driven both through a TrainingSession's signals, as during training, and
through a finished run's folder."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from cnnstudio.core.templates import new_project
from cnnstudio.nn.build import build_model
from cnnstudio.train.inspect import (
    InspectionError,
    confusion_matrix,
    conv_filters,
    load_image_file,
    most_confident_mistakes,
    predictions,
    top_k,
)
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.export_dialog import ExportDialog, open_export_dialog
from cnnstudio.ui.training.inspect.confusion import CELL_LIMIT
from cnnstudio.ui.training.inspect.views import (
    TAB_TITLES,
    ConfusionView,
    FeatureMapView,
    FilterView,
    InspectionContext,
    PredictView,
    inspection_tabs,
)
from cnnstudio.ui.training.inspect.widgets import PLACEHOLDER, WAITING
from cnnstudio.ui.training.session import TrainingSession
from tests.torch_threads import one_torch_thread_then_wait  # noqa: F401 (autouse fixture)
from tests.trained_runs import train_one_epoch_keras_run
from tests.ui.views import shown


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(project, dataset, run folder) of a one-epoch Keras MNIST run on 640 sample images."""
    return train_one_epoch_keras_run(tmp_path_factory.mktemp("inspect"))


def state_of(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)


@pytest.fixture
def live(qtbot, trained):
    """A context fed as a running session feeds it: data, then the weights of epoch 1."""
    project, data, run_dir = trained
    session = TrainingSession()
    session.project = project
    context = InspectionContext(session, Document())
    session.data_ready.emit(data)
    session.weights_ready.emit(state_of(run_dir), 1)
    return SimpleNamespace(session=session, context=context, data=data, project=project,
                           run_dir=run_dir)


def png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_every_view_shows_a_placeholder_until_there_is_something_to_show(qtbot, trained):
    session = TrainingSession()
    context = InspectionContext(session, Document())
    tabs = inspection_tabs(context)
    assert [title for title, _ in tabs] == list(TAB_TITLES)
    assert [type(view) for _, view in tabs] == [FeatureMapView, FilterView, ConfusionView,
                                                PredictView]
    for _, view in tabs:
        shown(qtbot, view)
        assert view.showing_placeholder() and view.placeholder.text() == PLACEHOLDER
    session.project = trained[0]
    session.data_ready.emit(trained[1])  # the data is there, the first epoch is not over
    assert context.data is trained[1] and not context.ready
    for _, view in tabs:
        view.refresh()
        assert view.placeholder.text() == WAITING


def test_the_context_keeps_one_model_and_loads_each_epoch(qtbot, live):
    context, session = live.context, live.session
    model = context.model
    assert context.ready and not model.training and context.classes == live.data.classes
    assert context.graph is live.project.graph and context.input_shape == (1, 28, 28)
    np.testing.assert_allclose(context.mean, live.data.mean)
    changes = []
    context.model_changed.connect(lambda: changes.append(context.epoch))
    zeroed = {k: torch.zeros_like(v) for k, v in state_of(live.run_dir).items()}
    session.weights_ready.emit(zeroed, 2)
    assert context.model is model and changes == [2]  # the same module, new weights
    assert float(model.blocks["conv1"].conv.weight.detach().abs().sum()) == 0
    assert "after epoch 2" in context.description()
    session.graph_revision = context.document.graph.revision
    assert not context.edited_since()
    context.document.graph.add_block("Dropout")  # the editor moves on; the run does not
    assert context.edited_since() and context.graph is live.project.graph
    copy = context.model_copy()
    assert copy is not model and torch.equal(copy.blocks["fc1"].linear.weight,
                                             model.blocks["fc1"].linear.weight)


def test_feature_maps_show_every_channel_and_follow_the_block(qtbot, live):
    view = shown(qtbot, FeatureMapView(live.context))
    assert view.current_block() == "conv1"
    assert view.channel_count() == 32 and view.grid.count() == 32
    assert "32 channels of 26×26" in view.channels_label.text()
    assert view.grid.captions()[:3] == ["0", "1", "2"]
    assert "label: " in view.input_caption.text() and "predicted: " in view.input_caption.text()

    view.block_combo.setCurrentIndex(view.block_combo.findData("conv2"))
    assert view.channel_count() == 64 and view.grid.count() == 64
    assert view.show_block("fc1")  # the canvas hook
    assert view.maps_stack.currentWidget() is view.vector_plot
    assert view.vector_plot.values().shape == (64,) and view.grid.count() == 0
    assert not view.show_block("flatten")
    assert "no output to show" in view.note_label.text()
    assert not view.show_block("conv9") and "not in the trained network" in view.note_label.text()

    view.show_block("conv1")
    assert view.colour_bar.texts()[:2] == ("min", "max")
    qtbot.mouseClick(view.shared_check, Qt.MouseButton.LeftButton)
    low, high, _ = view.colour_bar.texts()
    assert float(low) == pytest.approx(view._maps.min(), rel=1e-2, abs=1e-3)
    assert float(high) == pytest.approx(view._maps.max(), rel=1e-2)

    assert view.chooser.spin.text() == "validation image 0"  # not the file choice's text
    view.chooser.spin.setValue(5)
    np.testing.assert_array_equal(view.chooser.image, live.data.val_x[5])
    qtbot.mouseClick(view.chooser.random_button, Qt.MouseButton.LeftButton)
    assert view.chooser.index is not None and view.grid.count() == 32


def test_feature_maps_refresh_when_an_epoch_ends(qtbot, live):
    view = shown(qtbot, FeatureMapView(live.context))
    assert view._maps.max() > 0
    zeroed = {k: torch.zeros_like(v) for k, v in state_of(live.run_dir).items()}
    live.session.weights_ready.emit(zeroed, 2)  # throttled: it refreshes a moment later
    qtbot.waitUntil(lambda: view._maps is not None and view._maps.max() == 0, timeout=5000)
    assert "32 all zero" in view.channels_label.text()


def test_feature_maps_of_a_dropped_image_file(qtbot, live, tmp_path):
    view = shown(qtbot, FeatureMapView(live.context))
    path = png(tmp_path / "seven.png", np.full((50, 40, 3), 200, np.uint8))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    view.dragEnterEvent(enter)
    assert enter.isAccepted()
    view.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                              Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    np.testing.assert_array_equal(view.chooser.image, load_image_file(path, (1, 28, 28)))
    assert "seven.png" in view.input_caption.text() and view.grid.count() == 32


def test_filters_of_conv1_are_32_tiles_of_its_weights(qtbot, live):
    view = shown(qtbot, FilterView(live.context))
    weights = conv_filters(live.context.model, "conv1")
    assert view.tile_count() == 32 and view.grid.captions()[-1] == "31"
    low, high, note = view.colour_bar.texts()
    assert float(high) == pytest.approx(np.abs(weights).max(), rel=1e-2) == -float(low)
    assert "blue negative" in note and "32 filters of 3×3" in view.explanation.text()
    view.block_combo.setCurrentIndex(view.block_combo.findData("conv2"))
    assert view.tile_count() == 64 and "mean of a filter's 32 kernels" in view.explanation.text()
    view.mode_combo.setCurrentIndex(view.mode_combo.findData("inputs"))
    view.filter_spin.setValue(3)
    assert view.tile_count() == 32 and view.explanation.text().startswith("Filter 3 of 64")


def test_filters_of_a_colour_network_are_rgb_images(qtbot):
    project = new_project("keras-mnist", (3, 32, 32), 10)
    session = TrainingSession()
    session.project = project
    context = InspectionContext(session, Document())
    session.weights_ready.emit(build_model(project.graph).state_dict(), 1)
    view = shown(qtbot, FilterView(context))  # the weights are enough: no data needed
    assert view.mode_combo.currentData() == "rgb" and view.tile_count() == 32
    assert not view.colour_bar.isVisible() and "red, green and blue" in view.explanation.text()


def test_confusion_matrix_counts_the_validation_split(qtbot, live):
    tabs = dict(inspection_tabs(live.context))
    view = shown(qtbot, tabs["Confusion matrix"])
    qtbot.waitUntil(lambda: view.matrix is not None and not view.busy, timeout=30_000)
    data = live.data
    probabilities = predictions(live.context.model, data.val_x, data.mean, data.std)
    expected = confusion_matrix(data.val_y, probabilities.argmax(1), 10)
    np.testing.assert_array_equal(view.matrix, expected)
    assert view.matrix.sum() == data.num_val == 128
    accuracy = np.trace(expected) / expected.sum()
    assert f"Validation accuracy {accuracy:.1%}" in view.summary_label.text()

    row, column = np.unravel_index(np.argmax(expected), expected.shape)
    centre = view.heatmap.cell_rect(int(row), int(column)).center()
    qtbot.mouseClick(view.heatmap, Qt.MouseButton.LeftButton, pos=centre)
    assert view.cell_grid.count() == min(int(expected[row, column]), CELL_LIMIT) > 0
    assert f"True {data.classes[row]}, predicted {data.classes[column]}" in \
        view.cell_label.text()
    grid = view.cell_grid  # a click on an image shows it in the other tabs
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.tile_rect(2).center())
    picked = int(np.flatnonzero((data.val_y == row) & (probabilities.argmax(1) == column))[2])
    assert grid.selected == 2
    assert tabs["Feature maps"].chooser.index == tabs["Predict"].chooser.index == picked

    mistakes = most_confident_mistakes(probabilities, data.val_y, 30)
    assert view.mistakes_grid.count() == len(mistakes)
    if len(mistakes):
        first = mistakes[0]
        guess = int(probabilities[first].argmax())
        assert view.mistakes_grid.captions()[0].startswith(
            f"{data.classes[data.val_y[first]]}→{data.classes[guess]}")


def test_predict_an_image_file_shows_the_top_five(qtbot, live, tmp_path):
    view = shown(qtbot, PredictView(live.context))
    assert len(view.bars.values()) == 5  # a validation image to start with
    digit = np.zeros((60, 45, 3), np.uint8)
    digit[10:50, 20:26] = 255
    path = png(tmp_path / "one.png", digit)
    assert view.open_path(path)
    values = view.bars.values()
    assert len(values) == 5 and sum(values) <= 1 + 1e-6 and values == sorted(values, reverse=True)
    image = load_image_file(path, (1, 28, 28))
    probabilities = predictions(live.context.model, image[None], live.data.mean, live.data.std)
    indices, expected = top_k(probabilities[0], 5)
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert view.bars.labels() == [live.data.classes[i] for i in indices]
    assert view.image_view.image().width() == 28 and "one.png" in view.image_caption.text()
    assert view.chooser.spin.text() == "an image file"

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert not view.open_path(broken)
    assert "cannot read 'broken.png'" in view.note_label.text()
    assert view.bars.values() == values  # the last prediction stays
    qtbot.keyClick(view.chooser.spin, Qt.Key.Key_Up)  # back to the validation images
    assert view.chooser.index == 0 and "validation image 0" in view.image_caption.text()
    assert view.verdict_label.text().count("the label is") == 1


def test_a_finished_run_opens_from_its_folder(qtbot, trained, tmp_path):
    _, data, run_dir = trained
    context = InspectionContext(TrainingSession(), Document())
    context.load_run(run_dir)
    assert context.ready and context.data.num_val == data.num_val
    assert context.description() == "from run run (epoch 1)"
    view = shown(qtbot, FeatureMapView(context))
    assert view.channel_count() == 32
    with pytest.raises(InspectionError, match="does not exist"):
        context.load_run(tmp_path / "nowhere")


def test_export_dialog_writes_an_onnx_file_that_onnxruntime_runs(qtbot, trained, tmp_path):
    import onnxruntime as ort

    dialog = ExportDialog(trained[2])
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.out_edit.text().endswith("run.onnx")
    out = tmp_path / "digits.onnx"
    dialog.out_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.running and not dialog.export_button.isEnabled() and dialog.busy.isVisible()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert dialog.error == "" and dialog.report is not None and out.exists()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {"image": np.zeros((2, 1, 28, 28), np.float32)})
    assert scores.shape == (2, 10)
    text = dialog.result_label.text()
    assert "largest difference" in text and "(limit 1e-4)" in text and str(out) in text
    assert "[0, 1]" in text  # the input range, which 0..255 input silently breaks
    label = dialog.result_label
    assert label.height() >= label.heightForWidth(label.width())  # no line cut off
    assert dialog.export_button.isEnabled() and not dialog.busy.isVisible()


def test_exporting_onto_an_existing_file_asks_first(qtbot, trained, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    out = tmp_path / "mine.pt"
    out.write_bytes(b"the user's own file")
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def question(_parent, _title, text, *_args):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    dialog = ExportDialog(trained[2])
    qtbot.addWidget(dialog)
    dialog.set_format("state_dict")
    dialog.out_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and str(out) in asked[0] and not dialog.running
    assert out.read_bytes() == b"the user's own file"
    answer[0] = QMessageBox.StandardButton.Yes
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert len(asked) == 2 and dialog.error == "" and dialog.report is not None
    assert out.read_bytes() != b"the user's own file"


def test_an_export_error_is_a_message_in_the_dialog(qtbot, tmp_path):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    (empty / "model.pt").write_bytes(b"junk")
    dialog = ExportDialog(empty)
    qtbot.addWidget(dialog)
    dialog.set_format("torchscript")
    assert dialog.out_edit.text().endswith("not-a-run.torchscript.pt")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert dialog.report is None and "project.cnnproj" in dialog.error
    assert "Not exported" in dialog.result_label.text()
    assert "Traceback" not in dialog.result_label.text()


def test_the_menu_command_opens_the_dialog_on_the_latest_run(qtbot, tmp_path):
    window = QWidget()
    qtbot.addWidget(window)
    window.training_page = SimpleNamespace(session=SimpleNamespace(run_dir=tmp_path / "run-7"))
    dialog = open_export_dialog(window)
    assert dialog.run_edit.text() == str(tmp_path / "run-7") and dialog.isVisible()
    dialog.close()
    bare = QWidget()
    qtbot.addWidget(bare)
    unknown = open_export_dialog(bare)  # no training page: the user picks the run folder
    assert unknown.run_edit.text() == "" and not unknown.export_button.isEnabled()
    unknown.close()
