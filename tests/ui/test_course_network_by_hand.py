"""Issue 'The window', done-when: build the course's 171,158-parameter network from an empty
canvas with the mouse (and the keyboard in the inspector), and read the course's numbers.

Palette entries are dropped with the palette's own QMimeData through QDragEnterEvent /
QDropEvent on the viewport (a real QDrag runs the platform's drag loop, which cannot be driven
off-screen); everything else is real mouse clicks and key presses.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTUDIO_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow(Document(Project.new(Graph())))
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    win.close()


def drop_from_palette(window: MainWindow, title: str, scene_pos: QPointF) -> None:
    palette, view = window.palette, window.canvas
    mime = palette.mime_data(palette.item_for(title))
    pos = view.mapFromScene(scene_pos)
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted(), title
    QApplication.sendEvent(view.viewport(),
                           QDropEvent(QPointF(pos), Qt.CopyAction, mime, Qt.LeftButton,
                                      Qt.NoModifier))


def click_block(qtbot, window: MainWindow, block_id: str) -> None:
    view = window.canvas
    item = view.item_for(block_id)
    view.centerOn(item)
    point = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, Qt.NoModifier, point)
    assert view.selected_ids() == [block_id]


def type_into(qtbot, widget, text: str) -> None:
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key_A, Qt.ControlModifier)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key_Return)


def choose(qtbot, combo, data: str) -> None:
    """Step through a closed combo box with the arrow keys, as a keyboard user does."""
    combo.setFocus()
    target = combo.findData(data)
    key = Qt.Key_Down if target > combo.currentIndex() else Qt.Key_Up
    while combo.currentIndex() != target:
        qtbot.keyClick(combo, key)


def test_build_the_course_example_with_mouse_and_keyboard(qtbot, window):
    doc = window.document
    steps = [
        ("Input", {}),
        ("Conv2D", {"filters": "16", "kernel": "5", "padding": "same", "activation": "relu"}),
        ("Max pooling", {}),
        ("Conv2D", {"filters": "32", "kernel": "5", "padding": "same", "activation": "relu"}),
        ("Max pooling", {}),
        ("Flatten", {}),
        ("Dense", {"units": "100", "activation": "relu"}),
        ("Dense", {"units": "10"}),
        ("Output", {}),
    ]
    for title, edits in steps:
        if doc.graph.blocks:
            last = doc.graph.blocks[-1]
            below = QPointF(last.x + 10, last.y + window.canvas.item_for(last.id).height() + 30)
        else:
            below = QPointF(0, 0)
        drop_from_palette(window, title, below)
        block = doc.graph.blocks[-1]
        click_block(qtbot, window, block.id)
        fields = window.inspector.fields
        for name, value in edits.items():
            field = fields[name]
            if hasattr(field, "combo"):
                choose(qtbot, field.combo, value)
            elif hasattr(field, "spin"):
                type_into(qtbot, field.spin, value)
            else:
                type_into(qtbot, field.focus_widget, value)
    analysis = doc.analysis
    assert analysis.diagnostics == []
    assert analysis.total_params == 171_158
    items = [window.canvas.item_for(b.id) for b in doc.graph.blocks]
    shown = [(i.shape_text(), i.params_text()) for i in items[1:8]]
    assert shown[0] == ("(28,28,16)", "416 params")
    assert shown[1][0] == "(14,14,16)"
    assert shown[2] == ("(14,14,32)", "12,832 params")
    assert shown[3][0] == "(7,7,32)"
    assert shown[5] == ("(100)", "156,900 params")
    assert shown[6] == ("(10)", "1,010 params")
    def labels(widget) -> str:
        return " ".join(label.text() for label in widget.findChildren(QLabel))

    qtbot.waitUntil(lambda: "171,158" in labels(window.statusBar()), timeout=3000)
    assert "valid network" in labels(window.statusBar())
    assert "171,158" in labels(window.summary)
    # every step is undoable back to the empty canvas
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert len(doc.graph) == 0
