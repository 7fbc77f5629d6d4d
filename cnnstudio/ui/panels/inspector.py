"""The inspector: a form generated from the block declaration, applied live as undoable edits.

Every row comes from a ParamSpec (param_fields.make_field); nothing here knows a block type by
name. A user edit becomes one `document.edit(...)` per value with merge key "block.param", so
typing 1, 12, 128 in a spin box is one undo step. The form follows the document: values on
graph events for the shown blocks (undo, redo, canvas edits), the read-only facts and the
diagnostics on analysis_changed. The field being edited is never written back while its own
edit runs, so nothing echoes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import modules, registry
from cnnstudio.core.analysis import BlockInfo
from cnnstudio.core.blocks.base import BlockType, format_shape
from cnnstudio.core.graph import Block, EventKind, Graph, GraphError, GraphEvent
from cnnstudio.core.params import ParamError
from cnnstudio.core.summary import PARAMETERS_TIP
from cnnstudio.ui import icons, theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.fixes import ProblemList, apply_repair
from cnnstudio.ui.panels.param_fields import (
    MIXED,
    LineField,
    ParamField,
    make_field,
    show_unused,
)

NO_SELECTION = "Select a block on the canvas to see and edit its parameters."
NAME_RULE = "a block name needs 1 to 64 characters"
EVERY_INSTANCE, THIS_INSTANCE = 0, 1  # the scope box's rows: where a member's edit goes
MODULE_FACTS = ("Blocks", "Input shape", "Output shape", "Parameters", "MACs")


def _parse_name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > 64:
        raise ParamError(NAME_RULE)
    return name


def _selectable(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


class InspectorPanel(QWidget):
    """Parameters of the selected block(s), their numbers and their problems (each with a Fix
    button where the repair is one click)."""

    status_message = Signal(str)  # what a fix did, for the status bar

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._ids: list[str] = []
        self._type: BlockType | None = None
        self.fields: dict[str, ParamField] = {}
        self.name_field: LineField | None = None
        self._applying: ParamField | None = None
        self._facts: dict[str, QLabel] = {}
        self.problem_list: ProblemList | None = None
        self.title_label: QLabel | None = None
        self.scope: QComboBox | None = None  # a block inside a module: every instance or this
        self.scope_label = QLabel()
        self._module: str | None = None  # the collapsed module shown (module_facts)
        self.expand_button: QPushButton | None = None

        self.message = QLabel(NO_SELECTION, self)
        self.message.setAlignment(Qt.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setMargin(16)
        self.message.setEnabled(False)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.scroll.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.scroll, 1)

        document.graph_event.connect(self._on_graph_event)
        document.analysis_changed.connect(self._refresh_info)
        document.project_replaced.connect(lambda: self.show_blocks([]))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange and self._type is not None:
            ids, self._ids = self._ids, []
            self.show_blocks(ids)  # light <-> dark: rebuild so that text colours follow

    # -- what is shown ---------------------------------------------------------------------

    @property
    def block_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def module_id(self) -> str | None:
        """The collapsed module shown (its totals), or None."""
        return self._module

    def show_blocks(self, ids: list[str]) -> None:
        """Show the form for these blocks: one, several of one type, or a mixed-types note;
        the blocks of a collapsed module (its card selected) show the module's totals."""
        graph = self.document.graph
        ids = [i for i in dict.fromkeys(ids) if i in graph]
        types = {graph.block(i).type for i in ids}
        card = _collapsed_module(graph, ids)
        if card is not None:
            if card != self._module or ids != self._ids:
                self._ids = ids
                self._clear_form()
                self._build_module_view(card)
            self._refresh_module()
            return
        if ids and ids == self._ids and self._type is not None:
            self._refresh_values()
            self._refresh_info()
            return
        self._ids = ids
        self._clear_form()
        if not ids:
            self._show_message(NO_SELECTION)
        elif len(types) > 1:
            counts = ", ".join(
                f"{sum(graph.block(i).type == t for i in ids)} × {registry.get(t).display_name}"
                for t in sorted(types))
            self._show_message(f"{len(ids)} blocks selected (mixed types)\n\n{counts}\n\n"
                               "Select blocks of one type to edit them together.")
        else:
            self._type = registry.get(types.pop())
            self._build_form()
            self._refresh_values()
            self._refresh_info()
            self.message.hide()
            self.scroll.show()

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.scroll.hide()
        self.message.show()

    def _clear_form(self) -> None:
        self._type = None
        self._module = None
        self.scope = None
        self.expand_button = None
        self.fields = {}
        self.name_field = None
        self._facts = {}
        self.problem_list = None
        self.title_label = None
        old = self.scroll.takeWidget()
        if old is not None:
            old.deleteLater()

    # -- building the form -----------------------------------------------------------------

    def _build_form(self) -> None:
        block_type = self._type
        assert block_type is not None
        content = QWidget()
        outer = QVBoxLayout(content)
        outer.setContentsMargins(10, 8, 10, 10)
        outer.setSpacing(8)
        outer.addLayout(self._header(block_type))

        self._add_scope(outer)
        form = self._new_form()
        self.name_field = LineField(_parse_name, str, "", incomplete=lambda _text: False)
        self.name_field.edited.connect(self._apply_name)
        if len(self._ids) > 1:
            self.name_field.line.setEnabled(False)
        self.name_field.line.setToolTip("The block's name in the summary, messages and code.")
        form.addRow("Name", self.name_field.widget)
        for spec in block_type.params:
            field = make_field(spec)
            field.edited.connect(lambda value, s=spec.name, f=field: self._apply_param(s, value, f))
            label = QLabel(spec.title)
            label.setToolTip(spec.help)
            label.setBuddy(field.focus_widget)
            form.addRow(label, field.widget)
            self.fields[spec.name] = field
        outer.addLayout(form)
        if not block_type.params:
            outer.addWidget(_selectable("This block has no parameters."))

        outer.addWidget(self._rule())
        facts = self._new_form()
        rows = ("Input shape", "Output shape", "Parameters", "MACs", "Receptive field")
        for row in rows:
            value = _selectable()
            self._facts[row] = value
            facts.addRow(row, value)
        self._facts["Output shape"].setToolTip("(height,width,channels); vectors are (values)")
        self._facts["MACs"].setToolTip("Multiply-accumulates for one image")
        self._facts["Parameters"].setToolTip(PARAMETERS_TIP)
        outer.addLayout(facts)
        self._finish_form(outer, content)

    def _finish_form(self, outer: QVBoxLayout, content: QWidget) -> None:
        """The problems of what the form shows (a Fix each), then the form into the scroll."""
        self.problem_list = ProblemList()
        self.problem_list.fix_chosen.connect(
            lambda diagnostic: self.status_message.emit(apply_repair(self.document, diagnostic)))
        outer.addWidget(self.problem_list)
        outer.addStretch(1)
        self.scroll.setWidget(content)

    def _add_scope(self, outer: QVBoxLayout) -> None:
        """For blocks inside a module: whether an edit changes every instance of its
        definition or this instance only (which then gets a definition of its own)."""
        if not any(map(self.document.graph.module_of, self._ids)):
            return
        self.scope_label = QLabel()
        self.scope_label.setStyleSheet(f"color: {theme.current().subtext.name()};")
        self.scope = QComboBox()
        self.scope.addItems(["", "This instance only"])
        self.scope.setToolTip("Like a symbol in a drawing program: change the module's "
                              "definition, which every instance shares, or make this instance "
                              "unique and change it alone.")
        self.scope.setCurrentIndex(EVERY_INSTANCE)
        outer.addWidget(self.scope_label)
        outer.addWidget(self.scope)
        self._refresh_scope()

    def _refresh_scope(self) -> None:
        """The scope box's texts: the module and definition as they are now (an edit of this
        instance only gives it a definition of its own)."""
        graph = self.document.graph
        owners = [m for m in map(graph.module_of, self._ids) if m is not None]
        if self.scope is None or not owners:
            return
        definitions = {m.definition for m in owners}
        name = graph.definition(owners[0].definition).name if len(definitions) == 1 else ""
        count = sum(len(graph.instances_of(d)) for d in definitions)
        every = f"Apply to every instance of '{name}'" if name else \
            "Apply to every instance of their modules"
        self.scope.setItemText(EVERY_INSTANCE, f"{every} ({count})")
        places = {m.id for m in owners}
        self.scope_label.setText(f"In module '{owners[0].name}'" if len(places) == 1
                                 else f"In {len(places)} modules")

    def _build_module_view(self, module_id: str) -> None:
        """A collapsed module: its name (editable), definition, totals and problems."""
        graph = self.document.graph
        self._module = module_id
        content = QWidget()
        outer = QVBoxLayout(content)
        outer.setContentsMargins(10, 8, 10, 10)
        outer.setSpacing(8)
        self.title_label = self._title()
        outer.addWidget(self.title_label)
        self._facts = {"Definition": _selectable()}
        self._facts["Definition"].setStyleSheet(f"color: {theme.current().subtext.name()};")
        outer.addWidget(self._facts["Definition"])
        form = self._new_form()
        self.name_field = LineField(_parse_name, str, "", incomplete=lambda _text: False)
        self.name_field.edited.connect(self._rename_module)
        self.name_field.line.setToolTip("The module's name on the canvas")
        form.addRow("Name", self.name_field.widget)
        outer.addLayout(form)
        outer.addWidget(self._rule())
        facts = self._new_form()
        for row in MODULE_FACTS:
            self._facts[row] = _selectable()
            facts.addRow(row, self._facts[row])
        self._facts["Parameters"].setToolTip(PARAMETERS_TIP)
        outer.addLayout(facts)
        self.expand_button = QPushButton("Expand module")
        self.expand_button.setToolTip("Show its blocks in place to edit them (or double-click "
                                      "the module)")
        self.expand_button.clicked.connect(lambda: self.document.edit(
            f"Expand module {graph.module(module_id).name}",
            lambda g: modules.set_module_collapsed(g, module_id, False)))
        outer.addWidget(self.expand_button, 0, Qt.AlignLeft)
        self._finish_form(outer, content)
        self.message.hide()
        self.scroll.show()

    def _refresh_module(self) -> None:
        graph = self.document.graph
        if self._module is None or not self._facts:
            return
        try:
            module = graph.module(self._module)
        except GraphError:
            return
        summary = modules.module_summary(graph, self.document.analysis, self._module)
        shared = len(graph.instances_of(module.definition))
        if self.title_label is not None:
            self.title_label.setText(f"{module.name}  ·  module")
        self._facts["Definition"].setText(
            f"Definition '{summary.definition_name}', " + (
                f"shared by {shared} instances" if shared > 1 else "used by this module only"))
        if self.name_field is not None and self.name_field is not self._applying:
            self.name_field.set_value(module.name)
        texts = {
            "Blocks": str(summary.blocks),
            "Input shape": format_shape(summary.input_shape),
            "Output shape": format_shape(summary.output_shape),
            "Parameters": f"{summary.total_params:,}" + (
                f"  ({summary.trainable:,} trainable)" if summary.non_trainable else ""),
            "MACs": f"{summary.macs:,}",
        }
        for row, text in texts.items():
            self._facts[row].setText(text)
        if self.problem_list is not None:
            self.problem_list.set_diagnostics(list(summary.diagnostics), graph)
            self.problem_list.setVisible(bool(summary.diagnostics))

    def _rename_module(self, name: str) -> None:
        module_id, field = self._module, self.name_field
        if module_id is None or field is None:
            return
        if self.document.graph.module(module_id).name == name:
            return
        self._run(field, f"Rename module to {name}",
                  lambda g: modules.rename_module(g, module_id, name), f"{module_id}.name")

    def _title(self) -> QLabel:
        """The bold, selectable title of a block's or a module's view."""
        label = QLabel()
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        label.setFont(font)
        label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        return label

    def _header(self, block_type: BlockType) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)
        icon = QLabel()
        icon.setPixmap(icons.block_icon(block_type).pixmap(32, 32))
        icon.setAlignment(Qt.AlignTop)
        row.addWidget(icon)
        text = QVBoxLayout()
        text.setSpacing(2)
        self.title_label = self._title()
        text.addWidget(self.title_label)
        help_label = _selectable(block_type.help)
        help_label.setStyleSheet(f"color: {theme.current().subtext.name()};")
        help_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        text.addWidget(help_label)
        row.addLayout(text, 1)
        return row

    @staticmethod
    def _new_form() -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.setLabelAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        return form

    @staticmethod
    def _rule() -> QFrame:
        rule = QFrame()
        rule.setFrameShape(QFrame.HLine)
        rule.setFrameShadow(QFrame.Sunken)
        return rule

    # -- showing values --------------------------------------------------------------------

    def _blocks(self) -> list[Block]:
        graph = self.document.graph
        return [graph.block(i) for i in self._ids if i in graph]

    def _refresh_values(self) -> None:
        blocks = self._blocks()
        if not blocks or self._type is None:
            return
        for name, field in self.fields.items():
            if field is self._applying:
                continue
            values = [b.params.get(name) for b in blocks]
            field.set_value(values[0] if all(v == values[0] for v in values) else MIXED)
        self._grey_unused(blocks)
        if self.name_field is not None and self.name_field is not self._applying:
            self.name_field.set_value(", ".join(b.name for b in blocks))
        if self.title_label is not None:
            name = self._type.display_name
            self.title_label.setText(f"{blocks[0].name}  ·  {name}" if len(blocks) == 1
                                     else f"{len(blocks)} × {name}")

    def _grey_unused(self, blocks: list[Block]) -> None:
        """Grey out the fields that the other values leave unused in every shown block (the
        declaration's `unused`), with the reason as the tooltip."""
        assert self._type is not None
        unused = [self._type.unused(self._type.normalize(b.params)[0]) for b in blocks]
        for name, field in self.fields.items():
            reason = unused[0].get(name, "") if all(name in u for u in unused) else ""
            show_unused(field, self._type.param(name), reason)

    def _refresh_info(self) -> None:
        if self._module is not None:
            self._refresh_module()
            return
        if not self._facts or not self._ids:
            return
        analysis = self.document.analysis
        infos = [analysis.blocks[i] for i in self._ids if i in analysis.blocks]
        if not infos:
            return
        facts = _facts(infos)
        for row, label in self._facts.items():
            label.setText(facts[row])
        diagnostics = [d for d in analysis.diagnostics if d.block_id in set(self._ids)]
        if self.problem_list is not None:
            self.problem_list.set_diagnostics(diagnostics, self.document.graph)
            self.problem_list.setVisible(bool(diagnostics))

    def _on_graph_event(self, event: GraphEvent) -> None:
        grouped = event.kind in (EventKind.MODULE_ADDED, EventKind.MODULE_REMOVED) and \
            event.module is not None and bool(set(event.module.members.values()) & set(self._ids))
        if self._ids and (grouped or event.kind is EventKind.MODULE_CHANGED and (
                event.module_id == self._module or "collapsed" in event.changes)):
            ids, self._ids = self._ids, []
            self.show_blocks(ids)  # collapsed, expanded, renamed or dissolved: another view
            return
        if event.kind in (EventKind.MODULE_CHANGED, EventKind.DEFINITION_CHANGED,
                          EventKind.MODULE_ADDED, EventKind.MODULE_REMOVED):
            self._refresh_scope()
            return
        if not self._ids or event.block_id not in self._ids:
            return
        if event.kind is EventKind.BLOCK_REMOVED:
            self.show_blocks([i for i in self._ids if i != event.block_id])
        elif event.kind in (EventKind.PARAMS_CHANGED, EventKind.BLOCK_RENAMED):
            self._refresh_values()

    # -- applying edits --------------------------------------------------------------------

    def _apply_param(self, name: str, value: Any, field: ParamField) -> None:
        blocks = self._blocks()
        if not blocks or all(b.params.get(name) == value for b in blocks):
            return
        ids = [b.id for b in blocks]
        assert self._type is not None
        title = self._type.param(name).title.lower()
        what = f"'{blocks[0].name}'" if len(blocks) == 1 else f"{len(blocks)} blocks"
        key = f"{'+'.join(ids)}.{name}"
        shared = self.scope is None or self.scope.currentIndex() == EVERY_INSTANCE
        if self.scope is not None:
            key += ".every" if shared else ".this"
            what += "" if shared else " (this instance only)"

        def action(graph: Graph) -> None:
            for block_id in ids:
                modules.set_member_params(graph, block_id, {name: value}, shared=shared)

        self._run(field, f"Set {title} of {what}", action, key)

    def _apply_name(self, name: str) -> None:
        blocks = self._blocks()
        if len(blocks) != 1 or blocks[0].name == name or self.name_field is None:
            return
        block_id = blocks[0].id
        self._run(self.name_field, f"Rename '{blocks[0].name}'",
                  lambda g: g.rename(block_id, name), f"{block_id}.name")

    def _run(self, field: ParamField, text: str, action: Callable[[Graph], object],
             key: str) -> None:
        self._applying = field
        try:
            self.document.edit(text, action, merge_key=key)
        except GraphError as err:
            field.show_error(str(err))
        finally:
            self._applying = None


