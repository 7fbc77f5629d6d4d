"""The side panels, driven with real mouse and key events (pytest-qt, off-screen)."""

from __future__ import annotations

import json
import re

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

from cnnstudio.core import registry
from cnnstudio.core.blocks.base import CATEGORIES
from cnnstudio.core.project import Project
from cnnstudio.core.summary import COLUMNS, format_bytes, memory_parts, render_table
from cnnstudio.core.templates import new_project
from cnnstudio.ui import icons
from cnnstudio.ui.document import Document
from cnnstudio.ui.panels import (
    BLOCK_MIME,
    InspectorPanel,
    PalettePanel,
    ProblemsPanel,
    SummaryPanel,
)
from cnnstudio.ui.panels.inspector import NO_SELECTION
from cnnstudio.ui.panels.summary import BLOCK_ID_ROLE, TOTAL_LABEL, summary_rows
from tests.residual import resnet_graph


@pytest.fixture
def doc(qapp) -> Document:
    return Document(new_project("course-example"))


def shown(qtbot, widget, width: int = 360, height: int = 700):
    qtbot.addWidget(widget)
    widget.resize(width, height)
    with qtbot.waitExposed(widget):
        widget.show()
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow, timeout=2000)
    return widget


def select_all_and_type(qtbot, widget, text: str) -> None:
    """Click into a field, select its text with Ctrl+A and type over it, key by key."""
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    qtbot.mouseClick(line, Qt.LeftButton)
    qtbot.keyClick(line, Qt.Key_A, Qt.ControlModifier)
    qtbot.keyClicks(line, text)


def click_row(qtbot, view, index) -> None:
    rect = view.visualRect(index)
    assert rect.isValid()
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=rect.center())


# -- palette ---------------------------------------------------------------------------------


def test_palette_lists_every_block_type_grouped_in_category_order(qtbot):
    palette = shown(qtbot, PalettePanel())
    groups = registry.by_category()
    assert palette.categories() == [c for c in CATEGORIES if groups[c]]
    listed = {entry.type_id for entry in palette.entries()}
    assert listed == {t.type_id for t in registry.all_types()}
    for i in range(palette.tree.topLevelItemCount()):
        header = palette.tree.topLevelItem(i)
        assert not header.flags() & Qt.ItemIsDragEnabled
        for j in range(header.childCount()):
            item = header.child(j)
            entry = item.data(0, Qt.UserRole + 1)
            assert entry.block_type.category == header.text(0)
            assert entry.block_type.help in item.toolTip(0)
            assert not item.icon(0).isNull()
    titles = [e.title for e in palette.entries()]
    for preset in ("Max pooling", "Average pooling", "Global average pooling", "ReLU", "Softmax"):
        assert preset in titles


def test_search_filters_case_insensitively_and_enter_adds_the_first_match(qtbot):
    palette = shown(qtbot, PalettePanel())
    assert palette.search.placeholderText() == "Search blocks"
    palette.focus_search()
    qtbot.keyClicks(palette.search, "pool")
    visible = palette.entries(visible_only=True)
    assert visible and {e.type_id for e in visible} == {"Pooling"}
    assert [h.text(0) for h in palette._categories if not h.isHidden()] == ["Pooling"]
    with qtbot.waitSignal(palette.block_requested) as request:
        qtbot.keyClick(palette.search, Qt.Key_Return)
    assert request.args == ["Pooling", {"mode": "max"}]

    select_all_and_type(qtbot, palette.search, "zzz")
    assert palette.entries(visible_only=True) == []
    assert palette.empty_label.isVisible()

    select_all_and_type(qtbot, palette.search, "SLIDES EACH")  # Conv2D's help text
    assert {e.type_id for e in palette.entries(visible_only=True)} == {"Conv2D"}
    qtbot.keyClick(palette.search, Qt.Key_Escape)
    assert len(palette.entries(visible_only=True)) == len(palette.entries())


