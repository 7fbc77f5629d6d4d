"""Modules in the window (issue 14, "Reusable modules"), driven like a person: clicks, double
clicks, context menus, keys, drags and palette drops on a shown main window (pytest-qt,
off-screen). The core API itself is tested in tests/core."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QComboBox

from cnnstudio.core.modules import module_summary
from cnnstudio.core.project import Project, project_to_dict
from cnnstudio.core.templates import new_project
from cnnstudio.ui.canvas.module_actions import MODULE_MIME
from cnnstudio.ui.canvas.module_item import ModuleItem
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow
from tests.ui.test_fixes import choose_in_next_menu, press_undo, right_click
from tests.ui.test_panels import select_all_and_type

CTRL = Qt.KeyboardModifier.ControlModifier


def snapshot(window: MainWindow) -> dict:
    return project_to_dict(Project.new(window.document.graph))


@pytest.fixture
def googlenet(make_window) -> MainWindow:
    return make_window(Document(new_project("googlenet")), recover=False)


@pytest.fixture
def resnet(make_window) -> MainWindow:
    return make_window(Document(new_project("resnet18")), recover=False)


@pytest.fixture
def course(make_window) -> MainWindow:
    return make_window(Document(new_project("course-example")), recover=False)


def module_named(window: MainWindow, name: str):
    return next(m for m in window.document.graph.modules if m.name == name)


def card(window: MainWindow, name: str) -> ModuleItem:
    item = window.canvas.canvas.module_item(module_named(window, name).id)
    assert item is not None
    return item


def at_actual_size(qtbot, window: MainWindow, item) -> None:
    """Ctrl+0 (100 %), then the item centred, as a user scrolls to it."""
    view = window.canvas
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    view.centerOn(item.mapRectToScene(item.outline_rect()).center())


def centre_of(window: MainWindow, item) -> QPoint:
    rect = item.mapRectToScene(item.body_rect() if hasattr(item, "body_rect")
                               else item.outline_rect())
    return window.canvas.mapFromScene(rect.center())


def block_named(window: MainWindow, name: str) -> str:
    block = window.document.graph.find(name)
    assert block is not None, name
    return block.id


# -- the collapsed card ------------------------------------------------------------------------


def test_googlenet_opens_with_one_card_per_inception_module(googlenet):
    window = googlenet
    scene, graph = window.canvas.canvas, window.document.graph
    cards = scene.module_items()
    assert len(cards) == 9 and all(c.is_collapsed() and c.isVisible() for c in cards)
    module = module_named(window, "inception (3a)")
    inception = card(window, "inception (3a)")
    summary = module_summary(graph, window.document.analysis, module.id)
    assert (inception.input_text(), inception.shape_text()) == ("(28,28,192)", "(28,28,256)")
    assert summary.total_params == 163_696 and summary.macs > 0
    assert inception.counts_text() == "164k params · 128M MACs"
    for block_id in module.members.values():  # its blocks and the wires among them: hidden
        assert not scene.item_for(block_id).isVisible()
    inside = [e for e in graph.edges if e.src in module.members.values()
              and e.dst in module.members.values()]
    assert inside and not any(scene.wire_for(e).isVisible() for e in inside)
    entering = [e for e in graph.edges if e.dst in module.members.values()
                and e.src not in module.members.values()]
    assert len(entering) == 4  # the four branches take the same input: all at the card's port
    for edge in entering:
        wire = scene.wire_for(edge)
        assert wire.isVisible()
        assert wire.shape().contains(inception.input_anchor() + QPointF(0, -1))
    # the network fits at a zoom where each card's name is drawn whole
    window.canvas.fit_all()
    across, down = window.canvas.scales()
    assert inception.drawn(across, down).name == "inception (3a)"


def test_a_card_turns_red_when_a_block_inside_has_an_error(googlenet, qtbot):
    window = googlenet
    inception = card(window, "inception (3a)")
    assert not inception.has_error()
    conv = block_named(window, "inception_3a/3x3")
    window.document.edit("break", lambda g: g.set_params(conv, {"kernel": [99, 99],
                                                                  "padding": "valid"}))
    assert inception.has_error()
    assert "error" in inception.toolTip()
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert not inception.has_error()


# -- expand and collapse -------------------------------------------------------------------------


def test_double_click_expands_in_place_and_the_frames_button_collapses(googlenet, qtbot):
    window = googlenet
    view, scene = window.canvas, window.canvas.canvas
    module = module_named(window, "inception (3b)")
    item = card(window, "inception (3b)")
    at_actual_size(qtbot, window, item)
    before = window.document.undo_stack.count()
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=centre_of(window, item))
    assert not window.document.graph.module(module.id).collapsed
    assert window.document.undo_stack.count() == before + 1
    assert all(scene.item_for(b).isVisible() for b in module.members.values())
    assert not item.is_collapsed() and item.collapse_button.isVisible()
    frame = item.outline_rect()
    for block_id in module.members.values():  # the frame is drawn around every block inside
        block = scene.item_for(block_id)
        assert frame.contains(block.mapRectToScene(block.body_rect()))
    button = item.collapse_button
    view.centerOn(button.scenePos())
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.mapFromScene(button.scenePos()))
    assert window.document.graph.module(module.id).collapsed
    assert window.document.undo_stack.count() == before + 2
    assert not any(scene.item_for(b).isVisible() for b in module.members.values())
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Z, CTRL)
    assert not window.document.graph.module(module.id).collapsed
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Z, CTRL)
    assert window.document.graph.module(module.id).collapsed and item.is_collapsed()


def test_context_menus_expand_collapse_rename_and_dissolve(googlenet, qtbot):
    window = googlenet
    view, scene = window.canvas, window.canvas.canvas
    module = module_named(window, "inception (4a)")
    item = card(window, "inception (4a)")
    at_actual_size(qtbot, window, item)
    seen: list[list[str]] = []
    choose_in_next_menu(qtbot, "Expand module", seen)
    right_click(view.viewport(), centre_of(window, item))
    assert {"Expand module", "Rename module…", "Make this instance unique",
            "Dissolve module"} <= set(seen[0])
    assert not window.document.graph.module(module.id).collapsed
    # a block inside the expanded module offers to collapse it
    inner = scene.item_for(block_named(window, "inception_4a/3x3"))
    view.centerOn(inner)
    choose_in_next_menu(qtbot, "Collapse module", seen)
    right_click(view.viewport(), centre_of(window, inner))
    assert "Collapse module 'inception (4a)'" in seen[1]
    assert window.document.graph.module(module.id).collapsed
    view.modules.ask_name = lambda *_args: "mixed 4a"
    choose_in_next_menu(qtbot, "Rename module", seen)
    right_click(view.viewport(), centre_of(window, item))
    assert window.document.graph.module(module.id).name == "mixed 4a" == item.name()
    before = snapshot(window)
    choose_in_next_menu(qtbot, "Dissolve module", seen)
    right_click(view.viewport(), centre_of(window, item))
    assert module.id not in {m.id for m in window.document.graph.modules}
    assert scene.module_item(module.id) is None
    assert all(scene.item_for(b).isVisible() for b in module.members.values())
    assert "definition stays" in window.statusBar().currentMessage()
    press_undo(qtbot, window)
    assert snapshot(window) == before
    assert scene.module_item(module.id).is_collapsed()
    assert not any(scene.item_for(b).isVisible() for b in module.members.values())


def test_dragging_a_card_moves_its_blocks_in_one_step(googlenet, qtbot):
    window = googlenet
    view, graph = window.canvas, window.document.graph
    module = module_named(window, "inception (5a)")
    item = card(window, "inception (5a)")
    at_actual_size(qtbot, window, item)
    before = {b: (graph.block(b).x, graph.block(b).y) for b in module.members.values()}
    start = centre_of(window, item)
    end = start + QPoint(200, 40)
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.LeftButton, pos=start)
    for step in range(1, 5):
        qtbot.mouseMove(viewport, start + (end - start) * step / 4)
    qtbot.mouseRelease(viewport, Qt.LeftButton, pos=end)
    after = {b: (graph.block(b).x, graph.block(b).y) for b in module.members.values()}
    shifts = {(round(a[0] - b[0]), round(a[1] - b[1])) for a, b in
              zip(after.values(), before.values(), strict=True)}
    assert len(shifts) == 1 and shifts != {(0, 0)}  # every block by the same grid step
    assert window.document.undo_stack.undoText() == "Move 8 blocks"
    exit_wire = next(w for w in view.wire_items()
                     if w.edge.src == module.members["output"] and w.isVisible())
    assert exit_wire.shape().contains(item.output_anchor() + QPointF(0, 1))


def test_delete_on_a_card_removes_its_blocks_and_undo_brings_the_card_back(googlenet, qtbot):
    window = googlenet
    view, scene, graph = window.canvas, window.canvas.canvas, window.document.graph
    module = module_named(window, "inception (4e)")
    item = card(window, "inception (4e)")
    at_actual_size(qtbot, window, item)
    before = snapshot(window)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=centre_of(window, item))
    assert item.isSelected() and set(view.selected_ids()) == set(module.members.values())
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert not any(b in graph for b in module.members.values())
    assert scene.module_item(module.id) is None
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Z, CTRL)
    assert snapshot(window) == before
    restored = scene.module_item(module.id)
    assert restored is not None and restored.is_collapsed()
    assert not any(scene.item_for(b).isVisible() for b in module.members.values())


def test_find_expands_the_module_holding_the_match(googlenet, qtbot):
    window = googlenet
    view = window.canvas
    qtbot.keyClick(window, Qt.Key.Key_F, CTRL)
    qtbot.keyClicks(view.find_bar.field, "inception_4c/pool_proj")
    found = block_named(window, "inception_4c/pool_proj")
    assert view.selected_ids() == [found] and view.item_for(found).isVisible()
    assert not module_named(window, "inception (4c)").collapsed


# -- making a module -----------------------------------------------------------------------------


def select_by_ctrl_click(qtbot, window: MainWindow, names: list[str]) -> None:
    view = window.canvas
    for number, name in enumerate(names):
        item = view.item_for(block_named(window, name))
        view.centerOn(item)
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, CTRL if number else Qt.NoModifier,
                         centre_of(window, item))


def test_make_module_from_a_selection_by_menu_and_shortcut(course, qtbot):
    window = course
    view, graph = window.canvas, window.document.graph
    names = [b.name for b in graph.blocks[1:4]]  # three blocks after the Input, one chain
    select_by_ctrl_click(qtbot, window, names)
    asked: list[tuple] = []
    view.modules.ask_name = lambda *args: asked.append(args) or "stem"
    seen: list[list[str]] = []
    choose_in_next_menu(qtbot, "&Make Module", seen)  # the Edit menu's action, reused
    right_click(view.viewport(), centre_of(window, view.item_for(block_named(window,
                                                                             names[1]))))
    assert asked and asked[0][3] == "module 1", seen  # a free default name to accept
    (module,) = graph.modules
    assert module.name == "stem" and sorted(module.members.values()) == sorted(
        block_named(window, n) for n in names)
    assert window.document.undo_stack.undoText() == "Make module stem"
    assert window.canvas.canvas.module_item(module.id) is not None
    assert "stem" in window.palette.module_titles()  # listed under "My modules" at once
    press_undo(qtbot, window)
    assert graph.modules == [] and window.canvas.canvas.module_items() == []
    assert window.palette.module_titles() == []
    # Edit → Make Module… has its shortcut: Ctrl+G
    select_by_ctrl_click(qtbot, window, names)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_G, CTRL)
    assert [m.name for m in graph.modules] == ["stem"]
    assert "Ctrl+G" in [s.toString() for s in window.actions["make_module"].shortcuts()]


def test_make_module_refuses_a_selection_with_the_reason(course, qtbot):
    window = course
    view, graph = window.canvas, window.document.graph
    view.modules.ask_name = lambda *_args: pytest.fail("no name is asked for a refused selection")
    select_by_ctrl_click(qtbot, window, [graph.blocks[0].name, graph.blocks[1].name])
    qtbot.keyClick(view.viewport(), Qt.Key.Key_G, CTRL)
    assert graph.modules == [] and window.document.undo_stack.count() == 0
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot make a module: ") and "cannot be inside a module" in message


# -- the inspector -------------------------------------------------------------------------------


def test_inspector_shows_a_collapsed_modules_totals_and_renames_it(googlenet, qtbot):
    window = googlenet
    view, inspector = window.canvas, window.inspector
    module = module_named(window, "inception (3a)")
    item = card(window, "inception (3a)")
    at_actual_size(qtbot, window, item)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=centre_of(window, item))
    assert inspector.module_id == module.id
    summary = module_summary(window.document.graph, window.document.analysis, module.id)
    assert inspector._facts["Parameters"].text() == f"{summary.total_params:,}"
    assert inspector._facts["MACs"].text() == f"{summary.macs:,}"
    assert inspector._facts["Output shape"].text() == "(28,28,256)"
    assert inspector._facts["Blocks"].text() == str(len(module.members)) == "8"
    select_all_and_type(qtbot, inspector.name_field.line, "mixed 3a")
    assert window.document.graph.module(module.id).name == "mixed 3a" == item.name()
    qtbot.mouseClick(inspector.expand_button, Qt.LeftButton)
    assert not window.document.graph.module(module.id).collapsed
    assert inspector.module_id is None


def test_editing_a_block_inside_a_shared_module_asks_where_the_edit_goes(resnet, qtbot):
    window = resnet
    view, inspector, graph = window.canvas, window.inspector, window.document.graph
    first, second = module_named(window, "layer1.0"), module_named(window, "layer1.1")
    assert first.definition == second.definition
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton,
                      pos=centre_of(window, card(window, "layer1.0")))
    norm = view.item_for(first.members["bn1"])
    at_actual_size(qtbot, window, norm)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=centre_of(window, norm))
    scope = inspector.scope
    assert isinstance(scope, QComboBox) and scope.isVisible()
    shared_name = graph.definition(first.definition).name
    assert scope.currentText() == f"Apply to every instance of '{shared_name}' (2)"
    select_all_and_type(qtbot, inspector.fields["eps"].spin, "0.001")
    assert graph.block(first.members["bn1"]).params["eps"] == pytest.approx(1e-3)
    assert graph.block(second.members["bn1"]).params["eps"] == pytest.approx(1e-3)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Z, CTRL)
    assert graph.block(second.members["bn1"]).params["eps"] == pytest.approx(1e-5)
    qtbot.mouseClick(scope, Qt.LeftButton)  # a person opens the box and picks the second row
    qtbot.keyClick(QApplication.focusWidget() or scope, Qt.Key.Key_Down)
    qtbot.keyClick(QApplication.focusWidget() or scope, Qt.Key.Key_Return)
    assert scope.currentText() == "This instance only"
    select_all_and_type(qtbot, inspector.fields["eps"].spin, "0.002")
    assert graph.block(first.members["bn1"]).params["eps"] == pytest.approx(2e-3)
    assert graph.block(second.members["bn1"]).params["eps"] == pytest.approx(1e-5)
    assert graph.module(first.id).definition != graph.module(second.id).definition
    assert scope.itemText(0).endswith("(1)")  # its own definition now


def test_blocks_outside_modules_get_no_scope_box(course, qtbot):
    window = course
    conv = window.canvas.item_for(window.document.graph.blocks[1].id)
    window.canvas.centerOn(conv)
    qtbot.mouseClick(window.canvas.viewport(), Qt.LeftButton, pos=centre_of(window, conv))
    assert window.inspector.block_ids == [conv.block_id] and window.inspector.scope is None


# -- the palette's "My modules" ------------------------------------------------------------------


def drop_module(window: MainWindow, definition_id: str, scene_pos: QPointF) -> None:
    view = window.canvas
    mime = QMimeData()
    mime.setData(MODULE_MIME, definition_id.encode())
    pos = view.mapFromScene(scene_pos)
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    QApplication.sendEvent(view.viewport(), QDropEvent(QPointF(pos), Qt.CopyAction, mime,
                                                       Qt.LeftButton, Qt.NoModifier))


def test_my_modules_lists_the_definitions_and_a_drop_adds_an_instance(googlenet, qtbot):
    window = googlenet
    graph, palette = window.document.graph, window.palette
    titles = palette.module_titles(visible_only=True)
    assert sorted(titles) == sorted(d.name for d in graph.definitions) and len(titles) == 9
    item = palette.module_item("inception (3a)")
    mime = palette.mime_data(item)  # what a drag from the palette carries
    definition = next(d for d in graph.definitions if d.name == "inception (3a)")
    assert bytes(mime.data(MODULE_MIME).data()).decode() == definition.id
    spot = QPointF(1600, 300)
    window.canvas.centerOn(spot)
    before = window.document.undo_stack.count()
    drop_module(window, definition.id, spot)
    assert window.document.undo_stack.count() == before + 1
    added = graph.instances_of(definition.id)
    assert len(added) == 2 and added[1].collapsed
    new_card = window.canvas.canvas.module_item(added[1].id)
    assert new_card is not None and new_card.isSelected()
    assert abs(new_card.mapRectToScene(new_card.body_rect()).center().x() - spot.x()) < 400
    qtbot.keyClicks(palette.search, "3a")
    assert palette.module_titles(visible_only=True) == ["inception (3a)"]
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert len(graph.instances_of(definition.id)) == 1


def test_double_click_in_my_modules_adds_an_instance_below_the_network(googlenet, qtbot):
    window = googlenet
    graph, palette = window.document.graph, window.palette
    item = palette.module_item("inception (5b)")
    palette.tree.scrollToItem(item)
    rect = palette.tree.visualItemRect(item)
    qtbot.mouseClick(palette.tree.viewport(), Qt.LeftButton, pos=rect.center())
    with qtbot.waitSignal(palette.module_requested):
        qtbot.mouseDClick(palette.tree.viewport(), Qt.LeftButton, pos=rect.center())
    definition = next(d for d in graph.definitions if d.name == "inception (5b)")
    assert len(graph.instances_of(definition.id)) == 2


def test_the_palettes_modules_follow_the_project(googlenet):
    window = googlenet
    window.document.set_project(new_project("keras-mnist"))
    assert window.palette.module_titles() == [] and window.palette.modules_header.isHidden()
    assert window.palette.entries()  # the block entries stay
    window.document.set_project(new_project("inception-small"))
    assert len(window.palette.module_titles(visible_only=True)) == 4
