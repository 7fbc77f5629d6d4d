"""The start page (File → New): every template with a picture of its layout, or an empty network.

The picture is drawn from the template's block positions with QPainter (boxes in their
category colours, straight wires) and cached per template, size and theme.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.core.templates import TEMPLATES, build_template, new_project
from cnnstudio.ui import theme

EMPTY = ""  # the id of the "Empty network" entry
BLOCK_W, BLOCK_H = 170.0, 64.0  # nominal block size in scene units, for the pictures
LIST_ICON = QSize(60, 78)
DETAIL_PICTURE = QSize(190, 250)

_thumbnails: dict[tuple[str, int, int, bool], QPixmap] = {}
_default_analyses: dict[str, Analysis] = {}


def render_thumbnail(graph: Graph, size: QSize, dark: bool | None = None) -> QPixmap:
    """A picture of a graph's layout: category-coloured boxes and wires, fitted into size."""
    current = theme.current()
    if dark is None:
        dark = current.dark
    palette = theme.DARK if dark else theme.LIGHT
    pixmap = QPixmap(size)
    pixmap.fill(palette.canvas)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(palette.block_border, 1))
    painter.drawRect(QRectF(0.5, 0.5, size.width() - 1, size.height() - 1))
    blocks = graph.blocks
    if blocks:
        left = min(b.x for b in blocks)
        top = min(b.y for b in blocks)
        span_w = max(b.x for b in blocks) - left + BLOCK_W
        span_h = max(b.y for b in blocks) - top + BLOCK_H
        margin = 6.0
        scale = min((size.width() - 2 * margin) / span_w, (size.height() - 2 * margin) / span_h)
        offset_x = (size.width() - span_w * scale) / 2
        offset_y = (size.height() - span_h * scale) / 2

        def rect(block_id: str) -> QRectF:
            block = graph.block(block_id)
            h = max(BLOCK_H * scale, 2.0)
            return QRectF(offset_x + (block.x - left) * scale,
                          offset_y + (block.y - top) * scale, BLOCK_W * scale, h)

        painter.setPen(QPen(palette.wire, max(0.6, min(1.5, 3 * scale))))
        for edge in graph.edges:
            start, end = rect(edge.src), rect(edge.dst)
            painter.drawLine(start.center().x(), start.bottom(), end.center().x(), end.top())
        painter.setPen(Qt.PenStyle.NoPen)
        for block in blocks:
            category = registry.get(block.type).category
            painter.setBrush(palette.accent(category))
            radius = min(3.0, BLOCK_H * scale / 3)
            painter.drawRoundedRect(rect(block.id), radius, radius)
    else:
        painter.setPen(palette.subtext)
        painter.drawText(QRectF(0, 0, size.width(), size.height()),
                         Qt.AlignmentFlag.AlignCenter, "+")
    painter.end()
    return pixmap


def template_thumbnail(template_id: str, size: QSize) -> QPixmap:
    """The cached picture of a template at its default size ("" for the empty network)."""
    key = (template_id, size.width(), size.height(), theme.current().dark)
    if key not in _thumbnails:
        graph = build_template(template_id) if template_id else Graph()
        _thumbnails[key] = render_thumbnail(graph, size)
    return _thumbnails[key]


def default_analysis(template_id: str) -> Analysis:
    if template_id not in _default_analyses:
        _default_analyses[template_id] = analyze(build_template(template_id))
    return _default_analyses[template_id]


def shape_text(shape: tuple[int, int, int]) -> str:
    return "×".join(str(v) for v in shape)


