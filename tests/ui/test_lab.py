"""The convolution lab page driven as a student would: clicks, keys and drops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QLineEdit,
    QTableWidget,
)

from cnnstudio import cli
from cnnstudio.core.analysis import analyze
from cnnstudio.core.project import project_to_dict
from cnnstudio.lab import ops
from cnnstudio.ui import theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.lab import LabPage
from cnnstudio.ui.main_window import MainWindow, default_project


@pytest.fixture
def lab(qtbot) -> LabPage:
    page = LabPage(Document(default_project()))
    qtbot.addWidget(page)
    page.resize(1400, 820)
    page.show()
    page.activateWindow()
    qtbot.waitExposed(page)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is page, timeout=2000)
    return page


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window(recover=False)


def type_into(qtbot, widget, text: str) -> None:
    """Replace a spin box's text by typing, as a user does."""
    widget.setFocus()
    if isinstance(widget, QAbstractSpinBox):
        widget.selectAll()
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Tab)


def choose(qtbot, combo, text: str) -> None:
    """Pick the first item that starts with `text` with the keyboard: Home, then Down."""
    index = next(i for i in range(combo.count()) if combo.itemText(i).startswith(text))
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(index):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentIndex() == index, combo.currentText()


def edit_cell(qtbot, table: QTableWidget, row: int, column: int, text: str) -> None:
    rect = table.visualRect(table.model().index(row, column))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    (editor,) = [e for e in table.viewport().findChildren(QLineEdit) if e.isVisible()]
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState, timeout=2000)
    QApplication.processEvents()  # the item view commits the edit from its event queue


def settle(qtbot, filters) -> None:
    qtbot.waitUntil(lambda: not filters._timer.isActive(), timeout=3000)


