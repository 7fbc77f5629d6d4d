"""One-click fixes, reached the way a person reaches them in the real window: the badge's
popup, the Problems dock (double-click, right-click menu, Fix All), the block's context menu
on the canvas and the inspector. Each fix is one undo step and says what it did."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu, QPushButton, QWidget

from cnnstudio.core import edits
from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project, project_to_dict
from cnnstudio.core.templates import new_project
from cnnstudio.ui.document import Document
from cnnstudio.ui.fixes import FixPopup
from cnnstudio.ui.main_window import MainWindow

FLATTEN_FIX = "Inserted Flatten before 'FC3'"


def snapshot(window: MainWindow) -> dict:
    return project_to_dict(Project.new(window.document.graph))


def dense_after_pooling() -> Document:
    """The course network with its Flatten taken out: Dense 'FC3' straight after POOL2."""
    project = new_project("course-example")
    edits.delete(project.graph, ["flatten"])
    return Document(project)


@pytest.fixture
def intact(make_window) -> tuple[dict, str]:
    """The course network as the template has it, and the status bar's parameter count."""
    window = make_window(Document(new_project("course-example")))
    return snapshot(window), window.params_label.text()


@pytest.fixture
def broken(make_window) -> MainWindow:
    return make_window(dense_after_pooling())


def block_id(window: MainWindow, name: str) -> str:
    block = window.document.graph.find(name)
    assert block is not None, name
    return block.id


def flatten_before_fc3(window: MainWindow) -> bool:
    graph = window.document.graph
    (source,) = graph.inputs_of(block_id(window, "FC3"))
    return graph.block(source).type == "Flatten" and graph.inputs_of(source) == ["pool2"]


def assert_fixed_in_one_step_and_undone(qtbot, window: MainWindow, intact: tuple[dict, str],
                                        before: dict, broken_params: str) -> None:
    """Flatten is in, the counts are the intact network's, the status bar says what happened;
    Ctrl+Z (a real key press) takes exactly that step back."""
    intact_graph, intact_params = intact
    assert flatten_before_fc3(window)
    assert window.document.analysis.diagnostics == []
    assert len(snapshot(window)["blocks"]) == len(intact_graph["blocks"])
    qtbot.waitUntil(lambda: window.params_label.text() == intact_params, timeout=2000)
    assert intact_params != broken_params
    assert window.statusBar().currentMessage() == FLATTEN_FIX
    assert window.document.undo_stack.undoText() == "Insert Flatten before 'FC3'"
    press_undo(qtbot, window)
    assert snapshot(window) == before
    qtbot.waitUntil(lambda: window.params_label.text() == broken_params, timeout=2000)
    assert window.canvas.item_for(block_id(window, "FC3")).has_error()


def press_undo(qtbot, window: MainWindow) -> None:
    """Ctrl+Z on the canvas. The off-screen platform leaves no window active once a popup or a
    menu has closed (a window manager gives the activation back): give it back first."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key_Z, Qt.ControlModifier)


# -- how a person gets there ------------------------------------------------------------------


def badge_point(window: MainWindow, name: str) -> QPoint:
    """The badge of a block in viewport pixels, the block centred in the view first."""
    canvas = window.canvas
    item = canvas.item_for(block_id(window, name))
    canvas.centerOn(item)
    assert item.badge.isVisible()
    return canvas.mapFromScene(item.badge.scenePos())


def click_badge(qtbot, window: MainWindow, name: str) -> FixPopup:
    point = badge_point(window, name)
    viewport = window.canvas.viewport()
    qtbot.mouseMove(viewport, point)  # hover first, as a person does
    qtbot.mouseClick(viewport, Qt.LeftButton, pos=point)
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), FixPopup), timeout=2000)
    popup = QApplication.activePopupWidget()
    assert isinstance(popup, FixPopup)
    return popup


def choose_in_next_menu(qtbot, text_start: str, seen: list[list[str]]) -> None:
    """Once the next context menu is open, note its entries and click the one whose text starts
    with `text_start` (or close it with Escape when there is none)."""

    def act() -> None:
        menu = QApplication.activePopupWidget()
        if not isinstance(menu, QMenu):
            QTimer.singleShot(20, act)
            return
        entries = [a for a in menu.actions() if not a.isSeparator()]
        seen.append([a.text() for a in entries])
        chosen = next((a for a in entries if a.text().startswith(text_start)), None)
        if chosen is None:
            qtbot.keyClick(menu, Qt.Key_Escape)
            return
        qtbot.mouseClick(menu, Qt.LeftButton, pos=menu.actionGeometry(chosen).center())

    QTimer.singleShot(0, act)


def right_click(widget: QWidget, point: QPoint) -> None:
    """What a right mouse button press sends: a context-menu event at the pointer."""
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, widget.mapToGlobal(point))
    QApplication.sendEvent(widget, event)


def show_problems(qtbot, window: MainWindow) -> None:
    tabs = window.bottom_tabs
    index = tabs.indexOf(window.problems)
    qtbot.mouseClick(tabs.tabBar(), Qt.LeftButton, pos=tabs.tabBar().tabRect(index).center())
    assert tabs.currentWidget() is window.problems


def problem_row(window: MainWindow, name: str) -> QPoint:
    """The middle of the Problems row of a block's first problem, in viewport pixels."""
    problems = window.problems
    model = problems.model
    row = next(i for i, d in enumerate(model.diagnostics)
               if d.block_id == block_id(window, name))
    index = model.index(row)
    problems.view.scrollTo(index)
    rect = problems.view.visualRect(index)
    assert rect.isValid()
    return rect.center()


