"""Grad-CAM and saliency overlays in the Predict and Confusion matrix views, clicked as a user
clicks them, on a briefly trained Keras-book network (tests/explain_run.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox

from cnnstudio.train.attribution import GRADCAM, SALIENCY, explain, overlay
from cnnstudio.train.inspect import validation_images
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.inspect.overlay import NONE
from cnnstudio.ui.training.inspect.views import (
    ConfusionView,
    InspectionContext,
    PredictView,
)
from cnnstudio.ui.training.session import TrainingSession
from tests.explain_run import train_keras_run
from tests.torch_threads import one_torch_thread_then_wait  # noqa: F401 (autouse fixture)
from tests.ui.views import shown

SCREENSHOT = "/tmp/gradcam_predict.png"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_keras_run(tmp_path_factory.mktemp("gradcam"))


@pytest.fixture
def context(run_dir):
    context = InspectionContext(TrainingSession(), Document())
    context.load_run(run_dir)
    return context


def pixels(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(rgb.constBits(), np.uint8, rgb.sizeInBytes())
    return data.reshape(rgb.height(), rgb.bytesPerLine())[:, :rgb.width() * 3].copy()


def choose(qtbot, combo: QComboBox, data: object) -> None:
    """Pick an entry of a combo box with the keyboard, as a user would."""
    combo.setFocus()
    target = combo.findData(data)
    assert target >= 0
    while combo.currentIndex() != target:
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)


def wait_for_map(qtbot, view: PredictView) -> None:
    qtbot.waitUntil(lambda: not view.explain_busy and view.explanation is not None,
                    timeout=20_000)


def test_predict_shows_a_gradcam_overlay_with_its_scale_and_opacity(qtbot, context):
    view = shown(qtbot, PredictView(context))
    controls = view.explain
    assert controls.method() == NONE and view.heat_bar.isHidden()
    plain = pixels(view.image_view.image())
    blocks = [controls.block_combo.itemData(i) for i in range(controls.block_combo.count())]
    assert blocks == ["conv1", "conv2", "conv3"] and controls.block_combo.currentData() == "conv2"
    assert "(11×11 map)" in controls.block_combo.currentText()

    choose(qtbot, controls.method_combo, GRADCAM)
    assert controls.block_combo.isVisible() and not view.heat_bar.isHidden()
    wait_for_map(qtbot, view)
    found = view.explanation
    assert found.method == GRADCAM and found.block_id == "conv2"
    assert found.target == int(np.argmax(view.probabilities))
    (expected,) = explain(context.model, view.chooser.image, context.mean, context.std)
    np.testing.assert_allclose(found.heat, expected.heat, atol=1e-6)
    half = pixels(view.image_view.image())
    assert half.shape == plain.shape and not np.array_equal(half, plain)
    np.testing.assert_array_equal(half.reshape(28, 28, 3),
                                  overlay(view.chooser.image, found.heat, 0.5))
    assert "Grad-CAM of conv2 for" in view.explain_label.text()

    slider = controls.opacity_slider
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_End)  # opacity 100 %: the map alone, no new map
    assert slider.value() == 100 and view.explanation is found
    assert not np.array_equal(pixels(view.image_view.image()), half)
    qtbot.keyClick(slider, Qt.Key.Key_Home)
    np.testing.assert_array_equal(pixels(view.image_view.image()), plain)
    slider.setValue(55)

    choose(qtbot, controls.block_combo, "conv1")
    wait_for_map(qtbot, view)
    assert view.explanation.block_id == "conv1"
    assert not np.allclose(view.explanation.heat, found.heat)
    view.grab().save(SCREENSHOT)

    qtbot.keyClick(view.chooser.spin, Qt.Key.Key_Up)  # the next image: a new map
    wait_for_map(qtbot, view)
    assert view.chooser.index == 1
    (next_map,) = explain(context.model, view.chooser.image, context.mean, context.std,
                          block_id="conv1")
    np.testing.assert_allclose(view.explanation.heat, next_map.heat, atol=1e-6)

    choose(qtbot, controls.method_combo, SALIENCY)
    assert not controls.block_combo.isVisible()
    wait_for_map(qtbot, view)
    assert view.explanation.method == SALIENCY and view.explanation.block_id is None

    choose(qtbot, controls.method_combo, NONE)
    assert view.explanation is None and view.heat_bar.isHidden()
    assert not controls.opacity_slider.isEnabled()


def test_confusion_images_and_mistakes_can_show_the_overlay(qtbot, context):
    view = shown(qtbot, ConfusionView(context))
    qtbot.waitUntil(lambda: not view.busy and view.matrix is not None, timeout=20_000)
    plain_mistakes = [pixels(view.mistakes_grid.image(i))
                      for i in range(view.mistakes_grid.count())]
    assert plain_mistakes, "the briefly trained network makes mistakes"
    cell = view.heatmap.cell_rect(3, 3).center()
    qtbot.mouseClick(view.heatmap, Qt.MouseButton.LeftButton, pos=QPoint(cell))
    plain_cell = [pixels(view.cell_grid.image(i)) for i in range(view.cell_grid.count())]
    assert plain_cell

    qtbot.mouseClick(view.overlay_check, Qt.MouseButton.LeftButton)
    assert view.overlay_check.isChecked()
    qtbot.waitUntil(lambda: not view.overlay_busy and view.overlays_shown, timeout=20_000)
    mistakes = [pixels(view.mistakes_grid.image(i)) for i in range(view.mistakes_grid.count())]
    assert len(mistakes) == len(plain_mistakes)
    assert all(not np.array_equal(a, b) for a, b in zip(mistakes, plain_mistakes))
    first = int(view.indices[view._mistake_rows[0]])
    image = validation_images(context.data, [first])[0]
    (expected,) = explain(context.model, image, context.mean, context.std)
    np.testing.assert_array_equal(mistakes[0].reshape(28, 28, 3),
                                  overlay(image, expected.heat, 0.5))
    cells = [pixels(view.cell_grid.image(i)) for i in range(view.cell_grid.count())]
    assert all(not np.array_equal(a, b) for a, b in zip(cells, plain_cell))

    qtbot.mouseClick(view.overlay_check, Qt.MouseButton.LeftButton)  # off: the plain images
    assert [pixels(view.mistakes_grid.image(i)) for i in range(len(mistakes))][0].tolist() \
        == plain_mistakes[0].tolist()
