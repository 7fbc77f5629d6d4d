"""Collapsed modules on the canvas, the last rough parts (issue 14), driven like a person: wires
dragged to and from a card's ports, Auto Layout and expanding in a compact network, copy and
paste of a card. The core parts are tested in tests/core (test_layout, test_modules)."""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QToolTip

from cnnstudio.core import modules
from cnnstudio.core.graph import Graph
from cnnstudio.core.grid import STEP_Y
from cnnstudio.core.templates import build_template
from cnnstudio.ui.canvas import clipboard
from cnnstudio.ui.canvas.items import BlockItem
from cnnstudio.ui.canvas.module_item import ModuleItem
from cnnstudio.ui.main_window import MainWindow
from tests.ui.test_modules_canvas import (  # noqa: F401 (the googlenet fixture)
    CTRL,
    block_named,
    card,
    centre_of,
    googlenet,
    module_named,
    snapshot,
)

SHIFT = Qt.KeyboardModifier.ShiftModifier


def wire_drag(qtbot, window: MainWindow, start: QPointF, end: QPointF) -> None:
    """Press on a scene point, move in steps and release on another, both scrolled into view
    at 100 %."""
    view = window.canvas
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    view.centerOn((start + end) / 2)
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    assert viewport.rect().contains(a) and viewport.rect().contains(b)
    qtbot.mousePress(viewport, Qt.LeftButton, pos=a)
    for step in range(1, 5):
        qtbot.mouseMove(viewport, a + (b - a) * step / 4)
    qtbot.mouseRelease(viewport, Qt.LeftButton, pos=b)


def cut_wires(window: MainWindow, edges: list) -> None:
    window.document.edit("cut", lambda g: [g.disconnect(e) for e in edges])


def entering(graph: Graph, module_id: str) -> list:
    inside = set(graph.module(module_id).members.values())
    return [e for e in graph.edges if e.dst in inside and e.src not in inside]


# -- wiring to and from a card -------------------------------------------------------------------


def test_a_wire_dropped_on_a_cards_input_feeds_every_entry_in_one_step(googlenet, qtbot):
    window = googlenet
    graph = window.document.graph
    module = module_named(window, "inception (4a)")
    pool = block_named(window, "pool3/3x3_s2")
    entries = sorted((e.dst, e.port) for e in entering(graph, module.id))
    cut_wires(window, entering(graph, module.id))
    assert entering(graph, module.id) == []
    before = window.document.undo_stack.count()
    target = card(window, "inception (4a)")
    # released on the card's input port (a little off it, as a hand does)
    wire_drag(qtbot, window, window.canvas.item_for(pool).output_anchor(),
              target.input_anchor() + QPointF(4, -3))
    assert sorted((e.dst, e.port) for e in entering(graph, module.id)) == entries
    assert {e.src for e in entering(graph, module.id)} == {pool}
    assert window.document.undo_stack.count() == before + 1
    assert "Connected pool3/3x3_s2 → module inception (4a)" in window.statusBar().currentMessage()
    for edge in entering(graph, module.id):  # drawn to the card's port
        assert window.canvas.canvas.wire_for(edge).shape().contains(
            target.input_anchor() + QPointF(0, -1))
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert entering(graph, module.id) == []


def test_a_wire_from_a_cards_output_leaves_from_the_modules_output_block(googlenet, qtbot):
    window = googlenet
    graph = window.document.graph
    module = module_named(window, "inception (5b)")
    exit_id = modules.output_block(graph, module.id)
    pool = block_named(window, "pool5/global_avg")
    cut_wires(window, [e for e in graph.edges if e.dst == pool])
    source = card(window, "inception (5b)")
    wire_drag(qtbot, window, source.output_anchor() + QPointF(0, 2),
              window.canvas.item_for(pool).input_anchor())
    assert graph.inputs_of(pool) == [exit_id]
    assert window.document.analysis.blocks[pool].output_shape is not None
    # and from one card to the next: the first card's output feeds the second's entries
    second = module_named(window, "inception (3b)")
    cut_wires(window, entering(graph, second.id))
    wire_drag(qtbot, window, card(window, "inception (3a)").output_anchor(),
              card(window, "inception (3b)").input_anchor())
    assert {e.src for e in entering(graph, second.id)} == {
        modules.output_block(graph, module_named(window, "inception (3a)").id)}
    assert len(entering(graph, second.id)) == 4