def test_drag_payload_is_the_block_json(qtbot):
    palette = shown(qtbot, PalettePanel())
    assert BLOCK_MIME == "application/x-cnnstudio-block"
    item = palette.item_for("Global average pooling")
    mime = palette.tree.mimeData([item])
    assert mime.hasFormat(BLOCK_MIME) and BLOCK_MIME in palette.tree.mimeTypes()
    payload = json.loads(bytes(mime.data(BLOCK_MIME)).decode("utf-8"))
    assert payload == {"type": "Pooling", "params": {"mode": "global_average"}}
    plain = json.loads(bytes(palette.mime_data(palette.item_for("Flatten")).data(BLOCK_MIME)))
    assert plain == {"type": "Flatten", "params": {}}


def test_double_click_requests_the_preset(qtbot):
    palette = shown(qtbot, PalettePanel())
    item = palette.item_for("Softmax")
    palette.tree.scrollToItem(item)
    rect = palette.tree.visualItemRect(item)
    qtbot.mouseClick(palette.tree.viewport(), Qt.LeftButton, pos=rect.center())
    assert palette.tree.currentItem() is item
    with qtbot.waitSignal(palette.block_requested) as request:
        qtbot.mouseDClick(palette.tree.viewport(), Qt.LeftButton, pos=rect.center())
    assert request.args == ["Activation", {"function": "softmax"}]


def test_icons_are_drawn_for_every_type_and_category(qapp):
    for block_type in registry.all_types():
        assert not icons.block_icon(block_type).pixmap(16, 16).isNull()
    for category in CATEGORIES:
        assert not icons.category_icon(category).isNull()
    assert icons.app_icon().availableSizes()


# -- inspector -------------------------------------------------------------------------------


