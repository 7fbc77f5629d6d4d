"""Big graphs readable at every zoom (issue 14), driven as a person does: keys, the wheel,
menus and typing in a 1400×900 main window or a canvas view.

Fit (F) shows every block's name at a readable size (detail.py's levels, zoom.py's spread); a
project opens with its Input in view; auto layout runs top to bottom or left to right, one undo
step each; a dropped block scrolls into view; Find (Ctrl+F) selects and centres blocks by name
or type."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from cnnstudio.core.edits import BLOCK_H, BLOCK_W
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import RIGHT
from cnnstudio.core.module_layout import tidy_layout
from cnnstudio.core.project import Project, save_project
from cnnstudio.core.templates import new_project
from cnnstudio.ui import theme
from cnnstudio.ui.canvas import CanvasView
from cnnstudio.ui.canvas.detail import (
    LABEL_MARGIN,
    MIN_TEXT_PX,
    Detail,
    Fonts,
    detail_for,
)
from cnnstudio.ui.canvas.items import BlockItem
from cnnstudio.ui.canvas.module_item import ModuleItem
from cnnstudio.ui.canvas.view import REVEAL_MARGIN
from cnnstudio.ui.document import Document
from tests.ui import test_canvas
from tests.ui.test_canvas import drop
from tests.ui.test_rough_edges import choose

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def wheel(view: CanvasView, steps: int, spot: QPoint | None = None) -> None:
    """Turn the mouse wheel by `steps` notches (positive: towards the user's screen, in)."""
    spot = spot or view.viewport().rect().center()
    for _ in range(abs(steps)):
        event = QWheelEvent(QPointF(spot), QPointF(view.viewport().mapToGlobal(spot)), QPoint(),
                            QPoint(0, 120 if steps > 0 else -120), Qt.NoButton, Qt.NoModifier,
                            Qt.NoScrollPhase, False)
        QApplication.sendEvent(view.viewport(), event)


def make_view(qtbot, doc: Document) -> CanvasView:
    """A canvas view of its own, shown, active and focused: its keys work."""
    view = test_canvas.make_view(qtbot, doc)
    view.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is view, timeout=2000)
    view.setFocus()
    return view


def chain_project(blocks: int) -> Project:
    """Input, then Conv2D blocks down a column, ending in a Dense without an Output."""
    graph = Graph()
    first = graph.add_block("Input", {"channels": 1, "height": 28, "width": 28}).id
    graph.chain([("Conv2D", {"filters": 4, "kernel": 3, "padding": "same"})] * (blocks - 3)
                + [("Flatten", {}), ("Dense", {"units": 10})], after=first, y=110)
    return Project.new(graph)


def on_screen(view: CanvasView, item: BlockItem | ModuleItem) -> QRect:
    return view.mapFromScene(item.mapRectToScene(item.outline_rect())).boundingRect()


def text_pixels(image: QImage, rect: QRect, colour: QColor) -> int:
    """How many pixels inside `rect` are (nearly) the text colour."""
    count = 0
    area = rect.intersected(image.rect())
    target = (colour.red(), colour.green(), colour.blue())
    for y in range(area.top(), area.bottom() + 1):
        for x in range(area.left(), area.right() + 1):
            found = QColor(image.pixel(x, y))
            if max(abs(a - b) for a, b in zip((found.red(), found.green(), found.blue()),
                                               target)) <= 80:
                count += 1
    return count


# -- level of detail ---------------------------------------------------------------------------


@pytest.mark.parametrize("template_id", ["googlenet", "resnet18"])
def test_fit_shows_every_block_name_at_a_readable_size(make_window, qtbot, template_id):
    window = make_window(Document(new_project(template_id)), recover=False)
    assert (window.width(), window.height()) == (1400, 900)
    view = window.canvas
    qtbot.keyClick(view.viewport(), Qt.Key.Key_F)
    assert view.visible_scene_rect().contains(view.canvas.diagram_rect())
    across, down = view.scales()
    assert across > down  # a tall network spread across the width
    image = view.viewport().grab().toImage()
    text = theme.current().text
    cards = [m for m in view.canvas.module_items() if m.is_collapsed()]
    assert cards  # the Inception and residual modules, collapsed
    shown = [i for i in view.canvas.block_items() if i.isVisible()]
    for item in [*shown, *cards]:
        drawn = item.drawn(across, down)
        assert drawn.level >= Detail.NAME, item.name()
        assert drawn.name == item.name()  # whole, not elided
        assert drawn.name_px >= MIN_TEXT_PX
        chip = on_screen(view, item).adjusted(8, 0, 0, 0)  # past the accent band
        assert text_pixels(image, chip, text) >= 5, item.name()  # and it is painted
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)  # the minimap is still there
    qtbot.waitUntil(view.minimap.isVisible)


