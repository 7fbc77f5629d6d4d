"""The training settings form: the precision setting (tests/train/test_precision.py holds the
engine side; this file needs Qt, which the GPU machine's test run does not have)."""

from cnnstudio.core.settings import PRECISIONS, TRAINING
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.settings_panel import SettingsPanel
from tests.train.conftest import tiny_project


def test_the_settings_form_shows_precision_and_changes_it_undoably(qtbot):
    document = Document(tiny_project())
    panel = SettingsPanel(document)
    qtbot.addWidget(panel)
    combo = panel.fields["precision"].combo
    choices = [combo.itemData(i) for i in range(combo.count())]
    assert choices == list(PRECISIONS) and combo.currentData() == "auto"
    assert combo.itemText(0) == "auto (bf16 on a GPU, else float32)"
    assert panel.labels["precision"].toolTip() == TRAINING.param("precision").help

    index = combo.findData("float32")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert document.project.training["precision"] == "float32" and document.is_dirty
    document.undo_stack.undo()
    assert document.project.training["precision"] == "auto" and combo.currentData() == "auto"
    document.undo_stack.redo()
    assert combo.currentData() == "float32"
