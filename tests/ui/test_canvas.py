"""The canvas, driven with real mouse and keyboard events (pytest-qt, off-screen).

Palette drops are simulated by sending QDragEnterEvent/QDropEvent with the palette's QMimeData
to the viewport: a real QDrag runs its own event loop with the platform's drag machinery, which
cannot be driven off-screen.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QHelpEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QToolTip

from cnnstudio.core.explain import explain
from cnnstudio.core.graph import EventKind, Graph
from cnnstudio.core.layout import layered_layout
from cnnstudio.core.project import Project, project_to_dict
from cnnstudio.core.templates import TEMPLATES, new_project
from cnnstudio.ui import theme
from cnnstudio.ui.canvas import BLOCK_MIME, CanvasView
from cnnstudio.ui.document import Document
from cnnstudio.ui.panels.summary import summary_rows


def snapshot(doc: Document) -> dict:
    return project_to_dict(Project.new(doc.graph))


def make_view(qtbot, doc: Document) -> CanvasView:
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.setFocus()
    return view


@pytest.fixture
def course(qtbot):
    doc = Document(new_project("course-example"))
    return doc, make_view(qtbot, doc)


@pytest.fixture
def empty(qtbot):
    doc = Document(Project.new(Graph()))
    return doc, make_view(qtbot, doc)


def by_name(doc: Document, name: str) -> str:
    block = doc.graph.find(name)
    assert block is not None, name
    return block.id


def drop(view: CanvasView, type_id: str, scene_pos: QPointF, params: dict | None = None) -> None:
    mime = QMimeData()
    mime.setData(BLOCK_MIME, json.dumps({"type": type_id, "params": params or {}}).encode())
    pos = view.mapFromScene(scene_pos)
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(pos), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def drag(qtbot, view: CanvasView, start: QPointF, end: QPointF, modifier=Qt.NoModifier) -> None:
    """A real mouse drag on the viewport between two scene points, in a few steps."""
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    qtbot.mousePress(viewport, Qt.LeftButton, modifier, a)
    for step in range(1, 5):
        qtbot.mouseMove(viewport, a + (b - a) * step / 4)
    qtbot.mouseRelease(viewport, Qt.LeftButton, modifier, b)


def click(qtbot, view: CanvasView, scene_pos: QPointF, modifier=Qt.NoModifier) -> None:
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, modifier, view.mapFromScene(scene_pos))


def body(view: CanvasView, block_id: str) -> QPointF:
    """A point on the block's name line (away from the ports)."""
    item = view.item_for(block_id)
    return item.mapToScene(QPointF(-40, 12))


# -- adding blocks ---------------------------------------------------------------------------


def test_drop_adds_a_block_at_the_drop_point_on_the_grid(empty):
    doc, view = empty
    drop(view, "Conv2D", QPointF(123, 77), {"filters": 8})
    (block,) = doc.graph.blocks
    assert block.type == "Conv2D" and block.params["filters"] == 8
    assert (block.x, block.y) == (120, 50)  # centred on the point, snapped to 10 px
    assert view.item_for(block.id).pos() == QPointF(120, 50)
    assert view.selected_ids() == [block.id]
    doc.undo_stack.undo()
    assert len(doc.graph) == 0 and view.item_for(block.id) is None