def test_each_zoom_draws_names_while_eight_pixel_text_fits(qtbot):
    doc = Document(new_project("googlenet"))
    view = make_view(qtbot, doc)
    item = view.item_for(doc.graph.blocks[1].id)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    seen: list[Detail] = []
    while True:
        across, down = view.scales()
        drawn = item.drawn(across, down)
        seen.append(drawn.level)
        if drawn.level >= Detail.NAME:
            assert drawn.name and drawn.name_px >= MIN_TEXT_PX
        else:  # a bar only where not one line of 8 px text fits: too low a row, or a block
            row = (BLOCK_H + 2 * LABEL_MARGIN) * down  # narrower than a few characters
            assert row < MIN_TEXT_PX or BLOCK_W * across < 4 * MIN_TEXT_PX
        if view.zoom() <= 0.05 + 1e-9:
            break
        wheel(view, -1)
    assert seen[0] == Detail.CARD and seen == sorted(seen, reverse=True)
    assert set(seen) == set(Detail)  # card, name and shape, name, and at last a bar


def test_far_names_get_room_above_and_below_and_give_it_back(qtbot):
    doc = Document(new_project("resnet18"))
    view = make_view(qtbot, doc)
    item = view.item_for(doc.graph.blocks[3].id)
    tight = item.boundingRect().height()
    qtbot.keyClick(view.viewport(), Qt.Key.Key_F)
    assert detail_for(*view.scales()) == Detail.NAME
    assert item.boundingRect().height() == pytest.approx(BLOCK_H + 2 * LABEL_MARGIN)
    assert item.shape().boundingRect() == item.outline_rect()  # clicks still hit the block
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    assert detail_for(*view.scales()) == Detail.CARD
    assert item.boundingRect().height() == tight


def test_chip_texts_are_elided_once_per_level(qtbot, monkeypatch):
    doc = Document(new_project("googlenet"))
    view = make_view(qtbot, doc)
    item = view.item_for(doc.graph.blocks[9].id)
    item.shape_text()  # the card's texts, made before counting
    calls: list[str] = []
    fonts = Fonts.get()
    elided = fonts.elided
    monkeypatch.setattr(fonts, "elided", lambda *a: calls.append(a[1]) or elided(*a))
    first = item.drawn(0.5, 0.2)
    assert item.drawn(0.5, 0.2) is first and len(calls) == 1
    other = item.drawn(0.5, 0.45)
    assert other.level == Detail.NAME_SHAPE and other.shape == item.shape_text()
    assert item.drawn(0.5, 0.2) is first and item.drawn(0.5, 0.45) is other
    assert len(calls) == 3  # the name, then the title and the shape, each once


def test_fit_spread_gives_way_to_zooming_in_and_actual_size(qtbot):
    doc = Document(new_project("googlenet"))
    view = make_view(qtbot, doc)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_F)
    across, down = view.scales()
    assert across > 2 * down and view.zoom() == pytest.approx(down)
    spot = view.viewport().rect().center() + QPoint(-150, -100)
    under = view.mapToScene(spot)
    wheel(view, 1, spot)
    after = view.mapFromScene(under)  # the point under the mouse stayed there
    assert (after.x(), after.y()) == pytest.approx((spot.x(), spot.y()), abs=2)
    wheel(view, 2, spot)
    wider, taller = view.scales()
    assert wider == pytest.approx(across) and taller > down  # only the rows grew
    wheel(view, -8)  # zoomed out past Fit: still as wide as the window
    assert view.scales()[0] == pytest.approx(across)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    assert view.scales() == (1.0, 1.0)
    wheel(view, 9)
    assert view.scales()[0] == pytest.approx(view.scales()[1])


# -- first view, drops ---------------------------------------------------------------------


def input_shown(window) -> bool:
    view = window.canvas
    item = view.item_for(window.document.graph.input_block().id)
    return view.visible_scene_rect().contains(item.mapRectToScene(item.outline_rect()))


def test_projects_open_with_their_input_in_view(make_window, qtbot, tmp_path):
    window = make_window(recover=False)  # the Keras network: too tall to fit readably
    view = window.canvas
    assert input_shown(window) and view.zoom() >= 0.8
    window.ask_new_project = lambda: new_project("googlenet")
    qtbot.keyClick(window, Qt.Key.Key_N, CTRL)
    assert window.document.graph.find("inception_5b/output") is not None
    assert input_shown(window) and view.zoom() >= 0.8
    small = tmp_path / "small.cnnproj"
    save_project(chain_project(5), small)  # fits the window readably: fitted
    window.ask_open_path = lambda: str(small)
    qtbot.keyClick(window, Qt.Key.Key_O, CTRL)
    assert len(window.document.graph) == 5
    assert view.visible_scene_rect().contains(view.canvas.diagram_rect())
    assert 0.8 <= view.zoom() <= 1.0


def test_the_first_view_follows_resizes_until_the_user_moves(make_window, qtbot):
    window = make_window(recover=False)
    view = window.canvas
    for size in ((1200, 720), (1700, 1000), (1400, 900)):  # the docks and banners take room
        window.resize(*size)
        qtbot.waitUntil(lambda s=size: (window.width(), window.height()) == s)
        assert input_shown(window)
    view.setFocus()
    qtbot.keyClick(view.viewport(), Qt.Key.Key_PageDown)  # the user scrolls down
    centre = view.visible_scene_rect().center()
    assert not input_shown(window)
    window.resize(1300, 800)
    qtbot.waitUntil(lambda: window.height() == 800)
    moved = view.visible_scene_rect().center() - centre
    assert abs(moved.x()) <= 2 and abs(moved.y()) <= 2  # where the user put it