# -- the badge ------------------------------------------------------------------------------


def test_the_badge_opens_the_problems_and_its_fix_button_inserts_flatten(qtbot, broken, intact):
    window = broken
    before, broken_params = snapshot(window), window.params_label.text()
    canvas = window.canvas
    badge = canvas.item_for(block_id(window, "FC3")).badge
    assert badge.hasCursor() and badge.cursor().shape() == Qt.PointingHandCursor  # clickable
    popup = click_badge(qtbot, window, "FC3")
    assert canvas.selected_ids() == [block_id(window, "FC3")]
    (diagnostic, button), = popup.problems.fix_buttons()
    assert button.isVisible() and button.text() == "Fix"
    assert "7×7×32" in diagnostic.message
    assert "Insert Flatten before 'FC3'" in button.toolTip()
    assert snapshot(window) == before  # opening the popup changes nothing
    qtbot.mouseClick(button, Qt.LeftButton)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=2000)
    assert window.document.undo_stack.count() == 1
    assert_fixed_in_one_step_and_undone(qtbot, window, intact, before, broken_params)


def test_escape_closes_the_popup_without_a_change(qtbot, broken):
    before = snapshot(broken)
    popup = click_badge(qtbot, broken, "FC3")
    qtbot.keyClick(popup, Qt.Key_Escape)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=2000)
    assert snapshot(broken) == before and broken.document.undo_stack.count() == 0


def test_enter_in_the_popup_applies_the_focused_fix(qtbot, broken):
    popup = click_badge(qtbot, broken, "FC3")
    (_, button), = popup.problems.fix_buttons()
    assert button.hasFocus()
    qtbot.keyClick(button, Qt.Key_Space)
    qtbot.waitUntil(lambda: flatten_before_fc3(broken), timeout=2000)
    assert broken.statusBar().currentMessage() == FLATTEN_FIX


def test_a_problem_without_a_repair_shows_no_fix_button_anywhere(qtbot, make_window):
    project = new_project("course-example")
    project.graph.disconnect(project.graph.input_edges("fc4")[0])  # FC4 has no input now
    window = make_window(Document(project))
    (diagnostic,) = [d for d in window.document.analysis.diagnostics if d.block_id == "fc4"]
    assert diagnostic.repair is None and diagnostic.fix
    before = snapshot(window)
    popup = click_badge(qtbot, window, "FC4")
    assert popup.problems.row_count() == 1 and popup.problems.fix_buttons() == []
    assert popup.findChildren(QPushButton) == []
    qtbot.keyClick(popup, Qt.Key_Escape)
    show_problems(qtbot, window)
    viewport = window.problems.view.viewport()
    qtbot.mouseDClick(viewport, Qt.LeftButton, pos=problem_row(window, "FC4"))
    seen: list[list[str]] = []
    choose_in_next_menu(qtbot, "Fix", seen)
    right_click(viewport, problem_row(window, "FC4"))
    assert seen == [["Go to Block"]]
    seen.clear()
    choose_in_next_menu(qtbot, "Fix", seen)
    canvas = window.canvas
    right_click(canvas.viewport(), badge_point(window, "FC4") + QPoint(-60, 20))
    assert seen and not [t for t in seen[0] if t.startswith("Fix")]
    assert window.problems.fix_all_button.isHidden()
    assert not window.actions["fix_all"].isEnabled()
    assert snapshot(window) == before and window.document.undo_stack.count() == 0


