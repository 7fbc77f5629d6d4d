"""The export dialog's PyTorch ExportedProgram (.pt2) choice, picked with the keyboard as a user
does, written, reloaded with torch.export.load and described."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt

from cnnstudio.nn.export import load_run
from cnnstudio.ui.training.export_dialog import ExportDialog
from tests.nn.test_export import direct_probabilities, images, make_run


def test_the_dialog_exports_an_exported_program(qtbot, tmp_path):
    run_dir = make_run(tmp_path / "digits", "keras-mnist")
    dialog = ExportDialog(run_dir)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.format_combo.currentData() == "onnx"
    dialog.format_combo.setFocus()
    qtbot.keyClick(dialog.format_combo, Qt.Key.Key_Down)  # the entry after ONNX
    assert dialog.format_combo.currentData() == "pt2"
    assert dialog.format_combo.currentText() == "PyTorch ExportedProgram (.pt2)"
    assert "torch.export.load" in dialog.format_note.text()
    assert dialog.out_edit.text() == str(tmp_path / "digits.pt2")

    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert dialog.error == "" and dialog.report is not None
    run = load_run(run_dir)
    model = torch.export.load(str(tmp_path / "digits.pt2")).module()
    x = images(run, 4)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), direct_probabilities(run, x), atol=1e-5)
    text = dialog.result_label.text()
    assert "PyTorch ExportedProgram" in text and "after reloading" in text
    assert "(limit 1e-5)" in text and "[0, 1]" in text
    label = dialog.result_label
    assert label.height() >= label.heightForWidth(label.width())  # no line cut off