def test_stacking_drops_builds_a_sequential_network(empty):
    doc, view = empty
    drop(view, "Input", QPointF(0, 0))
    expected = [
        ("Conv2D", "(26,26,32)", "320 params"),
        ("Pooling", "(13,13,32)", ""),
        ("Flatten", "(5408)", ""),
        ("Dense", "(10)", "54,090 params"),
        ("Output", "(10)", ""),
    ]
    for type_id, _, _ in expected:
        last = doc.graph.blocks[-1]
        item = view.item_for(last.id)
        drop(view, type_id, QPointF(last.x + 20, last.y + item.height() + 30))
    blocks = doc.graph.blocks
    assert [b.type for b in blocks] == ["Input"] + [t for t, _, _ in expected]
    for upper, lower in zip(blocks, blocks[1:]):
        assert doc.graph.inputs_of(lower.id) == [upper.id]
        assert (lower.x, lower.y) == (upper.x, upper.y + 110)
    assert view.item_for(blocks[0].id).shape_text() == "(28,28,1)"
    for block, (_, shape, params) in zip(blocks[1:], expected):
        item = view.item_for(block.id)
        assert (item.shape_text(), item.params_text()) == (shape, params)
        assert not item.has_error() and not item.has_warning()
    assert doc.analysis.diagnostics == []
    labels = sorted(w.label() for w in view.wire_items())
    assert labels == sorted(["(28,28,1)", "(26,26,32)", "(13,13,32)", "(5408)", "(10)"])


def test_drop_onto_a_wire_inserts_the_block_in_one_command(course):
    doc, view = course
    before = snapshot(doc)
    conv1, pool1 = by_name(doc, "CONV1"), by_name(doc, "POOL1")
    (wire,) = [w for w in view.wire_items() if (w.edge.src, w.edge.dst) == (conv1, pool1)]
    drop(view, "Dropout", wire.shape().boundingRect().center())
    new = doc.graph.blocks[-1]
    assert new.type == "Dropout"
    assert doc.graph.inputs_of(new.id) == [conv1] and doc.graph.inputs_of(pool1) == [new.id]
    assert view.item_for(new.id).shape_text() == "(28,28,16)"
    assert doc.analysis.diagnostics == []
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert snapshot(doc) == before


def test_add_block_at_follows_the_drop_rules(course):
    doc, view = course
    output = doc.graph.block(by_name(doc, "output"))
    assert view.add_block_at("Dropout", {}, QPointF(output.x, output.y + 90)) is not None
    # an Output has no output port: the new block is not stacked under it
    assert doc.graph.output_edges(output.id) == []


# -- wires -----------------------------------------------------------------------------------


@pytest.mark.parametrize("refused", [False, True])
def test_wire_drag_connects_or_says_why_not(qtbot, empty, refused):
    doc, view = empty
    drop(view, "Input", QPointF(0, 0))
    drop(view, "Conv2D", QPointF(300, 200))
    input_id, conv_id = (b.id for b in doc.graph.blocks)
    messages: list[str] = []
    view.status_message.connect(messages.append)
    if not refused:
        drag(qtbot, view, view.item_for(input_id).output_anchor(),
             view.item_for(conv_id).input_anchor())
        assert [(e.src, e.dst) for e in doc.graph.edges] == [(input_id, conv_id)]
        assert view.item_for(conv_id).shape_text() == "(26,26,32)"
        assert [w.label() for w in view.wire_items()] == ["(28,28,1)"]
    else:
        drag(qtbot, view, view.item_for(conv_id).output_anchor(),
             view.item_for(input_id).input_anchor() + QPointF(0, 20))
        assert doc.graph.edges == []
        reason = doc.graph.connection_problem(conv_id, input_id)
        assert reason and messages and reason in messages[-1]
    rubber = [i for i in view.scene().items() if type(i).__name__ == "QGraphicsPathItem"]
    assert rubber == []


def test_clicking_a_wire_selects_it_and_delete_removes_it(qtbot, course):
    doc, view = course
    wire = view.wire_items()[0]
    edge = wire.edge
    click(qtbot, view, wire.shape().boundingRect().center())
    assert wire.isSelected()
    qtbot.keyClick(view.viewport(), Qt.Key_Delete)
    assert edge not in doc.graph.edges and len(doc.graph) == 9
    doc.undo_stack.undo()
    assert edge in doc.graph.edges


# -- diagnostics and repairs -----------------------------------------------------------------


