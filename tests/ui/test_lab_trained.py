"""The convolution lab on a trained run, driven as a user drives it: the source chooser, the run
and block combos, clicks on kernels and on the output map, Next, and the training page's
"Open in lab" button. What it shows is checked against the run's torch model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from cnnstudio.lab import ops
from cnnstudio.train import learned_kernels as lk
from cnnstudio.ui.document import Document
from cnnstudio.ui.lab import LabPage
from cnnstudio.ui.lab.widgets import MapView
from cnnstudio.ui.main_window import default_project
from cnnstudio.ui.training.inspect.maps import FilterView
from tests.nn.test_export import make_run
from tests.torch_threads import one_torch_thread_then_wait  # noqa: F401 (autouse fixture)
from tests.ui.test_lab import choose

RUN_NAME = "2026-01-02_10-20-30"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs folder: one Keras-MNIST run with weights, and a run folder without them."""
    root = tmp_path_factory.mktemp("runs")
    make_run(root / RUN_NAME, "keras-mnist")
    unfinished = make_run(root / "2026-01-01_09-00-00", "keras-mnist")
    (unfinished / "model.pt").unlink()
    return root


@pytest.fixture
def lab(qtbot, runs) -> LabPage:
    page = LabPage(Document(default_project()), runs_root=lambda: runs)
    qtbot.addWidget(page)
    page.resize(1400, 900)
    page.show()
    qtbot.waitExposed(page)
    return page


def open_the_run(qtbot, lab: LabPage) -> None:
    """Kernels → A trained run…, then the run in the Run combo, as a user picks them."""
    choose(qtbot, lab.source_combo, "A trained run")
    view = lab.trained
    assert lab.sources.currentWidget() is view
    choose(qtbot, view.run_combo, "2026-01-02 10:20:30")
    qtbot.waitUntil(lambda: view.conv is not None and not view.loading, timeout=20000)


def click_pixel(qtbot, view: MapView, tile: int, row: int, col: int) -> None:
    target = view._layout()[tile][1]
    h, w = view.tiles[tile].image.height(), view.tiles[tile].image.width()
    point = QPoint(target.x() + int((col + 0.5) * target.width() / w),
                   target.y() + int((row + 0.5) * target.height() / h))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=point)


def model_output(lab: LabPage) -> np.ndarray:
    view = lab.trained
    return lk.block_output(view.network, view.conv.block_id, view.image)


def test_the_runs_with_weights_are_listed_and_the_kernels_shown_are_the_weights(qtbot, lab):
    open_the_run(qtbot, lab)
    view = lab.trained
    runs = [view.run_combo.itemText(i) for i in range(view.run_combo.count())]
    assert runs == ["2026-01-02 10:20:30 · Keras MNIST CNN", "Choose a run folder…"]
    assert [view.block_combo.itemText(i) for i in range(view.block_combo.count())] == [
        "conv1 · 32 filters 3×3", "conv2 · 64 filters 3×3", "conv3 · 64 filters 3×3"]
    weight = view.network.model.blocks["conv1"].conv.weight.detach().double().numpy()
    assert len(view.kernels_view.tiles) == 32
    for f, tile in enumerate(view.kernels_view.tiles):
        np.testing.assert_array_equal(tile.values, weight[f, 0])
    np.testing.assert_array_equal(view.kernel_table.values(), weight[0, 0])
    assert "Weights from run 2026-01-02_10-20-30" in view.source_label.text()
    assert not view.channel_combo.isEnabled()  # one input channel: nothing to choose


