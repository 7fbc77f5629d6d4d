"""The export dialog's "Time each block": the table, and the latency tint on the canvas with its
legend, next to (never instead of) the training health tint."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from cnnstudio.core.project import Project, load_project
from cnnstudio.core.templates import build_template
from cnnstudio.ui.canvas.scene import HEALTH_TINT, LATENCY_TINT
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.export_dialog import ExportDialog, open_export_dialog
from cnnstudio.ui.training.latency import HEAT, LatencyLegend
from tests.nn.test_profile import write_run

MAIN_PATH = ["input", "relu", "heavy", "gap", "logits", "output"]
AUXILIARY = {"aux_pool", "aux_fc", "aux"}
TIMEOUT = 60_000


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("latency") / "run")


def time_blocks(qtbot, dialog, run) -> None:
    """Name the run and click "Time each block"; wait for the table."""
    section = dialog.latency
    dialog.run_edit.setText(str(run))
    assert section.time_button.isEnabled() and not section.show_button.isEnabled()
    states: list[bool] = []
    section.busy_changed.connect(lambda: states.append(section.running))
    qtbot.mouseClick(section.time_button, Qt.MouseButton.LeftButton)
    assert states[:1] == [True]  # the timing started at the click
    if section.running:  # (a tiny network may already be done, the click's events processed)
        assert not section.time_button.isEnabled()
        assert not dialog.export_button.isEnabled()  # an export would slow the timing down
        with qtbot.waitSignal(section.busy_changed, timeout=TIMEOUT):  # and ends
            pass
    assert states[-1] is False and not section.running and section.error == ""


def test_time_each_block_fills_the_table_and_tints_the_canvas(qtbot, make_window, heavy_run):
    window = make_window(Document(load_project(heavy_run / "project.cnnproj")), recover=False)
    scene = window.canvas.scene()
    dialog = open_export_dialog(window)
    section = dialog.latency
    time_blocks(qtbot, dialog, heavy_run)

    table = section.table
    assert table.isVisible() and sorted(table.block_ids()) == sorted(MAIN_PATH)
    assert table.block_ids()[0] == "heavy"  # slowest first: 19.7 M MACs against next to none
    assert table.item(0, 0).text() == "wide 5x5" and table.item(0, 3).text() == "19,660,800"
    assert "Slowest block: wide 5x5 (Conv2D)" in section.note.text()
    assert dialog.export_button.isEnabled() and section.show_button.isEnabled()
    assert table.horizontalHeader().length() <= table.viewport().width()  # no column cut off

    qtbot.mouseClick(section.show_button, Qt.MouseButton.LeftButton)
    assert scene.tint_kind() == LATENCY_TINT
    assert "Tinted 6 blocks on the canvas" in section.note.text()
    for item in scene.block_items():
        colour, text = item.health()
        if item.block_id in AUXILIARY:  # not in the exported model: not timed, not tinted
            assert colour is None and text == ""
            continue
        assert colour is not None
        assert text.startswith("Latency on this computer: ") and "of the forward pass" in text
        assert text in item.toolTip()
    assert scene.item_for("heavy").health()[0] == HEAT[2]  # the slowest: the scale's red end
    assert scene.item_for("relu").health()[0] != HEAT[2]

    legend = window.canvas.findChild(LatencyLegend)
    assert legend.isVisible() and legend.title.text() == "<b>Latency</b>"
    assert legend.high.text() == f"{section.profile.top.share:.0%}"
    assert window.canvas.viewport().geometry().contains(legend.geometry())
    assert section.clear_button.isEnabled()

    qtbot.mouseClick(legend.clear_button, Qt.MouseButton.LeftButton)
    assert scene.tint_kind() == "" and not legend.isVisible()
    assert all(item.health() == (None, "") for item in scene.block_items())
    assert not section.clear_button.isEnabled()
    qtbot.mouseClick(section.show_button, Qt.MouseButton.LeftButton)
    assert legend.isVisible() and window.canvas.findChildren(LatencyLegend) == [legend]
    qtbot.mouseClick(section.clear_button, Qt.MouseButton.LeftButton)  # the dialog's own
    assert scene.tint_kind() == "" and not legend.isVisible()
    dialog.reject()


def test_latency_and_training_health_tints_do_not_wipe_each_other(qtbot, make_window,
                                                                   heavy_run):
    window = make_window(Document(load_project(heavy_run / "project.cnnproj")), recover=False)
    scene = window.canvas.scene()
    dialog = open_export_dialog(window)
    time_blocks(qtbot, dialog, heavy_run)
    qtbot.mouseClick(dialog.latency.show_button, Qt.MouseButton.LeftButton)
    latency_tip = scene.item_for("heavy").health()[1]
    legend = window.canvas.findChild(LatencyLegend)

    scene.set_health(None)  # an epoch ends with Training Health off: the latency tint stays
    assert scene.tint_kind() == LATENCY_TINT and scene.item_for("heavy").health()[1] == latency_tip
    blue = QColor("#1e88e5")
    scene.set_health({"heavy": (blue, "Gradient norm 1 in epoch 1")})  # turned on: it shows
    assert scene.tint_kind() == HEALTH_TINT and not legend.isVisible()
    assert scene.item_for("heavy").health() == (blue, "Gradient norm 1 in epoch 1")
    assert scene.item_for("relu").health() == (None, "")
    scene.set_health(None)  # and turned off again: the latency tint is back, with its legend
    assert scene.item_for("heavy").health()[1] == latency_tip and legend.isVisible()

    window.document.set_project(Project.new(build_template("lenet5", (1, 32, 32), 10)))
    assert scene.tint_kind() == "" and not legend.isVisible()  # another network: times gone
    dialog.reject()


def test_another_network_on_the_canvas_or_no_window_is_explained(qtbot, make_window, heavy_run):
    other = Project.new(build_template("keras-mnist", (1, 28, 28), 10))
    window = make_window(Document(other), recover=False)
    dialog = open_export_dialog(window)
    time_blocks(qtbot, dialog, heavy_run)
    qtbot.mouseClick(dialog.latency.show_button, Qt.MouseButton.LeftButton)
    assert "The canvas shows another network than this run" in dialog.latency.note.text()
    assert window.canvas.scene().tint_kind() == ""

    window.document.set_project(load_project(heavy_run / "project.cnnproj"))
    window.document.edit("Delete", lambda graph: graph.remove_block("logits"))  # changed since
    qtbot.mouseClick(dialog.latency.show_button, Qt.MouseButton.LeftButton)
    assert "Tinted 5 blocks on the canvas" in dialog.latency.note.text()
    assert "1 of the run's blocks is not on the canvas" in dialog.latency.note.text()
    assert window.canvas.scene().tint_kind() == LATENCY_TINT
    dialog.reject()

    alone = ExportDialog(heavy_run)
    qtbot.addWidget(alone)
    alone.show()
    time_blocks(qtbot, alone, heavy_run)
    assert alone.latency.table.isVisible() and not alone.latency.show_button.isEnabled()
    assert "Open this dialog from the main window" in alone.latency.show_button.toolTip()


def test_a_run_that_cannot_be_timed_says_why(qtbot, tmp_path):
    dialog = ExportDialog(tmp_path)
    qtbot.addWidget(dialog)
    dialog.show()
    time_blocks_fail = dialog.latency
    with qtbot.waitSignal(time_blocks_fail.busy_changed, timeout=TIMEOUT):
        qtbot.mouseClick(time_blocks_fail.time_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(time_blocks_fail.busy_changed, timeout=TIMEOUT):
        pass
    assert "is not a training run: it has no project.cnnproj" in time_blocks_fail.error
    assert time_blocks_fail.note.text().startswith("Not timed. ")
    assert not time_blocks_fail.table.isVisible()


def test_the_legend_shows_in_the_corner_when_the_canvas_page_comes_back(qtbot, make_window,
                                                                       heavy_run):
    """Timed from the Training page (the export dialog over it), seen on the Network page."""
    window = make_window(Document(load_project(heavy_run / "project.cnnproj")), recover=False)
    window.resize(1400, 900)
    window.show_page("training")
    qtbot.wait(50)
    dialog = open_export_dialog(window)
    time_blocks(qtbot, dialog, heavy_run)
    qtbot.mouseClick(dialog.latency.show_button, Qt.MouseButton.LeftButton)
    dialog.close()
    window.show_page("network")
    qtbot.wait(50)
    legend = window.canvas.findChild(LatencyLegend)
    assert legend.isVisible()
    area = window.canvas.viewport().geometry()
    assert area.contains(legend.geometry())
    assert legend.geometry().bottom() > area.center().y()  # the bottom-left corner
    assert legend.geometry().left() < area.center().x()


def test_the_dialog_grows_with_its_results_but_stays_on_the_screen(qtbot, make_window,
                                                                   heavy_run):
    """An INT8 report above a latency table grew the dialog past the screen's bottom edge,
    taking Export and Close with it."""
    window = make_window(Document(load_project(heavy_run / "project.cnnproj")), recover=False)
    dialog = open_export_dialog(window)
    dialog.move(0, 300)
    dialog.result_label.setText("<br>".join(f"line {i} of a long report" for i in range(40)))
    dialog.fit_contents()
    time_blocks(qtbot, dialog, heavy_run)
    screen = dialog.screen().availableGeometry()
    assert dialog.height() > 500  # it did grow
    assert screen.contains(dialog.frameGeometry())
    close = dialog.buttons.button(dialog.buttons.StandardButton.Close)
    corner = close.mapTo(dialog, close.rect().bottomRight())
    assert dialog.rect().contains(corner)