def test_an_invalid_edit_turns_the_block_red_and_the_repair_is_one_undo_step(qtbot, course):
    doc, view = course
    flatten, fc3 = by_name(doc, "FLATTEN"), by_name(doc, "FC3")
    click(qtbot, view, body(view, flatten))
    qtbot.keyClick(view.viewport(), Qt.Key_Delete)
    # deleting a block from a chain hands its input on: the Dense layer now gets the image
    assert doc.graph.inputs_of(fc3) == [by_name(doc, "POOL2")]
    item = view.item_for(fc3)
    assert item.has_error() and item.shape_text() == "?"
    (diagnostic,) = doc.analysis.diagnostics_for(fc3)
    assert item.badge.isVisible() and item.badge.is_error()
    assert item.badge.toolTip() == (f"{diagnostic.message}\nFix: {diagnostic.fix}\n\n"
                                    f"{item.badge.CLICK_HINT}")
    assert "7×7×32" in diagnostic.message and diagnostic.fix == "insert Flatten before it"
    broken = snapshot(doc)
    view.apply_repair(diagnostic)
    assert not item.has_error() and item.shape_text() == "(100)"
    assert item.params_text() == "156,900 params" and not item.badge.isVisible()
    assert doc.analysis.diagnostics == []
    doc.undo_stack.undo()
    assert snapshot(doc) == broken and item.has_error()


def test_set_param_repair(course):
    doc, view = course
    conv2 = by_name(doc, "CONV2")
    doc.edit("k", lambda g: g.set_params(conv2, {"kernel": [20, 20], "padding": "valid"}))
    item = view.item_for(conv2)
    assert item.has_error()
    (diagnostic,) = doc.analysis.diagnostics_for(conv2)
    view.apply_repair(diagnostic)
    assert doc.graph.block(conv2).params["padding"] == "same" and not item.has_error()


def test_a_parameter_edit_updates_every_shape_downstream(course):
    doc, view = course
    conv1 = by_name(doc, "CONV1")
    doc.edit("filters", lambda g: g.set_params(conv1, {"filters": 8}))
    assert view.item_for(conv1).shape_text() == "(28,28,8)"
    assert view.item_for(conv1).params_text() == "208 params"
    assert view.item_for(by_name(doc, "CONV2")).params_text() == "6,432 params"
    assert view.item_for(conv1).key_text() == "8 · 5×5 · same · relu"


# -- the course arithmetic -------------------------------------------------------------------


def test_the_shape_tooltip_explains_the_numbers(qtbot, course):
    """The card's tooltip is the core's explanation (its arithmetic: tests/core/test_explain.py),
    shown on a real hover."""
    doc, view = course
    for block in doc.graph.blocks:
        assert view.item_for(block.id).shape_tooltip() == explain(
            block, doc.analysis.blocks.get(block.id))
    conv1 = view.item_for(by_name(doc, "CONV1"))
    # a real hover: move onto the shape line, then ask for the tooltip as Qt does
    spot = view.mapFromScene(conv1.mapToScene(QPointF(-50, 50)))
    qtbot.mouseMove(view.viewport(), spot - QPoint(0, 30))
    qtbot.mouseMove(view.viewport(), spot)
    help_event = QHelpEvent(QHelpEvent.ToolTip, spot, view.viewport().mapToGlobal(spot))
    QApplication.sendEvent(view.viewport(), help_event)
    assert "⌊(28 + 4 − 4 − 1)/1⌋ + 1 = 28" in QToolTip.text()
    QToolTip.hideText()