def test_conv2d_form_is_generated_from_the_declaration(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    assert inspector.message.text() == NO_SELECTION
    inspector.show_blocks(["conv2"])
    filters = inspector.fields["filters"].spin
    assert isinstance(filters, QSpinBox)
    assert (filters.minimum(), filters.maximum(), filters.value()) == (1, 65536, 32)
    assert filters.toolTip() == registry.get("Conv2D").param("filters").help
    assert inspector.fields["kernel"].line.text() == "5×5"
    assert inspector.name_field.line.text() == "CONV2"
    assert set(inspector.fields) == {p.name for p in registry.get("Conv2D").params}
    assert inspector._facts["Output shape"].text().startswith("(14,14,32)")
    assert inspector._facts["Parameters"].text() == "12,832"


def test_typing_a_kernel_applies_live_and_undoes_in_one_step(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["conv2"])
    kernel = inspector.fields["kernel"]
    select_all_and_type(qtbot, kernel.line, "5x1")
    assert doc.graph.block("conv2").params["kernel"] == [5, 1]
    assert kernel.line.text() == "5x1"  # the user's own spelling is not rewritten while typing
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.graph.block("conv2").params["kernel"] == [5, 5]
    assert kernel.line.text() == "5×5"


def test_an_invalid_kernel_shows_the_error_and_changes_nothing(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["conv2"])
    kernel = inspector.fields["kernel"]
    select_all_and_type(qtbot, kernel.line, "0x3")
    assert "expected two positive integers" in kernel.error_text.lower()
    assert kernel.error_label.isVisible()
    assert doc.graph.block("conv2").params["kernel"] == [5, 5]
    assert doc.undo_stack.count() == 0
    select_all_and_type(qtbot, kernel.line, "3, 3")
    assert kernel.error_text == "" and doc.graph.block("conv2").params["kernel"] == [3, 3]


def test_padding_combo_updates_the_analysis_and_follows_outside_edits(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["conv2"])
    output = inspector._facts["Output shape"]
    doc.edit("valid", lambda g: g.set_params("conv2", {"padding": "valid"}))
    padding = inspector.fields["padding"]
    assert padding.combo.currentData() == "valid" and output.text().startswith("(10,10,32)")
    padding.combo.setFocus()
    qtbot.keyClick(padding.combo, Qt.Key_Down)
    assert doc.graph.block("conv2").params["padding"] == "same"
    assert output.text().startswith("(14,14,32)")
    qtbot.keyClick(padding.combo, Qt.Key_Down)
    qtbot.keyClick(padding.combo, Qt.Key_Down)  # full, then explicit
    assert doc.graph.block("conv2").params["padding"] == [1, 1]
    assert padding.explicit.line.isEnabled()
    select_all_and_type(qtbot, padding.explicit.line, "2,0")
    assert doc.graph.block("conv2").params["padding"] == [2, 0]
    assert output.text().startswith("(14,10,32)")


def test_depthwise_greys_out_filters_and_groups_with_the_reason(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["conv2"])
    filters, groups = inspector.fields["filters"], inspector.fields["groups"]
    assert filters.widget.isEnabled() and groups.widget.isEnabled()
    check = inspector.fields["depthwise"].check
    qtbot.mouseClick(check, Qt.LeftButton, pos=QPoint(check.width() // 4, check.height() // 2))
    assert doc.graph.block("conv2").params["depthwise"] is True
    assert not filters.widget.isEnabled() and not groups.widget.isEnabled()
    assert "follows the input channels" in filters.spin.toolTip()
    assert inspector._facts["Output shape"].text().startswith("(14,14,16)")  # C_in = 16
    assert inspector.fields["kernel"].widget.isEnabled()
    doc.undo_stack.undo()
    assert filters.widget.isEnabled()
    assert filters.spin.toolTip() == registry.get("Conv2D").param("filters").help


def test_pooling_greys_out_what_its_mode_does_not_use(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["pool1"])  # max pooling
    enabled = {name: f.widget.isEnabled() for name, f in inspector.fields.items()}
    assert enabled == {"mode": True, "pool_size": True, "stride": True, "padding": True,
                       "ceil_mode": True, "count_padding": False, "output_size": False}
    doc.edit("adaptive", lambda g: g.set_params("pool1", {"mode": "adaptive_average"}))
    assert inspector.fields["output_size"].widget.isEnabled()
    assert not inspector.fields["pool_size"].widget.isEnabled()
    assert "output size sets the windows" in inspector.fields["pool_size"].line.toolTip()


def test_multi_selection_edits_every_block_in_one_undo_step(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["conv1", "conv2"])
    filters = inspector.fields["filters"].spin
    assert filters.text() == "—"  # 16 and 32 disagree
    assert inspector.fields["kernel"].line.text() == "5×5"  # both 5×5
    select_all_and_type(qtbot, filters, "64")
    assert [doc.graph.block(b).params["filters"] for b in ("conv1", "conv2")] == [64, 64]
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert [doc.graph.block(b).params["filters"] for b in ("conv1", "conv2")] == [16, 32]
    assert filters.text() == "—"
    inspector.show_blocks(["conv1", "pool1"])
    assert inspector.message.text().startswith("2 blocks selected (mixed types)")


def test_inspector_follows_undo_rename_and_removal_done_elsewhere(qtbot, doc):
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks(["conv1"])
    kernel = inspector.fields["kernel"]
    select_all_and_type(qtbot, kernel.line, "5x5")  # same value: nothing to apply
    kernel.line.setCursorPosition(1)
    doc.edit("filters", lambda g: g.set_params("conv1", {"filters": 8}))
    assert inspector.fields["filters"].spin.value() == 8
    assert kernel.line.text() == "5x5" and kernel.line.cursorPosition() == 1
    doc.undo_stack.undo()
    assert inspector.fields["filters"].spin.value() == 16
    doc.edit("rename", lambda g: g.rename("conv1", "first"))
    assert inspector.name_field.line.text() == "first"
    doc.edit("remove", lambda g: g.remove_block("conv1"))
    assert inspector.block_ids == [] and inspector.message.text() == NO_SELECTION


def test_rename_bool_and_tiny_float_fields(qtbot, doc):
    block = doc.edit("add", lambda g: g.add_block("BatchNorm"))
    inspector = shown(qtbot, InspectorPanel(doc))
    inspector.show_blocks([block.id])
    eps = inspector.fields["eps"].spin
    assert isinstance(eps, QDoubleSpinBox) and eps.text() == "1e-5"
    select_all_and_type(qtbot, eps, "2.5e-4")
    assert doc.graph.block(block.id).params["eps"] == pytest.approx(2.5e-4)
    check = inspector.fields["trainable"].check
    qtbot.mouseClick(check, Qt.LeftButton, pos=QPoint(check.width() // 4, check.height() // 2))
    assert doc.graph.block(block.id).params["trainable"] is False
    select_all_and_type(qtbot, inspector.name_field.line, "norm")
    assert doc.graph.block(block.id).name == "norm"
    qtbot.keyClick(inspector.name_field.line, Qt.Key_A, Qt.ControlModifier)
    qtbot.keyClick(inspector.name_field.line, Qt.Key_Delete)
    assert "1 to 64 characters" in inspector.name_field.error_text
    assert doc.graph.block(block.id).name == "norm"


# -- summary and problems --------------------------------------------------------------------


def test_summary_shows_the_course_numbers_and_clicking_a_row_emits_its_id(qtbot, doc):
    summary = shown(qtbot, SummaryPanel(doc), 760, 400)
    model = summary.model
    cells = {row.cells[1]: row.cells for row in model.rows}
    assert cells["CONV1 (Conv2D)"][4] == "416"
    assert cells["CONV2 (Conv2D)"][4] == "12,832"
    assert cells["FC3 (Dense)"][4] == "156,900"
    assert cells["FC4 (Dense)"][4] == "1,010"
    assert cells[TOTAL_LABEL][4] == "171,158"
    assert "171,158" in summary.footer.text()
    assert model.index(0, 4).data(Qt.TextAlignmentRole) & Qt.AlignRight
    row = model.row_of("conv2")
    with qtbot.waitSignal(summary.block_activated) as activated:
        click_row(qtbot, summary.view, model.index(row, 1))
    assert activated.args == ["conv2"]
    with qtbot.assertNotEmitted(summary.block_activated):
        click_row(qtbot, summary.view, model.index(len(model.rows) - 1, 1))
    doc.edit("units", lambda g: g.set_params("fc3", {"units": 50}))
    assert summary.model is model and model.rows[model.row_of("fc3")].cells[4] == "78,450"


@pytest.mark.parametrize("template_id", ["course-example", "googlenet"])
def test_the_summary_table_has_the_cells_of_cnnstudio_summary(qapp, template_id):
    """Each block row reads exactly as its line of the command line's text table."""
    doc = Document(new_project(template_id))
    text = render_table(doc.graph, doc.analysis).splitlines()
    header = next(i for i, line in enumerate(text) if line.split()[:1] == [COLUMNS[0]])
    rows = summary_rows(doc)[:-1]  # the totals row is the window's own
    lines = text[header + 2:header + 2 + len(rows)]
    assert [tuple(re.split(r"\s{2,}", line.strip())) for line in lines] == [r.cells for r in rows]


@pytest.fixture
def resnet_window(make_window):
    """The main window on a small ResNet (BatchNorm everywhere)."""
    graph = resnet_graph((3, 32, 32), classes=10, blocks=(1, 1), widths=(16, 32))
    return make_window(Document(Project.new(graph, name="resnet")), recover=False)


def test_summary_status_bar_and_inspector_show_the_same_totals(qtbot, resnet_window):
    """Total = trainable + non-trainable in the Summary dock, the status bar and the
    inspector, BatchNorm running statistics counted as non-trainable."""
    window = resnet_window
    doc, summary, inspector = window.document, window.summary, window.inspector
    analysis = doc.analysis
    total, trainable, frozen = (analysis.total_params, analysis.trainable_params,
                                analysis.non_trainable)
    norms = [b.id for b in doc.graph.blocks if b.type == "BatchNorm"]
    assert frozen == sum(2 * analysis.blocks[b].input_shapes[0][0] for b in norms) > 0
    assert total == trainable + frozen == analysis.learnable_params + frozen

    qtbot.waitUntil(lambda: f"{total:,}" in window.params_label.text())
    assert window.params_label.text() == f"Parameters {total:,} ({frozen:,} non-trainable)"
    assert window.params_label.toolTip().startswith(
        f"{total:,} = {trainable:,} trainable + {frozen:,} non-trainable")
    rows = summary.model.rows
    assert rows[-1].cells[1] == TOTAL_LABEL and rows[-1].cells[4] == f"{total:,}"
    assert sum(int(row.cells[4].replace(",", "")) for row in rows[:-1]) == total
    assert (f"Total parameters: {total:,}   ·   trainable: {trainable:,}   ·   "
            f"non-trainable: {frozen:,}") in summary.footer.text()

    norm = analysis.blocks[norms[0]]
    window.canvas.select_blocks([norm.id])
    qtbot.waitUntil(lambda: inspector.block_ids == [norm.id])
    row = rows[summary.model.row_of(norm.id)]
    channels = norm.input_shapes[0][0]
    assert row.cells[4] == f"{4 * channels:,}"
    assert inspector._facts["Parameters"].text() == (
        f"{4 * channels:,}  ({2 * channels:,} trainable, {2 * channels:,} non-trainable: "
        f"{2 * channels:,} running mean and variance)")
    window.canvas.select_blocks(norms)
    qtbot.waitUntil(lambda: inspector.block_ids == norms)
    assert inspector._facts["Parameters"].text() == (
        f"{sum(analysis.blocks[b].total_params for b in norms):,} in total")


def test_training_memory_is_explained_part_by_part_and_follows_the_batch_size(
        qtbot, resnet_window):
    window = resnet_window
    doc, summary = window.document, window.summary
    doc.update_settings("training", {"batch_size": 8, "optimizer": "sgd"})
    memory = doc.analysis.memory(8, "sgd")
    qtbot.waitUntil(lambda: "(batch 8)" in window.memory_label.text())
    assert window.memory_label.text() == f"Training memory {format_bytes(memory.total)} (batch 8)"
    assert summary.memory_label.text().startswith(
        f"Training memory: {format_bytes(memory.total)} at batch 8 with sgd (weights ")
    for tip in (window.memory_label.toolTip(), summary.memory_label.toolTip()):
        for name, size in memory_parts(memory):
            assert f"  {name} {format_bytes(size)}: " in tip
        assert "tensors autograd keeps for the backward pass" in tip
    assert window.memory_label.toolTip() == summary.memory_label.toolTip()


def test_problems_list_the_diagnostic_with_its_fix_and_clicking_emits_the_block(qtbot, doc):
    problems = shown(qtbot, ProblemsPanel(doc), 420, 300)
    assert problems.count() == 0
    counts = []
    problems.count_changed.connect(lambda e, w: counts.append((e, w)))
    doc.edit("remove flatten", lambda g: g.remove_block("flatten"))
    doc.edit("wire", lambda g: g.connect("pool2", "fc3"))
    analysis = doc.analysis
    assert counts[-1] == (len(analysis.errors), len(analysis.warnings))
    assert problems.count() == len(analysis.diagnostics) >= 1
    model = problems.model
    rows = [model.index(i) for i in range(model.rowCount())]
    dense = next(i for i in rows if "Dense needs a flat input" in i.data(Qt.DisplayRole))
    assert "Fix: insert Flatten before it" in dense.data(Qt.ToolTipRole)
    assert dense.data(BLOCK_ID_ROLE) == "fc3"
    with qtbot.waitSignal(problems.block_activated) as activated:
        click_row(qtbot, problems.view, dense)
    assert activated.args == ["fc3"]
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert problems.count() == 0 and counts[-1] == (0, 0)


def test_a_graph_level_problem_has_no_block_to_go_to(qtbot, doc):
    problems = shown(qtbot, ProblemsPanel(doc), 420, 300)
    doc.edit("remove output", lambda g: g.remove_block("output"))
    model = problems.model
    rows = [model.index(i) for i in range(model.rowCount())]
    missing = next(i for i in rows if "no Output block" in i.data(Qt.DisplayRole))
    assert missing.data(BLOCK_ID_ROLE) is None
    assert problems.counts[0] >= 1
    with qtbot.assertNotEmitted(problems.block_activated):
        click_row(qtbot, problems.view, missing)
