"""Issue 14's rough edges in the editor window, driven as a person does (menus opened with the
mouse, keys, drags, typing): the Summary table follows every theme switch, the recovery banner
goes with its project, a refused wire says its whole reason at the pointer, the palette search
knows PyTorch's and Keras's names, and View → Auto Layout shows the README's shortcut."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox, QToolTip, QTreeWidgetItem

from cnnstudio.core.layout import layered_layout
from cnnstudio.core.project import save_project
from cnnstudio.core.templates import new_project
from cnnstudio.ui import theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow
from tests.ui.test_canvas import drag
from tests.ui.test_recovery import plant_orphan

README = Path(__file__).resolve().parents[2] / "README.md"
LEFT = Qt.MouseButton.LeftButton


def plain(text: str) -> str:
    return text.replace("&", "")


def open_menu(qtbot, window: MainWindow, *path: str) -> QMenu:
    """Click a menu bar title, then the submenus named by `path`, with the mouse."""
    bar = window.menuBar()
    action = next(a for a in bar.actions() if plain(a.text()) == path[0])
    qtbot.mouseClick(bar, LEFT, pos=bar.actionGeometry(action).center())
    menu = action.menu()
    qtbot.waitUntil(menu.isVisible, timeout=2000)
    for title in path[1:]:
        item = next(a for a in menu.actions() if plain(a.text()) == title)
        qtbot.mouseClick(menu, LEFT, pos=menu.actionGeometry(item).center())
        menu = item.menu()
        qtbot.waitUntil(menu.isVisible, timeout=2000)
    return menu


def choose(qtbot, window: MainWindow, *path: str) -> None:
    """Open the menus of path[:-1] and click the command path[-1]."""
    menu = open_menu(qtbot, window, *path[:-1])
    item = next(a for a in menu.actions() if plain(a.text()) == path[-1])
    qtbot.mouseClick(menu, LEFT, pos=menu.actionGeometry(item).center())
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=2000)


# -- the Summary table and the theme ------------------------------------------------------------


def table_background(window: MainWindow) -> str:
    image = window.summary.view.viewport().grab().toImage()
    return image.pixelColor(image.width() // 2, 2).name()  # the first row, above its text


def test_the_summary_table_follows_every_theme_switch(make_window, qtbot):
    window = make_window(recover=False)
    assert window.summary.model.rowCount() > 0
    try:
        for name in ("Dark", "Light", "Dark"):
            choose(qtbot, window, "View", "Theme", name)
            assert theme.current().dark == (name == "Dark")
            base = QApplication.palette().color(QPalette.ColorRole.Base).name()
            qtbot.waitUntil(lambda base=base: table_background(window) == base, timeout=2000)
    finally:
        window.set_theme("light")


# -- the recovery banner --------------------------------------------------------------------


def test_the_recovered_banner_goes_when_another_project_is_opened(make_window, qtbot, config,
                                                                  tmp_path, monkeypatch):
    plant_orphan(config, new_project("course-example"))
    window = make_window()  # recovers it
    banner = window.banner
    assert banner.isVisible() and "Recovered" in banner.label.text()
    assert [b.text() for b in banner.buttons()] == ["Save…"]

    other = tmp_path / "other.cnnproj"
    save_project(new_project("lenet5"), other)
    monkeypatch.setattr(window, "ask_open_path", lambda: str(other))
    window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert window.document.path == other.resolve()
    assert not banner.isVisible()  # its Save… cannot save lenet5 as the recovered work


def test_an_offer_of_other_unsaved_work_stays_when_a_project_is_opened(make_window, qtbot,
                                                                      config, tmp_path,
                                                                      monkeypatch):
    plant_orphan(config, new_project("course-example"))
    first, second = tmp_path / "first.cnnproj", tmp_path / "second.cnnproj"
    for path in (first, second):
        save_project(new_project("lenet5"), path)
    from cnnstudio.core.project import load_project

    window = make_window(Document(load_project(first), first))
    assert [b.text() for b in window.banner.buttons()] == ["Open It", "Discard It"]
    monkeypatch.setattr(window, "ask_open_path", lambda: str(second))
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert window.document.path == second.resolve()
    assert window.banner.isVisible()  # the work is still waiting, whatever is open


# -- refused connections --------------------------------------------------------------------


def tip_label():
    return next((w for w in QApplication.topLevelWidgets()
                 if w.inherits("QLabel") and w.objectName() == "qtooltip_label"
                 and w.isVisible()), None)


def test_a_refused_wire_says_its_whole_reason_at_the_pointer(make_window, qtbot):
    window = make_window(Document(new_project("course-example")), recover=False)
    window.resize(1100, 760)
    view, graph = window.canvas, window.document.graph
    edges = list(graph.edges)
    reason = "Cannot connect: " + graph.connection_problem("input", "conv2")
    assert reason.endswith("use Concatenate or Add to merge branches")
    end = view.item_for("conv2").input_anchor()
    drag(qtbot, view, view.item_for("input").output_anchor(), end)
    assert graph.edges == edges
    assert window.statusBar().currentMessage() == reason
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    shown = QTextDocument()
    shown.setHtml(QToolTip.text())
    assert shown.toPlainText() == reason
    label = tip_label()
    assert label is not None
    drop = view.viewport().mapToGlobal(view.mapFromScene(end))
    assert label.geometry().adjusted(-40, -40, 40, 40).contains(drop)  # at the drop point
    assert label.width() < window.width()  # wrapped into lines, not one long strip
    QToolTip.hideText()


# -- palette search -------------------------------------------------------------------------


def shown_titles(window: MainWindow) -> list[str]:
    """The palette entries visible top to bottom, as the tree draws them."""
    tree = window.palette.tree
    titles: list[str] = []
    item: QTreeWidgetItem | None = tree.topLevelItem(0)
    while item is not None:
        if item.parent() is not None and not item.isHidden() and not item.parent().isHidden():
            titles.append(item.text(0))
        item = tree.itemBelow(item)
    return titles


def search(qtbot, window: MainWindow, text: str) -> list[str]:
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)  # Search palette
    field = window.palette.search
    assert field.hasFocus()
    qtbot.keyClicks(field, text)
    return shown_titles(window)


def test_palette_search_knows_pytorch_and_keras_names(make_window, qtbot):
    window = make_window(recover=False)
    for typed, first in (("fc", "Dense"), ("Linear", "Dense"), ("nn.Linear", "Dense"),
                         ("bn", "BatchNorm"), ("BatchNorm2d", "BatchNorm"),
                         ("maxpool", "Max pooling"), ("MaxPool2d", "Max pooling"),
                         ("avgpool", "Average pooling"), ("AvgPool2d", "Average pooling"),
                         ("GlobalAveragePooling2D", "Global average pooling"),
                         ("conv", "Conv2D"), ("Conv2d", "Conv2D"), ("Dropout", "Dropout"),
                         ("flatten", "Flatten"), ("ReLU", "ReLU"), ("concat", "Concatenate"),
                         ("cat", "Concatenate"), ("add", "Add"), ("residual", "Add")):
        titles = search(qtbot, window, typed)
        assert titles and titles[0] == first, (typed, titles)
    titles = search(qtbot, window, "linear")  # activations mention "linear" in their help
    assert titles[0] == "Dense" and len(titles) > 1
    blocks = len(window.document.graph.blocks)
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)  # adds the first match
    assert len(window.document.graph.blocks) == blocks + 1
    assert window.document.graph.blocks[-1].type == "Dense"
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Escape)  # cleared: palette order again
    assert shown_titles(window)[:2] == ["Input", "Conv2D"]


# -- View → Auto Layout ---------------------------------------------------------------------


def test_auto_layout_shows_the_readme_shortcut_and_it_works(make_window, qtbot):
    window = make_window(Document(new_project("course-example")), recover=False)
    menu = open_menu(qtbot, window, "View")
    item = next(a for a in menu.actions() if plain(a.text()) == "Auto Layout")
    shown = item.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
    menu.close()
    assert shown == "Ctrl+Shift+L"
    readme = README.read_text(encoding="utf-8")
    assert f"{shown} lays the network out" in readme
    assert not re.search(r"Ctrl\+L\b", readme)
    others = [key for key, action in window.actions.items() if action is not item
              and shown in [s.toString() for s in action.shortcuts()]]
    assert others == []

    document = window.document
    document.edit("Scatter", lambda g: [g.move(b.id, 37 * i % 300, -50 * i)
                                        for i, b in enumerate(g.blocks)])
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_L,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    expected = layered_layout(document.graph)
    assert {b.id: (b.x, b.y) for b in document.graph.blocks} == expected
    assert document.undo_stack.undoText() == "Automatic layout"