@pytest.mark.parametrize("block", ["conv1", "conv2"])
def test_an_applied_learned_kernel_gives_the_models_activation(qtbot, lab, block):
    open_the_run(qtbot, lab)
    view = lab.trained
    choose(qtbot, view.block_combo, block)
    assert view.conv.block_id == block
    click_pixel(qtbot, view.kernels_view, 5, 1, 1)  # a click on filter 5's kernel picks it
    assert view.filter == 5
    np.testing.assert_allclose(view.output, model_output(lab)[5], rtol=0, atol=TOLERANCE)
    assert view.model_difference < TOLERANCE
    assert "differs by at most" in view.output_label.text()
    choose(qtbot, view.image_combo, "Photo: camera")  # a photo, resized to 28×28 grey
    assert view.image.shape == (1, 28, 28)
    np.testing.assert_allclose(view.output, model_output(lab)[5], rtol=0, atol=TOLERANCE)


def test_the_channel_chooser_shows_one_channels_kernel_or_the_sum(qtbot, lab):
    open_the_run(qtbot, lab)
    view = lab.trained
    choose(qtbot, view.block_combo, "conv2")
    weight = view.network.model.blocks["conv2"].conv.weight.detach().double().numpy()
    view.choose_filter(4)
    choose(qtbot, view.channel_combo, "input channel 3")
    np.testing.assert_array_equal(view.kernel_table.values(), weight[4, 3])
    np.testing.assert_array_equal(view.kernels_view.tiles[9].values, weight[9, 3])
    assert "its kernel for input channel 3" in view.kernel_label.text()
    assert view.stepper.window_caption.text() == "Input window (channel 3)"
    choose(qtbot, view.channel_combo, "the sum over the 32 input channels")
    np.testing.assert_allclose(view.kernel_table.values(), weight[4].sum(axis=0))
    assert "summed over the input channels" in view.kernel_label.text()


def test_the_window_chooser_follows_clicks_and_the_steps_add_up(qtbot, lab):
    open_the_run(qtbot, lab)
    view = lab.trained
    choose(qtbot, view.block_combo, "conv2")
    view.choose_filter(2)
    click_pixel(qtbot, view.output_view, 0, 4, 6)
    assert view.stepper.pixel == (4, 6)
    assert view.output_view.marks == {0: (4, 6, 1, 1)}
    assert view.input_view.marks == {0: (4, 6, 3, 3)}  # valid padding: the window starts there
    qtbot.mouseClick(view.stepper.next_button, Qt.MouseButton.LeftButton)
    assert view.stepper.pixel == (4, 7)
    steps = view.arithmetic
    bias = float(view.conv.bias[2])
    assert steps.out == (4, 7) and steps.pre == pytest.approx(steps.total + bias)
    assert steps.value == pytest.approx(view.output[4, 7], abs=1e-12)
    assert steps.value == pytest.approx(float(model_output(lab)[2, 4, 7]), abs=TOLERANCE)
    np.testing.assert_allclose(view.stepper.product_table.values(),
                               steps.windows[0] * steps.kernels[0])
    assert view.stepper.product_table.item(0, 0).text() == ops.fmt(
        steps.windows[0, 0, 0] * steps.kernels[0, 0, 0])
    texts = [label.text() for label in view.stepper.sum_labels]
    assert "Σ over the 32 input channels = " + ops.fmt(steps.total, 4) in texts[0]
    assert f"= {ops.fmt(steps.pre, 4)}" in texts[1]
    assert texts[2].startswith("y[4, 7]") and "ReLU" in texts[2]
    for _ in range(4):
        qtbot.mouseClick(view.stepper.next_button, Qt.MouseButton.LeftButton)
    assert view.stepper.pixel == (5, 0)  # past the row's end: the next row
    view.stepper.set_pixel(10, 10)
    assert not view.stepper.next_button.isEnabled()


