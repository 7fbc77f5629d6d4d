"""The learning-rate finder on the Training page: the button beside the learning-rate field, when
it is off and why, the dialog's sweep on a background thread, Cancel, and "Use this rate" as one
undo step (Ctrl+Z in the window)."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.lr_finder import BUTTON_TIP, RUNNING_TIP, LearningRateFinderDialog
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.test_rough_edges_training import CTRL, click_tab, training_page_with_preview
from tests.ui.training_pages import LONG, click, settle, tiny_project


def open_finder(qtbot, page) -> LearningRateFinderDialog:
    click_tab(qtbot, page.side_tabs, "Settings")
    click(qtbot, page.rate_finder)
    dialog = page.rate_finder.dialog
    assert isinstance(dialog, LearningRateFinderDialog) and dialog.isVisible()
    return dialog


def finish(qtbot, dialog: LearningRateFinderDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.running, timeout=LONG)


def test_the_button_sits_beside_the_learning_rate_field(make_page, tiny_npz):
    page = make_page(tiny_project(tiny_npz))
    panel = page.settings_panel
    button = page.rate_finder
    row, _ = panel.form.getWidgetPosition(button.parentWidget())
    label_row, _ = panel.form.getWidgetPosition(panel.labels["learning_rate"])
    assert row == label_row >= 0
    assert button.parentWidget() is panel.fields["learning_rate"].widget.parentWidget()
    assert button.isEnabled() and button.toolTip() == BUTTON_TIP
    assert button.text() == "Find learning rate…"


def test_the_sweep_plots_marks_the_suggestion_and_use_is_one_undo_step(make_window, qtbot,
                                                                         tiny_npz):
    project = tiny_project(tiny_npz)  # learning rate 0.01
    window = make_window(Document(project), recover=False)
    page = training_page_with_preview(qtbot, window)
    document = window.document
    dialog = open_finder(qtbot, page)
    assert dialog.windowModality() == Qt.WindowModal
    assert not dialog.use_button.isEnabled() and dialog.cancel_button.text() == "Cancel"
    finish(qtbot, dialog)

    result = dialog.result
    assert result is not None and result.suggestion is not None, dialog.status.text()
    assert 1e-4 <= result.suggestion <= 1e-1
    rates, losses = dialog.smooth_curve.getData()
    assert len(rates) == len(result.points) > 10  # plotted on a log axis: log10 of the rates
    assert rates[0] == pytest.approx(math.log10(1e-7))
    assert losses.tolist() == pytest.approx(result.smoothed)
    assert dialog.marker.isVisible()
    assert dialog.marker.value() == pytest.approx(math.log10(result.suggestion))
    status = dialog.status.text()
    assert "a tenth of the learning rate at which the smoothed loss is lowest" in status
    assert f"{result.suggestion:.2g}" in status and "Traceback" not in status
    assert dialog.use_button.text() == f"Use {result.suggestion:.2g}"
    assert dialog.cancel_button.text() == "Close"
    assert document.project.training["learning_rate"] == 0.01  # nothing changed yet

    steps_before = document.undo_stack.count()
    click(qtbot, dialog.use_button)
    assert document.project.training["learning_rate"] == pytest.approx(result.suggestion)
    assert document.undo_stack.count() == steps_before + 1
    field = page.settings_panel.fields["learning_rate"]
    assert field.spin.value() == pytest.approx(result.suggestion)  # the form shows it
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=5000)

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)  # one undo puts the old rate back
    assert document.project.training["learning_rate"] == 0.01
    assert field.spin.value() == pytest.approx(0.01)


def test_cancel_stops_the_sweep_and_offers_no_rate(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz))
    dialog = open_finder(qtbot, page)
    click(qtbot, dialog.cancel_button)  # while the dataset loads: before the first step
    finish(qtbot, dialog)
    assert dialog.result.stop_reason == "cancelled" and dialog.result.points == ()
    assert dialog.status.text().startswith("Cancelled after 0 of 100 steps")
    assert not dialog.use_button.isEnabled() and dialog.again_button.isEnabled()
    assert not dialog.marker.isVisible()
    click(qtbot, dialog.again_button)  # a second sweep runs to the end
    finish(qtbot, dialog)
    assert dialog.result.suggestion is not None and dialog.use_button.isEnabled()
    click(qtbot, dialog.cancel_button)  # now "Close"
    assert not dialog.isVisible()
    assert page.document.project.training["learning_rate"] == 0.01


def test_the_button_is_off_while_training_with_the_reason(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz, epochs=50))
    click(qtbot, page.train_button)
    assert not page.rate_finder.isEnabled()
    assert page.rate_finder.toolTip() == RUNNING_TIP
    settle(page)
    qtbot.waitUntil(lambda: page.session.state == "idle", timeout=LONG)
    assert page.rate_finder.isEnabled() and page.rate_finder.toolTip() == BUTTON_TIP


def test_the_button_is_off_while_the_network_has_errors(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz))
    document = page.document
    conv = next(b for b in document.graph.blocks if b.type == "Conv2D")
    document.edit("kernel", lambda g: g.set_params(conv.id, {"kernel": 40}))  # > 28 pixels
    assert document.analysis.errors
    assert not page.rate_finder.isEnabled()
    assert page.rate_finder.toolTip().startswith("The network has 1 problem(s)")
    assert page.rate_finder.open_dialog() is None
    document.undo_stack.undo()
    assert page.rate_finder.isEnabled()


def test_the_button_is_off_while_the_dataset_cannot_load(make_page, qtbot, tiny_npz, tmp_path):
    page = make_page(tiny_project(tiny_npz))
    missing = tmp_path / "missing.npz"
    page.document.update_settings("dataset", {"spec": f"npz:{missing}"})
    qtbot.waitUntil(lambda: page.dataset_panel.error_text != "", timeout=LONG)
    assert not page.rate_finder.isEnabled()
    tip = page.rate_finder.toolTip()
    assert tip.startswith("The dataset cannot be loaded:") and "not found" in tip


def test_a_sweep_that_cannot_run_says_why_in_the_dialog(make_page, qtbot, tiny_npz):
    graph = Graph()  # a Dense of 3 units for 10 classes: the engine refuses it
    graph.chain([("Input", {"channels": 1, "height": 28, "width": 28}), ("Flatten", {}),
                 ("Dense", {"units": 3}), ("Output", {})])
    project = Project.new(graph, name="three", dataset={"spec": tiny_npz})
    page = make_page(project)
    dialog = LearningRateFinderDialog(page.document, True, page)
    qtbot.addWidget(dialog)
    finish(qtbot, dialog)
    status = dialog.status.text()
    assert status == (f"The sweep could not run. The Dense block 'fc1' (id dense_1) gives 3 "
                      f"class scores but the dataset '{tiny_npz}' has 10 classes: set its units "
                      "to 10.")
    assert "Traceback" not in status and "color" in dialog.status.styleSheet()
    assert not dialog.use_button.isEnabled()



def test_escape_during_the_sweep_cancels_it_and_closes_the_dialog(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz))
    dialog = open_finder(qtbot, page)
    control = dialog.control
    qtbot.waitUntil(lambda: len(dialog.points) >= 2, timeout=LONG)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert control.stop_requested and not dialog.isVisible()
    assert dialog.task.wait(0)  # closing waited for the sweep's thread to end
    assert page.document.project.training["learning_rate"] == 0.01