def test_a_batchnorm_card_shows_the_summary_total_with_its_running_statistics(qtbot):
    """BatchNorm over 64 channels: 128 trainable (γ, β) + 128 running mean and variance = 256,
    on the card as in the Summary row and the inspector (PyTorch's own count is 128)."""
    graph = Graph()
    image = graph.add_block("Input", {"height": 8, "width": 8, "channels": 3})
    conv, norm, *_ = graph.chain([("Conv2D", {"filters": 64, "kernel": [3, 3]}), ("BatchNorm", {}),
                                  ("Flatten", {}), ("Dense", {"units": 10}), ("Output", {})],
                                 after=image.id)
    doc = Document(Project.new(graph))
    view = make_view(qtbot, doc)
    info = doc.analysis.blocks[norm.id]
    assert (info.params, info.buffers, info.total_params) == (128, 128, 256)
    card = view.item_for(norm.id)
    summary_row = next(row for row in summary_rows(doc) if row.block_id == norm.id)
    assert card.params_text() == "256 params" and summary_row.cells[4] == "256"
    tip = card.shape_tooltip()
    assert "2·C = 2·64 = 128 trainable (γ, β) + 128 running statistics" in tip
    assert "= 256" in tip
    doc.edit("freeze", lambda g: g.set_params(norm.id, {"trainable": False}))
    assert card.params_text() == "256 params" and "128 frozen (γ, β)" in card.shape_tooltip()
    assert view.item_for(conv.id).params_text() == f"{(3 * 3 * 3 + 1) * 64:,} params"


# -- moving, selecting, keyboard commands ----------------------------------------------------


def test_dragging_blocks_moves_them_on_the_grid_in_one_command(qtbot, course):
    doc, view = course
    before = snapshot(doc)
    conv1, pool1 = by_name(doc, "CONV1"), by_name(doc, "POOL1")
    click(qtbot, view, body(view, conv1))
    click(qtbot, view, body(view, pool1), Qt.ControlModifier)
    assert view.selected_ids() == [conv1, pool1]
    start = body(view, conv1)
    drag(qtbot, view, start, start + QPointF(263, 38))
    assert (doc.graph.block(conv1).x, doc.graph.block(conv1).y) == (260, 150)
    assert (doc.graph.block(pool1).x, doc.graph.block(pool1).y) == (260, 260)
    assert doc.undo_stack.count() == 1 and view.selected_ids() == [conv1, pool1]
    wire = next(w for w in view.wire_items() if w.edge.dst == conv1)
    assert wire.boundingRect().right() >= 260
    doc.undo_stack.undo()
    assert snapshot(doc) == before
    assert view.item_for(conv1).pos() == QPointF(0, 110)


def test_rubber_band_and_ctrl_click_selection(qtbot, course):
    doc, view = course
    top = doc.graph.block(by_name(doc, "CONV1"))
    drag(qtbot, view, QPointF(-150, top.y - 20), QPointF(150, top.y + 130))
    assert view.selected_ids() == [by_name(doc, "CONV1"), by_name(doc, "POOL1")]
    click(qtbot, view, body(view, by_name(doc, "POOL1")), Qt.ControlModifier)
    assert view.selected_ids() == [by_name(doc, "CONV1")]
    qtbot.keyClick(view.viewport(), Qt.Key_A, Qt.ControlModifier)
    assert len(view.selected_ids()) == 9


def test_delete_duplicate_rename_and_collapse_keys(qtbot, course):
    doc, view = course
    conv2 = by_name(doc, "CONV2")
    click(qtbot, view, body(view, conv2))
    qtbot.keyClick(view.viewport(), Qt.Key_D, Qt.ControlModifier)
    copy = doc.graph.blocks[-1]
    assert copy.type == "Conv2D" and copy.params == doc.graph.block(conv2).params
    assert (copy.x, copy.y) == (30, 360) and view.selected_ids() == [copy.id]
    qtbot.keyClick(view.viewport(), Qt.Key_F2)
    editor = view.rename_editor()
    assert editor is not None and editor.text() == copy.name
    editor.setText("CONV2b")
    qtbot.keyClick(editor, Qt.Key_Return)
    assert doc.graph.block(copy.id).name == "CONV2b" and view.item_for(copy.id).name() == "CONV2b"
    item = view.item_for(copy.id)
    tall = item.sceneBoundingRect().height()
    qtbot.keyClick(view.viewport(), Qt.Key_H)
    assert doc.graph.block(copy.id).collapsed and item.is_collapsed()
    assert item.sceneBoundingRect().height() <= tall - 30
    qtbot.keyClick(view.viewport(), Qt.Key_Delete)
    assert copy.id not in doc.graph and view.item_for(copy.id) is None
    for _ in range(4):
        doc.undo_stack.undo()
    assert copy.id not in doc.graph and len(doc.graph) == 9