def test_a_dropped_block_scrolls_into_view(qtbot):
    doc = Document(chain_project(12))
    view = make_view(qtbot, doc)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    last = doc.graph.blocks[-1]
    bottom = view.viewport().rect().bottom()
    view.centerOn(QPointF(last.x, last.y + BLOCK_H + 60 - view.viewport().height() / 2))
    assert bottom - 120 < on_screen(view, view.item_for(last.id)).bottom() < bottom
    before = view.visible_scene_rect()
    drop(view, "Dropout", QPointF(last.x, last.y + BLOCK_H + 20))  # stacked below the end
    added = doc.graph.blocks[-1]
    assert added.type == "Dropout" and doc.graph.inputs_of(added.id) == [last.id]
    shown = on_screen(view, view.item_for(added.id))
    assert view.viewport().rect().contains(shown)
    # scrolled no more than it takes: at the bottom edge, not in the middle
    assert shown.bottom() >= bottom - REVEAL_MARGIN - 4
    assert view.visible_scene_rect().left() == pytest.approx(before.left())


# -- auto layout ---------------------------------------------------------------------------


def test_auto_layout_runs_top_to_bottom_or_left_to_right_one_undo_step_each(make_window, qtbot):
    window = make_window(Document(new_project("inception-v3-module")), recover=False)
    doc = window.document
    before = {b.id: (b.x, b.y) for b in doc.graph.blocks}
    choose(qtbot, window, "View", "Auto Layout Left to Right")
    placed = {b.id: (b.x, b.y) for b in doc.graph.blocks}
    assert placed == tidy_layout(doc.graph, direction=RIGHT)  # its module as one card
    scene = window.canvas.canvas

    def shown_at(block_id: str) -> QPointF:
        return (scene.hiding_module(block_id) or scene.item_for(block_id)).pos()

    for edge in doc.graph.edges:  # every wire shown runs to the right
        if scene.wire_for(edge).isVisible():
            assert shown_at(edge.dst).x() > shown_at(edge.src).x()
    assert doc.undo_stack.undoText() == "Automatic layout left to right"
    assert window.canvas.visible_scene_rect().contains(window.canvas.canvas.diagram_rect())
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)
    assert {b.id: (b.x, b.y) for b in doc.graph.blocks} == before
    choose(qtbot, window, "View", "Auto Layout")
    placed = {b.id: (b.x, b.y) for b in doc.graph.blocks}
    assert placed == tidy_layout(doc.graph)
    for edge in doc.graph.edges:  # and down
        if scene.wire_for(edge).isVisible():
            assert shown_at(edge.dst).y() > shown_at(edge.src).y()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)
    assert {b.id: (b.x, b.y) for b in doc.graph.blocks} == before


# -- find ----------------------------------------------------------------------------------


def centred(view: CanvasView, block_id: str) -> bool:
    item = view.item_for(block_id)
    centre = on_screen(view, item).center()
    middle = view.viewport().rect().center()
    return abs(centre.x() - middle.x()) <= 3 and abs(centre.y() - middle.y()) <= 3


def test_find_selects_and_centres_blocks_by_name_or_type(make_window, qtbot):
    window = make_window(Document(new_project("googlenet")), recover=False)
    view, graph = window.canvas, window.document.graph
    qtbot.keyClick(window, Qt.Key.Key_F, CTRL)
    bar = view.find_bar
    assert bar.isVisible() and bar.field.hasFocus()
    qtbot.keyClicks(bar.field, "5x5_reduce")
    reduces = [b.id for b in graph.blocks if "5x5_reduce" in b.name]
    assert len(reduces) == 9
    assert view.selected_ids() == [reduces[0]] and centred(view, reduces[0])
    assert bar.count.text() == "1 of 9"
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert view.selected_ids() == [reduces[1]] and centred(view, reduces[1])
    qtbot.keyClick(bar.field, Qt.Key.Key_F3)
    assert view.selected_ids() == [reduces[2]] and bar.count.text() == "3 of 9"
    qtbot.keyClick(bar.field, Qt.Key.Key_F3, SHIFT)
    assert view.selected_ids() == [reduces[1]]
    bar.field.clear()
    qtbot.keyClicks(bar.field, "dense")  # no name holds it: the Dense blocks, by type
    dense = [b.id for b in graph.blocks if b.type == "Dense"]
    assert dense and view.selected_ids() == [dense[0]] and centred(view, dense[0])
    bar.field.clear()
    qtbot.keyClicks(bar.field, "no such block")
    assert bar.current() is None and bar.count.text() == "No match"
    assert "no such block" in bar.count.toolTip()
    qtbot.keyClick(bar.field, Qt.Key.Key_Escape)
    assert not bar.isVisible() and view.hasFocus()
    qtbot.keyClick(view, Qt.Key.Key_F3)  # F3 on the canvas: the bar again, at the next match
    assert bar.isVisible()