def _collapsed_module(graph: Graph, ids: list[str]) -> str | None:
    """The collapsed module these blocks are, all of them (its card is selected), or None."""
    module = graph.module_of(ids[0]) if ids else None
    if module is None or not module.collapsed or set(ids) != set(module.members.values()):
        return None
    return module.id


def _join_shapes(shapes: list[Any]) -> str:
    return " + ".join(format_shape(s) for s in shapes) if shapes else "none"


def _facts(infos: list[BlockInfo]) -> dict[str, str]:
    """The read-only numbers of one block, or of several blocks of one type together."""
    if len(infos) == 1:
        info = infos[0]
        rf, jump = info.receptive_field, info.jump
        field = "—"
        if rf is not None:
            field = f"{rf[0]}×{rf[1]} pixels"
            if jump is not None and jump != (1, 1):
                field += f"  (stride so far {jump[0]}×{jump[1]})"
        activation = (f"  ·  {info.activation_size:,} values"
                      if info.output_shape is not None else "")
        return {
            "Input shape": _join_shapes(list(info.input_shapes)),
            "Output shape": format_shape(info.output_shape) + activation,
            "Parameters": _params_text(info),
            "MACs": f"{info.macs:,}",
            "Receptive field": field,
        }
    outputs = {info.output_shape for info in infos}
    inputs = {info.input_shapes for info in infos}
    fields = {info.receptive_field for info in infos}
    rf = next(iter(fields))
    return {
        "Input shape": _join_shapes(list(next(iter(inputs)))) if len(inputs) == 1 else "differ",
        "Output shape": format_shape(next(iter(outputs))) if len(outputs) == 1 else "differ",
        "Parameters": f"{sum(i.total_params for i in infos):,} in total",
        "MACs": f"{sum(i.macs for i in infos):,} in total",
        "Receptive field": (f"{rf[0]}×{rf[1]} pixels" if rf else "—") if len(fields) == 1
        else "differ",
    }


def _params_text(info: BlockInfo) -> str:
    """The summary's count (trainable + non-trainable) and, where there is any, what is not
    trained: running statistics, frozen weights."""
    text = f"{info.total_params:,}"
    if not info.non_trainable:
        return text
    kept = []
    if info.buffers:
        kept.append(f"{info.buffers:,} running mean and variance")
    if info.non_trainable > info.buffers:
        kept.append(f"{info.non_trainable - info.buffers:,} frozen")
    return (f"{text}  ({info.trainable:,} trainable, {info.non_trainable:,} non-trainable: "
            f"{' + '.join(kept)})")