def test_refused_wires_to_a_card_say_why_at_the_pointer(googlenet, qtbot):
    window = googlenet
    graph = window.document.graph
    messages: list[str] = []
    window.canvas.status_message.connect(messages.append)
    before = snapshot(window)
    # 3b already takes its input from 3a
    wire_drag(qtbot, window, window.canvas.item_for(block_named(window, "pool2/3x3_s2"))
              .output_anchor(), card(window, "inception (3b)").input_anchor())
    assert snapshot(window) == before
    assert "already has its input, from" in messages[-1] and "remove that wire" in messages[-1]
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)  # and at the pointer, whole
    assert "already has its input, from" in QToolTip.text()
    QToolTip.hideText()
    # a block after the module cannot feed it: a cycle
    module = module_named(window, "inception (4e)")
    cut_wires(window, entering(graph, module.id))
    later = block_named(window, "pool4/3x3_s2")
    wire_drag(qtbot, window, window.canvas.item_for(later).output_anchor(),
              card(window, "inception (4e)").input_anchor())
    assert entering(graph, module.id) == []
    assert "would make a cycle" in messages[-1] and "inception (4e)" in messages[-1]
    assert messages[-1] == f"Cannot connect: {modules.input_problem(graph, module.id, later)}"


# -- layout with collapsed modules ---------------------------------------------------------------


def shown_rects(window: MainWindow) -> dict[str, QRectF]:
    """What the canvas shows: each visible block's body, each card and each expanded frame."""
    scene = window.canvas.canvas
    rects = {i.block_id: i.mapRectToScene(i.body_rect()) for i in scene.block_items()
             if i.isVisible()}
    for item in scene.module_items():
        rects[item.module_id] = item.mapRectToScene(
            item.body_rect() if item.is_collapsed() else item.outline_rect())
    return rects


def overlaps(window: MainWindow) -> list[tuple[str, str]]:
    rects = shown_rects(window)
    scene = window.canvas.canvas
    framed = {b: m.module_id for m in scene.module_items() if not m.is_collapsed()
              for b in m.members}
    return [(a, b) for (a, ra), (b, rb) in itertools.combinations(rects.items(), 2)
            if ra.intersects(rb) and framed.get(a) != b and framed.get(b) != a]


def offsets(graph: Graph, module_id: str) -> set[tuple[float, float]]:
    """The module's blocks relative to its first one."""
    blocks = [graph.block(b) for b in graph.module(module_id).members.values()]
    return {(b.x - blocks[0].x, b.y - blocks[0].y) for b in blocks}


def test_expanding_a_card_in_a_compact_network_makes_room_in_the_same_step(googlenet, qtbot):
    window = googlenet
    graph = window.document.graph
    module = module_named(window, "inception (4b)")
    inside = offsets(graph, module.id)
    next_card = card(window, "inception (4c)")
    below = next_card.pos().y()
    item = card(window, "inception (4b)")
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_0, CTRL)
    window.canvas.centerOn(item.mapRectToScene(item.outline_rect()).center())
    before = snapshot(window)
    count = window.document.undo_stack.count()
    qtbot.mouseDClick(window.canvas.viewport(), Qt.LeftButton, pos=centre_of(window, item))
    assert not graph.module(module.id).collapsed
    assert window.document.undo_stack.count() == count + 1
    assert overlaps(window) == []  # the frame covers nothing: the cards below moved down
    assert next_card.pos().y() > below
    assert offsets(graph, module.id) == inside  # its blocks as they were, in order
    frame = item.mapRectToScene(item.outline_rect())
    assert next_card.mapRectToScene(next_card.body_rect()).top() > frame.bottom()
    assert "moved to make room" in window.statusBar().currentMessage()
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert snapshot(window) == before