def test_copy_paste_within_one_view_and_between_two(qtbot, course):
    doc, view = course
    other_doc = Document(new_project("lenet5"))
    other = make_view(qtbot, other_doc)
    ids = [by_name(doc, "CONV1"), by_name(doc, "POOL1")]
    view.select_blocks(ids)
    view.setFocus()
    qtbot.keyClick(view.viewport(), Qt.Key_C, Qt.ControlModifier)
    qtbot.keyClick(view.viewport(), Qt.Key_V, Qt.ControlModifier)
    pasted = view.selected_ids()
    assert len(pasted) == 2 and not set(pasted) & set(ids)
    first, second = (doc.graph.block(i) for i in pasted)
    assert (first.x, first.y) == (30, 140) and doc.graph.inputs_of(second.id) == [first.id]
    assert first.name != "CONV1"
    other.activateWindow()
    other.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is other)
    qtbot.keyClick(other.viewport(), Qt.Key_V, Qt.ControlModifier)
    copied = other.selected_ids()
    assert [other_doc.graph.block(i).type for i in copied] == ["Conv2D", "Pooling"]
    assert other_doc.graph.inputs_of(copied[1]) == [copied[0]]
    assert other_doc.graph.block(copied[0]).params == doc.graph.block(ids[0]).params
    assert len(doc.graph) == 11 and len(other_doc.graph) == 12
    view.select_blocks([ids[0]])
    view.cut_selected()
    assert ids[0] not in doc.graph
    view.paste()
    assert doc.graph.blocks[-1].type == "Conv2D"


# -- undo and redo of every kind of command --------------------------------------------------


def test_every_command_undoes_and_redoes_to_the_same_model(qtbot, course):
    doc, view = course
    snapshots = [snapshot(doc)]
    conv1, pool2, fc4 = by_name(doc, "CONV1"), by_name(doc, "POOL2"), by_name(doc, "FC4")

    def step(action) -> None:
        action()
        snapshots.append(snapshot(doc))
        assert doc.undo_stack.count() == len(snapshots) - 1

    wire = next(w for w in view.wire_items() if w.edge.src == conv1)
    step(lambda: drop(view, "BatchNorm", wire.shape().boundingRect().center()))
    step(lambda: drop(view, "Dense", QPointF(600, 100)))
    step(lambda: drag(qtbot, view, body(view, doc.graph.blocks[-1].id),
                      body(view, doc.graph.blocks[-1].id) + QPointF(40, 60)))
    step(lambda: view.select_blocks([by_name(doc, "FLATTEN")]) or view.delete_selected())
    step(lambda: view.apply_repair(doc.analysis.diagnostics_for(by_name(doc, "FC3"))[0]))
    step(lambda: view.select_blocks([pool2]) or view.duplicate_selected())
    step(lambda: view.select_blocks([fc4]) or view.toggle_collapse_selected())
    step(lambda: doc.edit("Rename", lambda g: g.rename(fc4, "scores")))
    step(lambda: view.select_blocks([pool2]) or view.copy_selected() or view.paste())
    step(view.auto_layout)
    final = snapshots[-1]
    for expected in reversed(snapshots[:-1]):
        doc.undo_stack.undo()
        assert snapshot(doc) == expected
    for expected in snapshots[1:]:
        doc.undo_stack.redo()
        assert snapshot(doc) == expected
    assert snapshot(doc) == final
    # the items follow the model after all that
    assert {i.block_id for i in view.canvas.block_items()} == {b.id for b in doc.graph.blocks}
    assert {w.edge for w in view.wire_items()} == set(doc.graph.edges)
    for block in doc.graph.blocks:
        assert view.item_for(block.id).pos() == QPointF(block.x, block.y)