# -- the Problems dock --------------------------------------------------------------------------


def test_double_clicking_a_problem_row_applies_its_fix(qtbot, broken, intact):
    window = broken
    before, broken_params = snapshot(window), window.params_label.text()
    show_problems(qtbot, window)
    point = problem_row(window, "FC3")
    assert window.problems.model.index(0).data(Qt.ToolTipRole).endswith("right-click for more.")
    qtbot.mouseClick(window.problems.view.viewport(), Qt.LeftButton, pos=point)
    assert window.canvas.selected_ids() == [block_id(window, "FC3")]  # one click: go there
    assert snapshot(window) == before
    qtbot.mouseDClick(window.problems.view.viewport(), Qt.LeftButton, pos=point)
    assert window.document.undo_stack.count() == 1
    assert_fixed_in_one_step_and_undone(qtbot, window, intact, before, broken_params)


def test_the_problem_rows_menu_fixes_it_or_goes_to_the_block(qtbot, broken, intact):
    window = broken
    before, broken_params = snapshot(window), window.params_label.text()
    show_problems(qtbot, window)
    viewport = window.problems.view.viewport()
    seen: list[list[str]] = []
    choose_in_next_menu(qtbot, "Go to Block", seen)
    window.canvas.select_blocks([])
    right_click(viewport, problem_row(window, "FC3"))
    assert seen == [["Fix: insert Flatten before it", "Go to Block"]]
    assert window.canvas.selected_ids() == [block_id(window, "FC3")]
    assert snapshot(window) == before
    choose_in_next_menu(qtbot, "Fix:", seen)
    right_click(viewport, problem_row(window, "FC3"))
    assert window.document.undo_stack.count() == 1
    assert_fixed_in_one_step_and_undone(qtbot, window, intact, before, broken_params)


# -- the canvas's block menu and the inspector --------------------------------------------------


def test_the_blocks_context_menu_offers_its_fix(qtbot, broken, intact):
    window = broken
    before, broken_params = snapshot(window), window.params_label.text()
    seen: list[list[str]] = []
    choose_in_next_menu(qtbot, "Fix:", seen)
    right_click(window.canvas.viewport(), badge_point(window, "FC3") + QPoint(-60, 20))
    entries = [text.replace("&", "") for text in seen[0]]
    assert entries[0] == "Fix: insert Flatten before it" and "Rename…" in entries
    assert window.document.undo_stack.count() == 1
    assert_fixed_in_one_step_and_undone(qtbot, window, intact, before, broken_params)


def test_the_inspectors_fix_button_applies_the_repair(qtbot, broken, intact):
    window = broken
    before, broken_params = snapshot(window), window.params_label.text()
    canvas = window.canvas
    point = badge_point(window, "FC3") + QPoint(-60, 20)  # on the block's body
    qtbot.mouseClick(canvas.viewport(), Qt.LeftButton, pos=point)
    assert window.inspector.block_ids == [block_id(window, "FC3")]
    problem_list = window.inspector.problem_list
    assert problem_list is not None and problem_list.isVisible()
    (_, button), = problem_list.fix_buttons()
    window.inspector.scroll.ensureWidgetVisible(button)
    qtbot.mouseClick(button, Qt.LeftButton)
    assert window.document.undo_stack.count() == 1
    assert_fixed_in_one_step_and_undone(qtbot, window, intact, before, broken_params)


# -- Fix All ------------------------------------------------------------------------------------


def two_heads_after_pooling() -> Document:
    """Two independent problems: a main and an auxiliary head, each Dense straight after
    the same pooling block."""
    graph = Graph()
    pool = graph.chain([("Input", {"height": 28, "width": 28, "channels": 1}),
                        ("Conv2D", {"filters": 4, "kernel": [3, 3]}, "conv"),
                        ("Pooling", {}, "pool")])[-1]
    graph.chain([("Dense", {"units": 10}, "main"), ("Output", {}, "out")], after=pool.id,
                x=-220, y=330)
    graph.chain([("Dense", {"units": 10}, "aux"), ("Output", {"auxiliary": True}, "aux_out")],
                after=pool.id, x=220, y=330)
    return Document(Project.new(graph))