def test_auto_layout_lays_each_collapsed_module_out_as_its_card(googlenet, qtbot):
    window = googlenet
    graph = window.document.graph
    document = window.document
    owner = {b: n for n, m in enumerate(graph.modules) for b in m.members.values()}

    def scatter(g: Graph) -> None:  # blocks dragged about, cards as a whole (a person's mess)
        for i, b in enumerate(g.blocks):
            n = owner.get(b.id)
            shift = (37 * i % 300, -50 * i) if n is None else (90 * n % 400, -70 * n)
            g.move(b.id, (b.x if n is not None else 0) + shift[0],
                   (b.y if n is not None else 0) + shift[1])

    document.edit("scatter", scatter)
    kept = {m.id: offsets(graph, m.id) for m in graph.modules}
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_L, CTRL | SHIFT)
    assert document.undo_stack.undoText() == "Automatic layout"
    assert overlaps(window) == []
    for module in graph.modules:  # one card each, a row under what feeds it
        assert offsets(graph, module.id) == kept[module.id]
        (source,) = {e.src for e in entering(graph, module.id)}
        owner = window.canvas.canvas.hiding_module(source) or window.canvas.item_for(source)
        assert card(window, module.name).pos().y() - owner.pos().y() == STEP_Y
    rects = shown_rects(window)
    tall = max(r.bottom() for r in rects.values()) - min(r.top() for r in rects.values())
    assert tall < STEP_Y * (len(rects) - 3)  # compact: about one row per thing shown
    # with one module expanded, the layout makes room for its frame
    module = module_named(window, "inception (4d)")
    document.edit("expand", lambda g: modules.set_module_collapsed(g, module.id, False))
    qtbot.keyClick(window.canvas, Qt.Key.Key_L, CTRL | SHIFT)
    assert overlaps(window) == [] and offsets(graph, module.id) == kept[module.id]


# -- copy and paste ------------------------------------------------------------------------------


def test_copy_and_paste_of_a_card_adds_an_instance_of_its_module(googlenet, qtbot):
    window = googlenet
    view, graph = window.canvas, window.document.graph
    module = module_named(window, "inception (4e)")
    item = card(window, "inception (4e)")
    qtbot.keyClick(view.viewport(), Qt.Key.Key_0, CTRL)
    view.centerOn(item.mapRectToScene(item.outline_rect()).center())
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=centre_of(window, item))
    qtbot.keyClick(view.viewport(), Qt.Key.Key_C, CTRL)
    count = window.document.undo_stack.count()
    blocks = len(graph)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_V, CTRL)
    assert window.document.undo_stack.count() == count + 1
    (pasted,) = [m for m in graph.modules if m.name == "inception (4e) 2"]
    assert pasted.definition == module.definition and pasted.collapsed
    assert set(pasted.members) == set(module.members) and len(graph) == blocks + 8
    assert view.canvas.selected_modules() == [pasted.id]  # its card, selected
    for role, block_id in pasted.members.items():  # where the copied ones stood, moved
        old, new = graph.block(module.members[role]), graph.block(block_id)
        assert (new.x - old.x, new.y - old.y) == (clipboard.PASTE_OFFSET,) * 2
        assert new.params == old.params
    inside, copied = set(pasted.members.values()), set(module.members.values())
    assert len([e for e in graph.edges if e.src in inside and e.dst in inside]) == \
        len([e for e in graph.edges if e.src in copied and e.dst in copied]) == 7
    new_card = view.canvas.module_item(pasted.id)
    assert isinstance(new_card, ModuleItem) and new_card.isVisible()
    assert not any(isinstance(i, BlockItem) and i.isVisible() and i.block_id in inside
                   for i in view.canvas.items())
    # Ctrl+D on the card: another instance
    qtbot.keyClick(view.viewport(), Qt.Key.Key_D, CTRL)
    assert [m.definition for m in graph.modules].count(module.definition) == 3
    # a project without that definition gets the blocks, loose
    other = build_template("course-example")
    data = clipboard.serialise(graph, list(module.members.values()))
    ids = clipboard.paste(other, data)
    assert len(ids) == 8 and other.modules == [] and graph.modules


def test_cards_output_port_starts_a_wire_not_a_move(googlenet, qtbot):
    window = googlenet
    graph = window.document.graph
    item = card(window, "inception (3a)")
    before = {b: (graph.block(b).x, graph.block(b).y) for b in item.members}
    wire_drag(qtbot, window, item.output_anchor(), item.output_anchor() + QPointF(260, 90))
    assert {b: (graph.block(b).x, graph.block(b).y) for b in item.members} == before
    rubber = [i for i in window.canvas.scene().items() if type(i).__name__ == "QGraphicsPathItem"]
    assert rubber == []
    assert item.port_at(item.output_anchor()) == "out"
    assert item.port_at(item.input_anchor() + QPointF(3, 3)) == "in"
    assert item.port_at(item.pos() + QPointF(0, 30)) is None