def drop_file(widget, path: Path) -> None:
    """Drag a file over the widget and drop it (Qt delivers a drop only after an accepted
    drag-enter)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


# -- Filters ---------------------------------------------------------------------------------


def test_pick_image_and_kernel_change_stride_and_padding_read_the_size(qtbot, lab):
    filters = lab.filters
    settle(qtbot, filters)
    assert filters.sample_combo.currentText() == "Camera"
    choose(qtbot, filters.sample_combo, "Astronaut")
    settle(qtbot, filters)
    assert filters.image_name == "astronaut.png" and filters.rgb.shape == (512, 512, 3)
    choose(qtbot, filters.kernel_editor.library, "Sobel x")
    settle(qtbot, filters)
    assert filters.kernel_editor.matrix().tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert "height: ⌊(512 − 3 + 2·0)/1⌋ + 1 = 510" in filters.size_label.text()
    assert filters.conv_output.shape == (510, 510)

    type_into(qtbot, filters.stride_h, "2")
    choose(qtbot, filters.padding_combo, "same")
    settle(qtbot, filters)
    text = filters.size_label.text()
    assert "height: ⌊(512 − 3 + 0 + 1)/2⌋ + 1 = 256" in text
    assert "width: ⌊(512 − 3 + 2·1)/1⌋ + 1 = 512" in text
    assert filters.conv_output.shape == (256, 512)

    choose(qtbot, filters.padding_combo, "explicit")
    assert filters.explicit_row.isVisible()
    type_into(qtbot, filters.pad_h, "2")
    type_into(qtbot, filters.dilation_w, "2")
    settle(qtbot, filters)
    text = filters.size_label.text()
    assert "height: ⌊(512 − 3 + 2·2)/2⌋ + 1 = 257" in text
    assert "width: ⌊(512 − 5 + 2·1)/1⌋ + 1 = 510  (k′ = 2·(3 − 1) + 1 = 5)" in text
    assert filters.conv_output.shape == (257, 510)
    x = ops.to_grey(filters.rgb)
    expected = ops.correlate2d(x, ops.kernel("sobel_x"), (2, 1), (2, 1), (1, 2))
    np.testing.assert_allclose(filters.conv_output, expected)


def test_channels_activation_and_pooling(qtbot, lab):
    filters = lab.filters
    qtbot.mouseClick(filters.rgb_radio, Qt.MouseButton.LeftButton)
    settle(qtbot, filters)
    assert filters.conv_output.shape == (3, 510, 510)
    assert len(filters.output_view.tiles) == 3 and len(filters.input_view.tiles) == 4
    assert filters.conv_output.min() < 0  # vertical edges: negative values shown in blue
    assert filters.activated.min() == 0  # ReLU by default
    choose(qtbot, filters.activation_combo, "ELU")
    settle(qtbot, filters)
    assert filters.activated.min() >= -1.0 and filters.activated.min() < 0
    choose(qtbot, filters.pool_combo, "average")
    type_into(qtbot, filters.pool_size, "3")
    type_into(qtbot, filters.pool_stride, "3")
    settle(qtbot, filters)
    assert filters.pooled.shape == (3, 170, 170)
    np.testing.assert_allclose(filters.pooled, ops.pool2d(filters.activated, "average", 3, 3))
    assert "height: ⌊(510 − 3 + 2·0)/3⌋ + 1 = 170" in filters.pool_label.text()
    magnitude = np.abs(filters.conv_output)
    assert filters.output_view.scale == pytest.approx(np.quantile(magnitude, 0.995))
    low, zero, high = filters.output_view.bar_labels()
    assert (zero, low[:2], high[:2]) == ("0", "≤ ", "≥ ")


def test_open_by_drop_bad_files_and_kernels_that_do_not_fit(qtbot, lab, tmp_path):
    filters = lab.filters
    path = tmp_path / "tiny.png"
    image = QImage(6, 4, QImage.Format.Format_RGB888)
    image.fill(QColor("#808080"))
    assert image.save(str(path))
    drop_file(filters.input_view, path)
    settle(qtbot, filters)
    assert filters.image_name == "tiny.png" and filters.rgb.shape == (4, 6, 3)
    assert "tiny.png: 4×6 pixels" in filters.image_label.text()
    choose(qtbot, filters.kernel_editor.library, "Gaussian")
    type_into(qtbot, filters.kernel_editor.size_spin, "7")
    settle(qtbot, filters)
    assert "does not fit the 4×6 input" in filters.output_view.message
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a picture")
    assert not filters.open_file(bad)
    assert "cannot open 'broken.png'" in filters.image_label.text()
    assert filters.image_name == "tiny.png"


def test_custom_kernel_cell_and_size(qtbot, lab):
    filters = lab.filters
    editor = filters.kernel_editor
    settle(qtbot, filters)
    before = filters.conv_output.copy()
    edit_cell(qtbot, editor.table, 1, 1, "-4")
    settle(qtbot, filters)
    assert editor.key == "custom" and editor.name == "Custom"
    assert editor.matrix()[1, 1] == -4
    assert not np.allclose(before, filters.conv_output)
    type_into(qtbot, editor.cols_spin, "5")
    settle(qtbot, filters)
    assert editor.matrix().shape == (3, 5) and editor.matrix()[1, 2] == -4  # kept, centred
    assert "width: ⌊(512 − 5 + 2·0)/1⌋ + 1 = 508" in filters.size_label.text()
    edit_cell(qtbot, editor.table, 0, 0, "abc")
    assert editor.table.item(0, 0).text() == "0"


def test_a_512_rgb_photo_recomputes_quickly(qtbot, lab):
    filters = lab.filters
    choose(qtbot, filters.kernel_editor.library, "Gaussian")
    type_into(qtbot, filters.kernel_editor.size_spin, "7")
    qtbot.mouseClick(filters.rgb_radio, Qt.MouseButton.LeftButton)
    settle(qtbot, filters)
    assert filters.conv_output.shape == (3, 506, 506)
    assert filters.seconds < 0.3  # three channels, 7×7 kernel


# -- Step by step ----------------------------------------------------------------------------


def output_texts(table: QTableWidget) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def test_step_the_2d_example_to_the_end(qtbot, lab):
    steps = lab.steps
    lab.show_tab("steps")
    choose(qtbot, steps.example_combo, "2-D")
    assert steps.formula_label.text() == "y[0, 0] = 0·0 + 1·1 + 3·2 + 4·3 = 19"
    assert output_texts(steps.output_table) == [["19", ""], ["", ""]]
    for _ in range(3):
        qtbot.mouseClick(steps.next_button, Qt.MouseButton.LeftButton)
    assert output_texts(steps.output_table) == [["19", "25"], ["37", "43"]]
    assert steps.formula_label.text() == "y[1, 1] = 4·0 + 5·1 + 7·2 + 8·3 = 43"
    assert steps.step_label.text() == "Step 4 of 4"
    assert not steps.next_button.isEnabled()
    highlighted = {(r, c) for r in range(3) for c in range(3)
                   if steps.input_table.item(r, c).background().color() == QColor("#ffe082")}
    assert highlighted == {(1, 1), (1, 2), (2, 1), (2, 2)}
    qtbot.mouseClick(steps.previous_button, Qt.MouseButton.LeftButton)
    assert steps.formula_label.text().endswith("= 37")
    qtbot.mouseClick(steps.reset_button, Qt.MouseButton.LeftButton)
    assert steps.index == 0
    assert "height: ⌊(3 − 2 + 2·0)/1⌋ + 1 = 2" in steps.size_label.text()


def test_editing_a_cell_changes_the_result(qtbot, lab):
    steps = lab.steps
    lab.show_tab("steps")
    choose(qtbot, steps.example_combo, "2-D")
    edit_cell(qtbot, steps.input_table, 0, 1, "10")
    assert steps.formula_label.text() == "y[0, 0] = 0·0 + 10·1 + 3·2 + 4·3 = 28"
    edit_cell(qtbot, steps.kernel_table, 0, 0, "-1")
    assert steps.formula_label.text() == "y[0, 0] = 0·(−1) + 10·1 + 3·2 + 4·3 = 28"
    assert steps.trace.output.tolist() == [[28, 15], [34, 39]]
    type_into(qtbot, steps.pad_spin, "1")
    assert steps.trace.output.shape == (4, 4)
    assert steps.input_table.rowCount() == 5
    assert steps.formula_label.text() == "y[0, 0] = 0·(−1) + 0·1 + 0·2 + 0·3 = 0"
    assert not steps.input_table.item(0, 0).flags() & Qt.ItemFlag.ItemIsEditable
    type_into(qtbot, steps.pad_spin, "0")
    type_into(qtbot, steps.krows_spin, "4")
    assert steps.trace is None
    assert "does not fit the 3×3 input" in steps.formula_label.text()
    type_into(qtbot, steps.krows_spin, "2")
    assert steps.trace.output.tolist() == [[28, 15], [34, 39]]


def test_x_kernel_play_and_pooling_examples(qtbot, lab):
    steps = lab.steps
    lab.show_tab("steps")
    choose(qtbot, steps.example_combo, "5×5")
    steps.timer.setInterval(5)
    qtbot.mouseClick(steps.play_button, Qt.MouseButton.LeftButton)
    assert steps.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: steps.index == 8 and not steps.timer.isActive(), timeout=3000)
    assert output_texts(steps.output_table) == [["4", "3", "4"], ["2", "4", "3"],
                                                ["2", "3", "4"]]
    assert steps.play_button.text() == "▶ Play"
    for key, expected in (("Max", [["4", "2"], ["4", "2"]]),
                          ("Average", [["2", "1"], ["2.5", "1"]]),
                          ("Sum", [["8", "4"], ["10", "4"]])):
        choose(qtbot, steps.example_combo, key)
        assert steps.kernel_table.isHidden()
        for _ in range(3):
            qtbot.mouseClick(steps.next_button, Qt.MouseButton.LeftButton)
        assert output_texts(steps.output_table) == expected
    assert steps.formula_label.text() == "y[1, 1] = 1 + 0 + 2 + 1 = 4"


def test_the_1d_example(qtbot, lab):
    steps = lab.steps
    lab.show_tab("steps")
    assert steps.example.key == "conv1d"
    assert steps.formula_label.text() == "y[0] = 0·1 + 1·2 = 2"
    assert steps.size_label.text() == "Output size  o = ⌊(7 − 2 + 2·0)/1⌋ + 1 = 6"
    for _ in range(5):
        qtbot.keyClick(steps, Qt.Key.Key_Right)
    assert output_texts(steps.output_table) == [["2", "5", "8", "11", "14", "17"]]


# -- Activations -----------------------------------------------------------------------------


def test_activation_parameters_change_the_curves(qtbot, lab):
    view = lab.activations
    lab.show_tab("activations")
    leaky = view.curves["leaky_relu"][0]
    assert leaky.yData[0] == pytest.approx(-0.5)  # x = −5, ε = 0.1
    type_into(qtbot, view.eps_spin, "0.3")
    assert leaky.yData[0] == pytest.approx(-1.5)
    assert "0.3·x" in view.plots["leaky_relu"].getPlotItem().titleLabel.text
    elu, elu_grad = view.curves["elu"]
    type_into(qtbot, view.alpha_spin, "2")
    assert elu.yData[0] == pytest.approx(2 * np.expm1(-5))
    assert elu_grad.yData[0] == pytest.approx(2 * np.exp(-5))
    type_into(qtbot, view.range_spin, "10")
    assert view.curves["relu"][0].xData[0] == -10
    qtbot.mouseClick(view.derivative_check, Qt.MouseButton.LeftButton)
    assert not view.curves["tanh"][1].isVisible()


def test_softmax_panel(qtbot, lab):
    view = lab.activations
    lab.show_tab("activations")
    texts = [view.p_table.item(0, k).text() for k in range(3)]
    assert texts == ["0.659", "0.242", "0.099"]
    edit_cell(qtbot, view.z_table, 0, 2, "2")
    p = ops.softmax([2, 1, 2])
    assert [view.p_table.item(0, k).text() for k in range(3)] == [f"{v:.3f}" for v in p]
    assert "Σ p = 1.000" in view.sum_label.text()
    type_into(qtbot, view.length_spin, "4")
    assert view.p_table.columnCount() == 4


# -- from the lab to the network -------------------------------------------------------------


def test_use_as_first_layer(qtbot, window):
    before = project_to_dict(window.document.project)
    window.show_page("lab")
    filters = window.lab_page.filters
    choose(qtbot, filters.kernel_editor.library, "Sobel x")
    assert not filters.trainable_check.isChecked()
    qtbot.mouseClick(filters.use_button, Qt.MouseButton.LeftButton)
    assert window.current_page() == "network"
    graph = window.document.graph
    (block,) = [b for b in graph.blocks if b.name.startswith("lab_")]
    assert block.name == "lab_sobel_x" and block.type == "Conv2D"
    assert block.params["initial_kernel"] == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert block.params["kernel"] == [3, 3] and block.params["filters"] == 1
    assert block.params["padding"] == "same" and block.params["trainable"] is False
    source = next(b for b in graph.blocks if b.type == "Input")
    assert graph.outputs_of(source.id) == [block.id]
    assert analyze(graph).ok
    assert window.canvas.selected_ids() == [block.id]
    assert "lab_sobel_x" in window.statusBar().currentMessage()
    window.document.undo_stack.undo()
    assert project_to_dict(window.document.project) == before
    window.show_page("lab")
    qtbot.mouseClick(filters.trainable_check, Qt.MouseButton.LeftButton)
    choose(qtbot, filters.kernel_editor.library, "Gaussian")
    qtbot.mouseClick(filters.use_button, Qt.MouseButton.LeftButton)
    block = next(b for b in window.document.graph.blocks if b.name.startswith("lab_"))
    assert block.params["kernel"] == [5, 5] and block.params["trainable"] is True
    assert analyze(window.document.graph).ok


def test_theme_switch_recolours_the_plots(qtbot, window):
    window.show_page("lab")
    window.set_theme("dark")
    plot = window.lab_page.activations.plots["relu"]
    qtbot.waitUntil(lambda: plot.backgroundBrush().color() == theme.DARK.canvas, timeout=2000)
    window.set_theme("light")
    qtbot.waitUntil(lambda: plot.backgroundBrush().color() == theme.LIGHT.canvas, timeout=2000)


def test_screenshot_of_the_lab_page(tmp_path):
    path = tmp_path / "lab.png"
    assert cli.main(["--screenshot", str(path), "--page", "lab", "--theme", "light"]) == 0
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1400, 900)


def test_numbers_typed_into_the_grids():
    from cnnstudio.ui.lab.widgets import parse_number

    assert [parse_number(t) for t in ("−4", "-4", "2,5", " 3 ", "1e-3")] == [-4, -4, 2.5, 3, 0.001]
    assert [parse_number(t) for t in ("", "abc", "nan", "inf")] == [None] * 4