# -- layout, zoom, view ----------------------------------------------------------------------


def test_auto_layout_moves_every_block_in_one_command(course):
    doc, view = course
    doc.edit("scatter", lambda g: [g.move(b.id, 37 * i % 300, -50 * i) for i, b in
                                   enumerate(g.blocks)])
    scattered = snapshot(doc)
    view.auto_layout()
    expected = layered_layout(doc.graph)
    assert {b.id: (b.x, b.y) for b in doc.graph.blocks} == expected
    assert view.visible_scene_rect().contains(view.canvas.diagram_rect())
    doc.undo_stack.undo()
    assert snapshot(doc) == scattered


def test_zoom_keys_fit_reset_wheel_and_pan(qtbot, course):
    doc, view = course
    view.reset_zoom()
    assert view.zoom() == pytest.approx(1.0)
    qtbot.keyClick(view.viewport(), Qt.Key_Equal, Qt.ControlModifier)
    assert view.zoom() == pytest.approx(1.25)
    qtbot.keyClick(view.viewport(), Qt.Key_Minus, Qt.ControlModifier)
    qtbot.keyClick(view.viewport(), Qt.Key_Minus, Qt.ControlModifier)
    assert view.zoom() == pytest.approx(0.8)
    view.zoom_in()
    assert view.zoom() == pytest.approx(1.0)
    qtbot.keyClick(view.viewport(), Qt.Key_F)
    assert view.visible_scene_rect().contains(view.canvas.diagram_rect())
    fitted = view.zoom()
    assert fitted <= 1.0
    qtbot.keyClick(view.viewport(), Qt.Key_0, Qt.ControlModifier)
    assert view.zoom() == pytest.approx(1.0)
    centre = view.visible_scene_rect().center()
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MiddleButton, pos=QPoint(500, 300))
    qtbot.mouseMove(viewport, QPoint(400, 250))
    qtbot.mouseRelease(viewport, Qt.MiddleButton, pos=QPoint(400, 250))
    moved = view.visible_scene_rect().center() - centre
    assert (moved.x(), moved.y()) == pytest.approx((100, 50), abs=2)
    # space + left drag pans as well (and selects nothing)
    qtbot.keyPress(view.viewport(), Qt.Key_Space)
    centre = view.visible_scene_rect().center()
    drag(qtbot, view, view.mapToScene(QPoint(500, 300)), view.mapToScene(QPoint(560, 300)))
    qtbot.keyRelease(view.viewport(), Qt.Key_Space)
    assert view.visible_scene_rect().center().x() == pytest.approx(centre.x() - 60, abs=2)
    assert not view.space_held and view.selected_ids() == []
    # the wheel zooms, keeping the point under the mouse in place
    spot = QPoint(300, 200)
    under = view.mapToScene(spot)
    wheel = QWheelEvent(QPointF(spot), QPointF(view.viewport().mapToGlobal(spot)), QPoint(),
                        QPoint(0, 120), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() == pytest.approx(1.0015 ** 120)
    after = view.mapToScene(spot)
    assert (after.x(), after.y()) == pytest.approx((under.x(), under.y()), abs=2)


def test_select_blocks_centres_and_reports_the_selection(qtbot):
    doc = Document(new_project("googlenet"))
    view = make_view(qtbot, doc)
    seen: list[list[str]] = []
    view.selection_changed.connect(seen.append)
    target = doc.graph.blocks[-1].id
    view.select_blocks([target])
    assert seen[-1] == [target] == view.selected_ids()
    assert view.visible_scene_rect().contains(view.item_for(target).sceneBoundingRect())
    qtbot.waitUntil(view.minimap.isVisible)
    activated: list[str] = []
    view.block_activated.connect(activated.append)
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=view.mapFromScene(body(view, target)))
    assert activated == [target]