def test_open_in_lab_on_the_training_pages_filters(qtbot, make_window, runs, tmp_path):
    run_dir = shutil.copytree(runs / RUN_NAME, tmp_path / "run")
    window = make_window(recover=False)
    window.show_page("training")
    context = window.training_page.context
    context.load_run(run_dir)
    page = window.training_page
    index = next(i for i in range(page.views.count()) if page.views.tabText(i) == "Filters")
    page.views.setCurrentIndex(index)
    view = page.views.widget(index)
    assert isinstance(view, FilterView)
    qtbot.waitUntil(lambda: view.block_combo.count() == 3, timeout=5000)
    choose(qtbot, view.block_combo, "conv2")
    qtbot.mouseClick(view.lab_button, Qt.MouseButton.LeftButton)
    assert window.current_page() == "lab"
    lab = window.lab_page
    assert lab.source() == "trained" and lab.sources.currentWidget() is lab.trained
    trained = lab.trained
    assert trained.block_combo.currentData() == "conv2" and trained.conv.block_id == "conv2"
    expected = context.model.blocks["conv2"].conv.weight.detach().double().numpy()
    np.testing.assert_array_equal(trained.conv.weights, expected)
    assert trained.run_combo.currentText() == "the run on the Training page"
    assert f"Weights from run {Path(run_dir).name}" in trained.source_label.text()


def test_a_folder_that_is_not_a_run_says_so(qtbot, lab, tmp_path):
    lab.open_run(tmp_path)
    view = lab.trained
    qtbot.waitUntil(lambda: not view.loading and "Cannot open" in view.message.text(),
                    timeout=10000)
    assert view.stack.currentIndex() == 0 and "project.cnnproj" in view.message.text()
    assert "Traceback" not in view.message.text()


def test_an_image_file_is_read_as_the_networks_input(qtbot, lab, tmp_path):
    open_the_run(qtbot, lab)
    view = lab.trained
    colour = np.zeros((30, 40, 3), np.uint8)
    colour[:, 20:] = (250, 120, 10)
    path = tmp_path / "half.png"
    Image.fromarray(colour).save(path)
    assert view.open_image_file(path)
    assert view.image.shape == (1, 28, 28) and view.image_combo.currentIndex() == -1
    assert view.image_combo.placeholderText() == "half.png"
    np.testing.assert_allclose(view.output, model_output(lab)[view.filter], atol=TOLERANCE)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert not view.open_image_file(bad)
    assert "cannot read 'bad.png' as an image" in view.input_label.text()
    QApplication.processEvents()


def test_an_11x11_kernel_fits_the_page_as_a_3x3_one_does(qtbot, lab, tmp_path):
    """Big kernels get smaller cells and scroll: the page never asks for a bigger window."""
    from cnnstudio.core.graph import Graph

    graph = Graph()
    graph.chain([("Input", {"channels": 3, "height": 64, "width": 64}),
                 ("Conv2D", {"filters": 8, "kernel": [11, 11], "stride": [4, 4],
                             "activation": "relu"}),
                 ("Flatten", {}), ("Dense", {"units": 3}), ("Output", {})])
    lab.open_run(make_run(tmp_path / "big", graph))
    view = lab.trained
    qtbot.waitUntil(lambda: view.conv is not None and not view.loading, timeout=20000)
    assert view.kernel_table.rowCount() == 11 and view.stepper.window_table.rowCount() == 11
    assert view.stepper.window_table.cell == 24
    assert view.kernel_table.item(0, 0).text() == ops.fmt(round(view.conv.weights[0, 0, 0, 0], 2))
    hint = lab.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800, hint
    assert "more products" in view.stepper.channel_label.text()


def test_the_page_scrolls_only_for_what_it_shows(qtbot, lab):
    """The lab scrolls in a short window, but the hidden classic tabs set no scroll range for
    the trained-run view (an empty page with a scroll bar, its text pushed far down)."""
    lab.resize(1200, 480)
    qtbot.wait(20)
    scroll_bar = lab.classic_area.verticalScrollBar()
    assert scroll_bar.maximum() > 0  # the classic tabs need 466 px below the chooser
    assert lab.minimumSizeHint().height() <= 480
    choose(qtbot, lab.source_combo, "A trained run")
    qtbot.wait(20)
    assert lab.trained.height() <= lab.height()  # no scroll range: it fits the page
