"""The training settings form: the TensorBoard setting (tests/train/test_tensorboard_log.py holds
the engine side)."""

from PySide6.QtCore import Qt

from cnnstudio.core.settings import TRAINING
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.settings_panel import SettingsPanel
from tests.train.conftest import tiny_project


def test_the_form_shows_the_tensorboard_checkbox_and_a_click_is_one_undo_step(qtbot):
    document = Document(tiny_project())
    panel = SettingsPanel(document)
    qtbot.addWidget(panel)
    panel.show()
    check = panel.fields["tensorboard"].check
    assert panel.labels["tensorboard"].text() == "TensorBoard log"
    assert "tensorboard --logdir" in panel.labels["tensorboard"].toolTip()
    assert not check.isChecked() and TRAINING.normalize({})[0]["tensorboard"] is False

    depth = document.undo_stack.count()
    qtbot.mouseClick(check, Qt.LeftButton)
    assert document.project.training["tensorboard"] is True and document.is_dirty
    assert document.undo_stack.count() == depth + 1
    document.undo_stack.undo()
    assert not check.isChecked()
    assert TRAINING.normalize(document.project.training)[0]["tensorboard"] is False
    document.undo_stack.redo()
    assert check.isChecked() and document.project.training["tensorboard"] is True
