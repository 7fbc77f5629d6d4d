"""File → Export Trained Model… with "ONNX, INT8 quantised": the float-vs-INT8 table.

One real run (the Keras-book network, one epoch on 640 images of the bundled sample,
tests/trained_runs.py) is trained once per module."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from PySide6.QtCore import Qt

from cnnstudio.core.summary import format_bytes
from cnnstudio.ui.training.export_dialog import ExportDialog
from cnnstudio.ui.training.quantize_report import BUSY_TEXT, QUANTIZED
from tests.torch_threads import one_torch_thread_then_wait  # noqa: F401 (autouse fixture)
from tests.trained_runs import train_one_epoch_keras_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    _, _, run = train_one_epoch_keras_run(tmp_path_factory.mktemp("quantize-dialog"))
    return run


def choose_int8(qtbot, dialog: ExportDialog) -> None:
    """Pick the format from the combo box as a user does: open it, click the row."""
    combo = dialog.format_combo
    index = combo.findData(QUANTIZED)
    assert index >= 0 and combo.itemText(index) == "ONNX, INT8 quantised (.int8.onnx)"
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    rect = view.visualRect(view.model().index(index, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: combo.currentData() == QUANTIZED)


def test_int8_export_shows_float_and_int8_side_by_side(qtbot, run_dir, tmp_path):
    dialog = ExportDialog(run_dir)
    qtbot.addWidget(dialog)
    dialog.show()
    choose_int8(qtbot, dialog)
    assert dialog.out_edit.text().endswith("run.int8.onnx")
    assert "calibrated on training images" in dialog.format_note.text()
    out = tmp_path / "digits.int8.onnx"
    dialog.out_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.running and dialog.busy.isVisible() and dialog.busy_label.text() == BUSY_TEXT
    assert not dialog.quantize_view.isVisible()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert dialog.error == "" and dialog.report is not None
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (p,) = session.run(None, {"image": np.zeros((2, 1, 28, 28), np.float32)})
    assert p.shape == (2, 10)
    view = dialog.quantize_view
    assert view.isVisible()
    assert view.cell("File size", "INT8") == format_bytes(out.stat().st_size)
    report = dialog.report
    assert view.cell("Validation accuracy", "Float") == f"{report.float.accuracy:.2%}"
    assert view.cell("Validation accuracy", "INT8") == f"{report.int8.accuracy:.2%}"
    ratio = out.stat().st_size / report.float.size_bytes
    assert view.cell("File size", "Change") == f"{ratio:.2f}×"
    assert view.cell("Time for one image", "INT8").endswith(" ms")
    assert "validation images" in view.details.text() and "[0, 1]" in view.details.text()
    assert str(out) in dialog.result_label.text()
    table = view.table  # every row shows whole, no scroll bar
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    assert table.viewport().height() >= rows


def test_another_format_after_int8_hides_the_table(qtbot, run_dir, tmp_path):
    dialog = ExportDialog(run_dir)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_format(QUANTIZED)
    dialog.out_edit.setText(str(tmp_path / "a.int8.onnx"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert dialog.quantize_view.isVisible()
    dialog.set_format("state_dict")
    dialog.out_edit.setText(str(tmp_path / "w.pt"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert dialog.error == "" and not dialog.quantize_view.isVisible()
    assert "Exporting" in dialog.busy_label.text()


def test_a_quantisation_error_is_a_message(qtbot, run_dir, tmp_path):
    dialog = ExportDialog(run_dir)
    qtbot.addWidget(dialog)
    dialog.set_format(QUANTIZED)
    dialog.out_edit.setText(str(run_dir / "inside.int8.onnx"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert dialog.report is None and "inside the run folder" in dialog.error
    assert "Not exported" in dialog.result_label.text()
    assert not dialog.quantize_view.isVisible()
