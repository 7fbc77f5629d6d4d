"""The Training page: real runs started, paused and stopped with the buttons, live plots, runs,
failures, closing the window during a run, the dataset fixes and undoable settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cnnstudio.core.params import ParamError
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow
from cnnstudio.ui.training.page import TrainingPage
from cnnstudio.ui.training.plots import SeriesBuffer, TrainingPlots
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.training_pages import LONG, click, settle, tiny_project

Button = QMessageBox.StandardButton


def start_and_wait_running(qtbot, page: TrainingPage) -> None:
    click(qtbot, page.train_button)
    qtbot.waitUntil(lambda: page.session.state == "running", timeout=LONG)


def answer_box(qtbot, text: str, record: list[str]) -> None:
    """Click the button labelled `text` on the next modal message box."""
    def act() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, act)
            return
        record.append(box.text())
        button = next(b for b in box.buttons() if b.text() == text)
        qtbot.mouseClick(button, Qt.LeftButton)

    QTimer.singleShot(0, act)


# -- plots without a run -----------------------------------------------------------------------


def test_buffers_double_and_the_timer_redraws_only_new_data(qtbot):
    buffer = SeriesBuffer(4)
    buffer.extend(np.arange(5.0), np.arange(5.0) * 2)
    assert buffer.capacity == 8 and len(buffer) == 5 and buffer.y[-1] == 8
    buffer.extend(np.arange(20.0), np.zeros(20))
    assert buffer.capacity == 32 and buffer.x[5:].tolist() == list(range(20))

    plots = TrainingPlots()
    qtbot.addWidget(plots)

    class Step:
        epoch, steps_per_epoch, train_acc, images_per_s = 1, 20, 0.5, 100.0

        def __init__(self, step: int) -> None:
            self.step = self.epoch_step = step
            self.step_losses = (2.0, 1.5)

    for step in (2, 4, 6):  # three batches' reports: no drawing from here
        plots.add_steps(Step(step))
    assert plots.redraw_count == 0 and len(plots.train_loss_raw) == 6
    qtbot.waitUntil(lambda: plots.redraw_count == 1, timeout=2000)
    qtbot.waitUntil(lambda: not plots.timer.isActive(), timeout=2000)  # nothing new: asleep
    assert plots.redraw_count == 1
    assert len(plots.curves["train_loss"].getData()[0]) == 6
    plots.add_epoch({"epoch": 1, "val_loss": 1.2, "val_acc": 0.6})
    qtbot.waitUntil(lambda: plots.redraw_count == 2, timeout=2000)
    text = plots.show_values_at(0.25)
    assert "training loss" in text and "validation after epoch 1" in text and "60.0 %" in text

    plots.hide_values()
    plots.resize(600, 400)
    plots.show()
    qtbot.waitExposed(plots)
    centre = plots.graphics.mapFromScene(plots.loss_plot.vb.sceneBoundingRect().center())
    qtbot.mouseMove(plots.graphics.viewport(), centre)  # hovering: crosshair and read-out
    qtbot.waitUntil(lambda: plots.crosshairs[0].isVisible(), timeout=2000)
    assert plots.readout.text().startswith("epoch ") and "training loss" in plots.readout.text()


# -- runs ----------------------------------------------------------------------------------


def test_train_button_runs_fills_the_plots_and_lists_the_run(make_page, qtbot, tiny_npz, config):
    page = make_page(tiny_project(tiny_npz))
    progress = []
    page.session.progress.connect(progress.append)
    with qtbot.waitSignal(page.session.finished, timeout=LONG) as finished:
        click(qtbot, page.train_button)
        assert not page.train_button.isEnabled() and page.stop_button.isEnabled()
    result = finished.args[0]
    assert result.status == "completed", result.message
    plots = page.plots
    assert len(plots.train_loss) == len(plots.train_loss_raw) == 2 * 16  # 512 images / 32
    assert len(plots.val_loss) == 2 and len(plots.val_acc) == 2
    assert 1 <= plots.redraw_count <= len(progress) + 3  # timer-driven, not once per batch
    assert len(plots.curves["val_acc"].getData()[0]) == 2
    assert page.train_button.isEnabled() and not page.stop_button.isEnabled()
    assert "Completed" in page.status.text()
    assert [page.views.tabText(i) for i in range(page.views.count())][:2] == [
        "Curves", "Feature maps"]  # the inspection tabs beside the curves
    qtbot.waitUntil(lambda: page.context.has_model, timeout=LONG)
    run_dir = Path(result.run_dir)
    assert run_dir.parent == config / "runs" and (run_dir / "model.pt").exists()

    run = page.runs.run_for(run_dir)
    assert run is not None and run.status == "completed" and run.epochs_done == 2
    assert run.best_val_acc == pytest.approx(result.best_val_acc)
    item = page.runs.item_for(run_dir)
    assert item.text(2) == "completed" and item.text(3) == "2 / 2"
    curves = len(plots.loss_plot.listDataItems())
    item.setCheckState(0, Qt.Checked)  # overlay it
    assert str(run_dir) in plots.overlays and len(plots.loss_plot.listDataItems()) == curves + 2
    item.setCheckState(0, Qt.Unchecked)
    assert not plots.overlays and len(plots.loss_plot.listDataItems()) == curves

    item.setSelected(True)
    assert not page.runs.resume_button.isEnabled()  # completed: nothing to resume
    with qtbot.waitSignal(page.open_project_requested) as opened:
        click(qtbot, page.runs.open_button)
    assert opened.args[0] == run_dir / "project.cnnproj" and opened.args[0].is_file()


def test_pause_resume_and_stop_buttons_then_resume_from_the_runs_list(make_page, qtbot,
                                                                     tiny_npz):
    page = make_page(tiny_project(tiny_npz, epochs=50))
    session = page.session
    start_and_wait_running(qtbot, page)
    with qtbot.waitSignal(session.state_changed, timeout=LONG,
                          check_params_cb=lambda s: s == "paused"):
        click(qtbot, page.pause_button)
    assert page.pause_button.text() == "Resume" and "Paused" in page.status.text()
    with qtbot.waitSignal(session.state_changed, timeout=LONG,
                          check_params_cb=lambda s: s == "running"):
        click(qtbot, page.pause_button)
    assert page.pause_button.text() == "Pause"
    with qtbot.waitSignal(session.finished, timeout=LONG) as finished:
        click(qtbot, page.stop_button)
    assert finished.args[0].status == "stopped"
    # the epoch it stopped in depends on how fast this machine trains the tiny network
    assert re.match(r"Stopped by request in epoch \d+\. ", page.status.text())
    run_dir = Path(finished.args[0].run_dir)
    assert (run_dir / "model.pt").exists()

    run = page.runs.run_for(run_dir)
    assert run.status == "stopped" and run.resumable
    page.runs.item_for(run_dir).setSelected(True)
    with qtbot.waitSignal(session.started, timeout=LONG):
        click(qtbot, page.runs.resume_button)
    assert session.run_dir == run_dir and not page.changed.isVisible()
    assert not page.runs.resume_button.isEnabled()  # one run at a time
    with qtbot.waitSignal(session.finished, timeout=LONG) as finished:
        click(qtbot, page.stop_button)
    assert finished.args[0].status == "stopped"


def test_editing_the_network_during_a_run_says_so(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz, epochs=50))
    start_and_wait_running(qtbot, page)
    assert not page.changed.isVisible()
    page.document.edit("Add Dropout", lambda g: g.add_block("Dropout"))
    assert page.changed.isVisible() and "changed since this run started" in page.changed.text()
    with qtbot.waitSignal(page.session.finished, timeout=LONG):
        click(qtbot, page.stop_button)
    assert not page.changed.isVisible()


def test_a_nan_run_shows_the_message_and_a_second_run_starts(make_page, qtbot, tiny_npz,
                                                             monkeypatch):
    from cnnstudio.train.engine import Trainer

    original = Trainer._output_loss
    monkeypatch.setattr(Trainer, "_output_loss",
                        lambda self, *a, **k: original(self, *a, **k) * float("nan"))
    page = make_page(tiny_project(tiny_npz, epochs=1))
    with qtbot.waitSignal(page.session.finished, timeout=LONG) as finished:
        click(qtbot, page.train_button)
    assert finished.args[0].status == "failed"
    box = page.failure_box
    assert box is not None and box.isVisible() and "loss became nan" in box.text()
    assert page.error.isVisible() and "loss became nan" in page.error.text()
    assert "lower the learning rate" in page.error.text()
    click(qtbot, box.button(Button.Ok))
    qtbot.waitUntil(lambda: page.failure_box is None)

    monkeypatch.setattr(Trainer, "_output_loss", original)  # not undo(): that drops `config`
    with qtbot.waitSignal(page.session.finished, timeout=LONG) as finished:
        click(qtbot, page.train_button)  # the window is still usable
    assert finished.args[0].status == "completed" and not page.error.isVisible()


def test_closing_the_window_during_a_run_asks_and_joins_the_thread(qtbot, tiny_npz):
    window = MainWindow(Document(tiny_project(tiny_npz, epochs=50)), recover=False)
    window.remember_layout = False
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.show_page("training")
    page = window.training_page
    action = window.actions["train"]
    assert action.shortcut().toString() == "F5" and window.actions["stop_training"]
    action.trigger()  # Training → Train
    qtbot.waitUntil(lambda: page.session.state == "running", timeout=LONG)

    asked: list[str] = []
    answer_box(qtbot, "Cancel", asked)
    assert not window.close()
    assert asked == ["Stop training and close?"] and window.isVisible()
    assert page.session.running

    window.ask_save_changes = lambda: Button.Discard
    answer_box(qtbot, "Stop && Close", asked)
    assert window.close()
    assert len(asked) == 2 and not window.isVisible()
    assert page.session._thread is None or page.session._thread.isFinished()
    qtbot.waitUntil(lambda: not page.session.running, timeout=5000)
    assert page.last_result is not None and page.last_result.status == "stopped"
    assert (Path(page.last_result.run_dir) / "model.pt").exists()
    settle(page)


# -- dataset -------------------------------------------------------------------------------


def test_mismatch_fix_sets_input_and_classes_in_one_undo_step(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz, input_shape=(3, 32, 32), classes=5))
    panel, doc = page.dataset_panel, page.document
    assert panel.preview is not None and panel.fit_box.isVisible()
    assert "1×28×28" in panel.fit_text.text() and "10 classes" in panel.fit_text.text()
    assert panel.fix_input.text() == "Set Input to 1×28×28"
    assert panel.fix_classes.text() == "Set classes to 10"
    count = doc.undo_stack.count()
    click(qtbot, panel.fix_both)
    input_block, dense = doc.graph.blocks[0], doc.graph.blocks[4]
    assert (input_block.params["channels"], input_block.params["height"]) == (1, 28)
    assert dense.params["units"] == 10 and not panel.fit_box.isVisible()
    assert doc.undo_stack.count() == count + 1 and doc.is_dirty
    doc.undo_stack.undo()
    assert doc.graph.blocks[0].params["channels"] == 3 and doc.graph.blocks[4].params["units"] == 5
    assert panel.fit_box.isVisible()
    click(qtbot, panel.fix_classes)  # one fix alone
    assert doc.graph.blocks[4].params["units"] == 10 and doc.graph.blocks[0].params["width"] == 32
    assert panel.fix_input.isVisible() and not panel.fix_both.isVisible()


def test_dataset_errors_show_in_red_without_a_traceback(make_page, qtbot, tiny_npz, tmp_path):
    page = make_page(tiny_project(tiny_npz))
    panel = page.dataset_panel
    assert panel.preview is not None and not panel.error.isVisible()
    assert panel.split.text().startswith("Split: 512 training and 128 validation images")
    missing = tmp_path / "missing.npz"
    panel.path_row.line.setText(str(missing))
    panel.path_row.line.editingFinished.emit()
    assert page.document.project.dataset["spec"] == f"npz:{missing}"
    qtbot.waitUntil(lambda: panel.error.isVisible(), timeout=LONG)
    assert "not found" in panel.error.text() and "Traceback" not in panel.error.text()
    assert "color" in panel.error.styleSheet() and panel.preview is None
    page.document.undo_stack.undo()  # back to the good file
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=LONG)
    assert not panel.error.isVisible()


def test_settings_are_undoable_mark_the_document_and_grey_out(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz))
    panel, doc = page.settings_panel, page.document
    page.side_tabs.setCurrentIndex(1)
    assert not doc.is_dirty
    panel.fields["epochs"].spin.setValue(7)
    assert doc.project.training["epochs"] == 7 and doc.is_dirty
    doc.undo_stack.undo()
    assert doc.project.training["epochs"] == 2 and panel.fields["epochs"].spin.value() == 2
    assert not doc.is_dirty
    for group, changes in (("training", {"epochs": 0}), ("training", {"colour": 1}),
                           ("model", {"epochs": 3})):
        with pytest.raises(ParamError):
            doc.update_settings(group, changes)
    assert not doc.update_settings("training", {"epochs": 2})  # no change, no undo step
    assert doc.undo_stack.index() == 0 and doc.project.training["epochs"] == 2

    momentum = panel.fields["momentum"].widget
    assert not momentum.isEnabled()  # Adam has no momentum
    combo = panel.fields["optimizer"].combo
    index = combo.findData("sgd")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert doc.project.training["optimizer"] == "sgd" and momentum.isEnabled()
    doc.undo_stack.undo()
    assert not momentum.isEnabled() and combo.currentData() == "adam"

    qtbot.waitUntil(lambda: panel.samples is not None, timeout=LONG)
    shown = panel.preview_count
    click(qtbot, panel.augment_checks["rotate"])
    assert doc.project.training["augment"] == "rotate"
    assert panel.preview_count == shown + 1 and panel.augmented.isVisible()

    devices = panel.device_field.combo
    qtbot.waitUntil(lambda: panel.devices_known, timeout=LONG)
    listed = [devices.itemData(i) for i in range(devices.count())]
    assert "cpu" in listed and "auto" in listed
    import torch

    assert ("cuda" in listed) == torch.cuda.is_available()

    page.side_tabs.setCurrentIndex(0)
    seed = page.dataset_panel.fields["split_seed"].spin
    seed.setValue(3)
    assert doc.project.dataset["split_seed"] == 3
    doc.undo_stack.undo()
    assert doc.project.dataset["split_seed"] == 0 and seed.value() == 0


def test_runs_from_earlier_sessions_are_listed(make_page, tiny_npz, config, tmp_path):
    old = config / "runs" / "2026-01-02_03-04-05"
    old.mkdir(parents=True)
    records = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5, "val_loss": 1.1 / e,
                "val_acc": 0.4 + e / 10, "seconds": 1.0, "images_per_s": 10.0} for e in (1, 2)]
    (old / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (old / "final.json").write_text(json.dumps({
        "status": "stopped", "message": "stopped by request in epoch 3",
        "epochs_completed": 2, "epochs": 5, "best_val_acc": 0.6}))
    page = make_page(tiny_project(tiny_npz))
    item = page.runs.item_for(old)
    assert item is not None and item.text(0) == "2026-01-02 03:04:05"
    assert [item.text(i) for i in (2, 3, 4)] == ["stopped", "2 / 5", "60.0 %"]
    item.setCheckState(0, Qt.Checked)
    overlay = page.plots.overlays[str(old)]
    assert [r["epoch"] for r in overlay.records] == [1, 2]
    page.runs.tree.clearSelection()
    item.setSelected(True)
    assert page.runs.resume_button.isEnabled() is False  # no project snapshot to resume with

    saved = tmp_path / "work" / "net.cnnproj"  # a saved project keeps its runs beside it
    page.document.set_path(saved)
    assert page.runs_root() == saved.parent / "runs" and page.runs.root == saved.parent / "runs"
    assert page.runs.item_for(old) is None and not page.plots.overlays


# -- training health on the canvas ---------------------------------------------------------


def test_training_health_tints_the_blocks_with_parameters(qtbot, tiny_npz):
    from cnnstudio.ui.training.health import HIGH, LOW, MIDDLE, health_marks, scale_colour

    window = MainWindow(Document(tiny_project(tiny_npz, epochs=1)), recover=False)
    window.remember_layout = False
    window.ask_save_changes = lambda: Button.Discard
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    page = window.training_page
    scene = window.canvas.scene()
    health = window.actions["training_health"]
    assert health.isCheckable() and not health.isChecked()
    health.trigger()  # on before any run: nothing to show yet, and it says so
    assert "once a run has finished its first epoch" in window.statusBar().currentMessage()
    assert all(item.health() == (None, "") for item in scene.block_items())

    with qtbot.waitSignal(page.session.finished, timeout=LONG):
        window.actions["train"].trigger()
    norms, epoch = page.health
    graph = window.document.graph
    with_params = {b.id for b in graph.blocks if b.type in ("Conv2D", "Dense")}
    assert epoch == 1 and set(norms) == with_params
    assert all(value > 0 for value in norms.values())
    for item in scene.block_items():
        colour, text = item.health()
        if item.block_id in with_params:
            assert colour is not None and "Gradient norm" in text and "epoch 1" in text
            assert text in item.toolTip()
        else:
            assert colour is None and text == ""

    health.trigger()  # off: the tints go
    assert all(item.health() == (None, "") for item in scene.block_items())
    health.trigger()
    assert any(item.health()[0] is not None for item in scene.block_items())
    settle(page)

    # the scale: the median block is green, two decades either side reach blue and red
    assert scale_colour(0.0) == MIDDLE and scale_colour(-5) == LOW and scale_colour(2) == HIGH
    marks = health_marks({"a": 1.0, "b": 0.001, "c": 100.0, "d": 0.0}, 3)
    assert marks["a"][0] == MIDDLE and marks["b"][0] == LOW and marks["c"][0] == HIGH
    assert "barely learns" in marks["b"][1] and "exploding" in marks["c"][1]
    assert "does not learn" in marks["d"][1]