class StartPage(QDialog):
    """Choose a template (or an empty network), its input size and classes."""

    def __init__(self, parent: QWidget | None = None, selected: str = "keras-mnist") -> None:
        super().__init__(parent)
        self.setWindowTitle("New network — CNN Studio")
        self.setMinimumSize(860, 560)
        self.list = QListWidget()
        self.list.setIconSize(LIST_ICON)
        self.list.setSpacing(2)
        self.list.setMinimumWidth(330)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(True)
        self._add_item(EMPTY, "Empty network", "Start from an Input block and build it yourself")
        for template in TEMPLATES.values():
            analysis = default_analysis(template.id)
            facts = (f"input {shape_text(template.default_input)} · "
                     f"{template.default_classes:,} classes · "
                     f"{analysis.total_params:,} parameters")
            self._add_item(template.id, template.title, facts)

        self.picture = QLabel()
        self.picture.setFixedSize(DETAIL_PICTURE)
        self.title = QLabel()
        title_font = QFont(self.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.4)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.title.setWordWrap(True)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.description)
        self.facts = QLabel()
        self.facts.setWordWrap(True)

        self.channels = self._spin(1, 64)
        self.height_spin = self._spin(1, 8192)
        self.width_spin = self._spin(1, 8192)
        self.classes = self._spin(1, 1_000_000)
        form = QFormLayout()
        size_row = QHBoxLayout()
        for label, spin in (("C", self.channels), ("H", self.height_spin), ("W", self.width_spin)):
            size_row.addWidget(QLabel(label))
            size_row.addWidget(spin)
        size_row.addStretch(1)
        form.addRow("Input size:", size_row)
        classes_row = QHBoxLayout()
        classes_row.addWidget(self.classes)
        classes_row.addStretch(1)
        form.addRow("Classes:", classes_row)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        form.addRow("", self.result_label)

        top = QHBoxLayout()
        top.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignTop)
        heading = QVBoxLayout()
        heading.addWidget(self.title)
        heading.addWidget(self.facts)
        heading.addWidget(scroll, 1)
        top.addLayout(heading, 1)
        detail = QVBoxLayout()
        detail.addLayout(top, 1)
        detail.addLayout(form)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = self.buttons.addButton(
            "Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAutoDefault(False)
        self.create_button.setAutoDefault(True)
        self.create_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        body = QHBoxLayout()
        body.addWidget(self.list, 0)
        body.addLayout(detail, 1)
        layout = QVBoxLayout(self)
        heading_label = QLabel("Start from a ready-made network, set its input size and "
                               "number of classes, or start empty.")
        heading_label.setWordWrap(True)
        layout.addWidget(heading_label)
        layout.addLayout(body, 1)
        layout.addWidget(self.buttons)

        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        for spin in (self.channels, self.height_spin, self.width_spin, self.classes):
            spin.valueChanged.connect(self._update_result)
        self.select(selected)
        self.list.setFocus()

    def _add_item(self, template_id: str, title: str, facts: str) -> None:
        item = QListWidgetItem(QIcon(template_thumbnail(template_id, LIST_ICON)),
                               f"{title}\n{facts}")
        item.setData(Qt.ItemDataRole.UserRole, template_id)
        item.setSizeHint(QSize(300, LIST_ICON.height() + 8))
        self.list.addItem(item)

    @staticmethod
    def _spin(minimum: int, maximum: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(minimum, maximum)
        spin.setGroupSeparatorShown(True)
        spin.setKeyboardTracking(False)
        spin.setMinimumWidth(90)
        return spin

    # -- choices ---------------------------------------------------------------------------

    def template_ids(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def current_template(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else EMPTY

    def select(self, template_id: str) -> None:
        ids = self.template_ids()
        self.list.setCurrentRow(ids.index(template_id) if template_id in ids else 0)

    def input_shape(self) -> tuple[int, int, int]:
        return self.channels.value(), self.height_spin.value(), self.width_spin.value()

    def set_input(self, shape: tuple[int, int, int], classes: int | None = None) -> None:
        for spin, value in zip((self.channels, self.height_spin, self.width_spin), shape):
            spin.setValue(int(value))
        if classes is not None:
            self.classes.setValue(int(classes))

    def project(self) -> Project:
        """The new project for the current choices."""
        template_id = self.current_template()
        if template_id == EMPTY:
            channels, height, width = self.input_shape()
            graph = Graph()
            graph.add_block("Input", {"channels": channels, "height": height, "width": width},
                            name="input")
            return Project.new(graph, name="Untitled")
        return new_project(template_id, self.input_shape(), self.classes.value())

    @classmethod
    def choose(cls, parent: QWidget | None = None,
               selected: str = "keras-mnist") -> Project | None:
        dialog = cls(parent, selected)
        try:
            return dialog.project() if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()

    # -- display ---------------------------------------------------------------------------

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        template_id = current.data(Qt.ItemDataRole.UserRole) if current is not None else EMPTY
        self.picture.setPixmap(template_thumbnail(template_id, DETAIL_PICTURE))
        empty = template_id == EMPTY
        self.classes.setEnabled(not empty)
        if empty:
            self.title.setText("Empty network")
            self.description.setText(
                "A canvas with only an Input block. Drag blocks from the palette, connect "
                "them, and watch every block's output shape and parameter count as you go.")
            self.facts.setText("")
            self.set_input(self.input_shape() if self.isVisible() else (1, 28, 28))
        else:
            template = TEMPLATES[template_id]
            self.title.setText(template.title)
            self.description.setText(template.description)
            analysis = default_analysis(template_id)
            self.facts.setText(
                f"Designed for input {shape_text(template.default_input)} (C×H×W) and "
                f"{template.default_classes:,} classes: {analysis.total_params:,} parameters, "
                f"{len(analysis.order)} blocks.")
            self.set_input(template.default_input, template.default_classes)
        self._update_result()

    def _update_result(self) -> None:
        template_id = self.current_template()
        if template_id == EMPTY:
            self.result_label.setText("")
            self.create_button.setEnabled(True)
            return
        analysis = analyze(build_template(template_id, self.input_shape(), self.classes.value()))
        current = theme.current()
        if analysis.ok:
            colour = QColor("#81c784") if current.dark else QColor("#2e7d32")
            text = f"At this size: {analysis.total_params:,} parameters, a valid network."
        else:
            colour = current.error
            first = analysis.errors[0].message
            count = len(analysis.errors)
            text = (f"At this size the network has {count} error{'s' * (count != 1)}: "
                    f"{first}")
        self.result_label.setStyleSheet(f"color: {colour.name()};")
        self.result_label.setText(text)