def test_fix_all_fixes_two_independent_problems_in_one_undo_step(qtbot, make_window):
    window = make_window(two_heads_after_pooling())
    document = window.document
    before = snapshot(window)
    assert {d.block_id for d in document.analysis.errors} == {block_id(window, "main"),
                                                              block_id(window, "aux")}
    show_problems(qtbot, window)
    button = window.problems.fix_all_button
    assert button.isVisible() and button.text() == "Fix All (2)"
    qtbot.mouseClick(button, Qt.LeftButton)
    assert document.analysis.diagnostics == []
    flattens = [b for b in document.graph.blocks if b.type == "Flatten"]
    assert len(flattens) == 2 and document.undo_stack.count() == 1
    for name in ("main", "aux"):
        (source,) = document.graph.inputs_of(block_id(window, name))
        assert document.graph.block(source).type == "Flatten"
    assert window.statusBar().currentMessage() == (
        "Fixed 2 problems: Inserted Flatten before 'main'; Inserted Flatten before 'aux'")
    qtbot.waitUntil(lambda: button.isHidden(), timeout=2000)
    press_undo(qtbot, window)
    assert snapshot(window) == before


def test_fix_all_from_the_keyboard_fixes_problems_that_show_only_after_another_fix(
        qtbot, make_window):
    """CONV2's kernel does not fit, so FC3 (after POOL2, without Flatten) has no shape to
    complain about yet: Fix all analyses again after each repair and fixes both."""
    document = dense_after_pooling()
    document.edit("k", lambda g: g.set_params("conv2", {"kernel": [20, 20], "padding": "valid"}))
    document.undo_stack.clear()
    window = make_window(document)
    before = snapshot(window)
    assert [d.block_id for d in document.analysis.errors] == ["conv2"]
    qtbot.waitUntil(lambda: window.actions["fix_all"].isEnabled(), timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key_R, Qt.ControlModifier | Qt.ShiftModifier)
    assert document.analysis.diagnostics == [] and flatten_before_fc3(window)
    assert document.graph.block("conv2").params["padding"] == "same"
    assert document.undo_stack.count() == 1
    assert window.statusBar().currentMessage() == (
        "Fixed 2 problems: Set padding of 'CONV2' to same; Inserted Flatten before 'FC3'")
    press_undo(qtbot, window)
    assert snapshot(window) == before


# -- two clicks from every kind of repair ---------------------------------------------------


def _padding(graph: Graph) -> str:
    graph.set_params("conv2", {"kernel": [20, 20], "padding": "valid"})
    return "CONV2"


def _dense(graph: Graph) -> str:
    edits.delete(graph, ["flatten"])
    return "FC3"


def _output(graph: Graph) -> str:
    edits.delete(graph, ["flatten", "fc3", "fc4"])
    return "output"


def _add_channels(graph: Graph) -> str:
    """A residual Add of CONV2 (32 channels) and its own input POOL1 (6 channels)."""
    conv2 = graph.block("conv2")
    add = graph.add_block("Add", name="add", position=(conv2.x + 260, conv2.y + 55))
    graph.disconnect(graph.input_edges("pool2")[0])
    graph.connect("conv2", add.id)
    graph.connect("pool1", add.id)
    graph.connect(add.id, "pool2")
    return "add"


BREAKS: dict[str, Callable[[Graph], str]] = {
    "set padding": _padding, "Flatten before Dense": _dense, "Flatten before Output": _output,
    "1x1 convolution before an Add input": _add_channels,
}


@pytest.mark.parametrize("break_it", list(BREAKS.values()), ids=list(BREAKS))
def test_every_kind_of_repair_is_two_clicks_from_its_badge(qtbot, make_window, break_it):
    project = new_project("course-example")
    name = break_it(project.graph)
    window = make_window(Document(project))
    diagnostics = window.document.analysis.diagnostics_for(block_id(window, name))
    assert diagnostics and all(d.repair for d in diagnostics)
    popup = click_badge(qtbot, window, name)  # click 1
    (_, button), = popup.problems.fix_buttons()
    qtbot.mouseClick(button, Qt.LeftButton)  # click 2
    assert window.document.analysis.diagnostics_for(block_id(window, name)) == []
    assert window.document.undo_stack.count() == 1