def test_a_new_project_replaces_every_item(qtbot, course):
    doc, view = course
    view.select_all()
    doc.set_project(new_project("inception-v3-module"))
    assert {i.block_id for i in view.canvas.block_items()} == {b.id for b in doc.graph.blocks}
    assert {w.edge for w in view.wire_items()} == set(doc.graph.edges)
    assert view.selected_ids() == []
    concat = next(b for b in doc.graph.blocks if b.type == "Concatenate")
    assert view.item_for(concat.id).shape_text() == "(8,8,768)"
    ends = sorted(view.canvas.wire_for(e).boundingRect().bottom()
                  for e in doc.graph.input_edges(concat.id))
    assert len(ends) == 4  # four wires into the one wide input of the Concatenate
    doc.edit("units", lambda g: g.set_params(doc.graph.blocks[-2].id, {"units": 7}))
    assert view.item_for(doc.graph.blocks[-1].id).shape_text() == "(7)"


@pytest.mark.parametrize("template_id", list(TEMPLATES))
def test_every_template_loads_without_diagnostics_or_overlaps(qtbot, template_id):
    doc = Document(new_project(template_id))
    view = make_view(qtbot, doc)
    assert doc.analysis.diagnostics == []
    items = view.canvas.block_items()
    assert len(items) == len(doc.graph) and len(view.wire_items()) == len(doc.graph.edges)
    shown = [i for i in items if i.isVisible()] + view.canvas.module_items()  # cards: modules
    rects = sorted((i.sceneBoundingRect() for i in shown), key=lambda r: (r.top(), r.left()))
    for i, rect in enumerate(rects):
        for other in rects[i + 1:]:
            if other.top() > rect.bottom():
                break
            assert not rect.intersects(other)
    for item in items:
        assert item.shape_text() != "?" and not item.badge.isVisible()


def test_themes_and_export(qtbot, course, tmp_path):
    doc, view = course
    app = QApplication.instance()
    try:
        for name in ("dark", "light"):
            theme.apply(app, name)
            view.refresh_theme()
            image = view.grab().toImage()
            corner = image.pixelColor(3, 3)
            assert corner.name() == theme.current().canvas.name()
    finally:
        theme.apply(app, "light")
    view.export_image(str(tmp_path / "net.png"))
    view.export_image(str(tmp_path / "net.svg"))
    from PySide6.QtGui import QImage

    png = QImage(str(tmp_path / "net.png"))
    rect = view.canvas.diagram_rect()
    assert png.width() == round((rect.width() + 48) * 2)
    svg = (tmp_path / "net.svg").read_text()
    assert "<svg" in svg and "CONV1" in svg and "12,832 params" in svg


def test_copying_blocks_then_quitting_exits_cleanly():
    """PySide6 crashes at exit when the clipboard still owns a QMimeData made in Python."""
    import subprocess
    import sys

    script = (
        "import os\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from cnnstudio.core.templates import build_template\n"
        "from cnnstudio.ui.canvas import clipboard\n"
        "app = QApplication([])\n"
        "graph = build_template('keras-mnist')\n"
        "clipboard.put(clipboard.serialise(graph, [b.id for b in graph.blocks[:3]]))\n"
        "assert clipboard.read() is not None\n"
        "print('copied')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "copied"
    assert result.returncode == 0, result.stderr[-1500:]


def test_the_scene_has_a_handler_for_every_kind_of_graph_event(course):
    """The scene claims every EventKind; a kind without a handler would fail its construction."""
    _doc, view = course
    handlers = view.canvas.graph_event_handlers
    assert set(handlers) == set(EventKind)
    # a definition alone draws nothing (its instances do, and its name on their cards)
    drawn_by_instances = {EventKind.DEFINITION_ADDED, EventKind.DEFINITION_REMOVED}
    handled = {kind for kind, handler in handlers.items() if handler is not None}
    assert handled == set(EventKind) - drawn_by_instances
