"""The summary table (the rows of `cnnstudio summary`) and the problems list.

Both read the Document's analysis and refresh on analysis_changed (which also follows a new or
opened project) by resetting their model's rows; neither changes the graph. The table's cells
are the core's (`core.summary.row_cells`), so they read as `cnnstudio summary` does. Clicking a
row that belongs to a block emits `block_activated(block_id)` so the window can select and show
that block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QIcon, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import registry, repairs
from cnnstudio.core.analysis import Diagnostic
from cnnstudio.core.summary import (
    COLUMNS,
    NUMERIC_COLUMNS,
    PARAMETERS_TIP,
    memory_breakdown,
    memory_summary,
    row_cells,
)
from cnnstudio.ui import icons, theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.fixes import apply_all_repairs, apply_repair

BLOCK_ID_ROLE = Qt.UserRole + 1
LAYER_COLUMN = 1
TOTAL_LABEL = "Total"
FIX_HINT = "Double-click a problem to apply its fix; right-click for more."
TABLE_STYLE = "QTableView::item { padding: 0px 6px; } QHeaderView::section { padding: 2px 6px; }"
_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


@dataclass(frozen=True)
class _Row:
    block_id: str | None
    cells: tuple[str, ...]
    type_id: str = ""
    problem: str = ""  # the first error of this block, shown as tooltip and in red


class SummaryModel(QAbstractTableModel):
    """One row per block in execution order, then a bold totals row."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[_Row] = []

    def set_rows(self, rows: list[_Row]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: _Index = _ROOT) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = _ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.DisplayRole) -> Any:
        if orientation == Qt.Horizontal:
            if role == Qt.DisplayRole:
                return COLUMNS[section]
            if role == Qt.TextAlignmentRole:
                return int((Qt.AlignRight if section in NUMERIC_COLUMNS else Qt.AlignLeft)
                           | Qt.AlignVCenter)
        return None

    def data(self, index: _Index, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == Qt.DisplayRole:
            return row.cells[column]
        if role == Qt.TextAlignmentRole:
            return int((Qt.AlignRight if column in NUMERIC_COLUMNS else Qt.AlignLeft)
                       | Qt.AlignVCenter)
        if role == BLOCK_ID_ROLE:
            return row.block_id
        if role == Qt.DecorationRole and column == LAYER_COLUMN and row.type_id:
            return icons.block_icon(registry.get(row.type_id))
        if role == Qt.FontRole and row.block_id is None:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ForegroundRole and row.problem:
            return theme.current().error
        if role == Qt.ToolTipRole:
            return row.problem or None
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if index.isValid() and self.rows[index.row()].block_id is None:
            return Qt.ItemIsEnabled
        return Qt.ItemIsEnabled | Qt.ItemIsSelectable

    def row_of(self, block_id: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.block_id == block_id), -1)


def summary_rows(document: Document) -> list[_Row]:
    """The table rows: the same numbers as `cnnstudio summary`, formatted the same way."""
    analysis = document.analysis
    errors: dict[str, str] = {}
    for diagnostic in analysis.errors:
        if diagnostic.block_id is not None:
            errors.setdefault(diagnostic.block_id, diagnostic.message)
    rows = []
    for number, block_id in enumerate(analysis.order, start=1):
        info = analysis.blocks[block_id]
        rows.append(_Row(block_id, row_cells(number, info), info.type, errors.get(block_id, "")))
    if rows:
        rows.append(_Row(None, ("", TOTAL_LABEL, "", "", f"{analysis.total_params:,}",
                                f"{analysis.macs:,}", "")))
    return rows


class SummaryPanel(QWidget):
    """The course-style table of every block, with totals under it."""

    block_activated = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.model = SummaryModel(self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.setStyleSheet(TABLE_STYLE)
        self.view.setHorizontalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(
            self.view.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(LAYER_COLUMN, QHeaderView.Stretch)
        header.setHighlightSections(False)
        self.footer = QLabel(self)
        self.footer.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.footer.setWordWrap(True)
        self.footer.setContentsMargins(6, 2, 6, 0)
        self.footer.setToolTip(PARAMETERS_TIP)
        self.memory_label = QLabel(self)
        self.memory_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.memory_label.setWordWrap(True)
        self.memory_label.setContentsMargins(6, 0, 6, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.footer)
        layout.addWidget(self.memory_label)
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        document.analysis_changed.connect(self.refresh)
        document.settings_changed.connect(lambda _group, _changes: self.refresh())
        self.refresh()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        """A widget with its own style sheet keeps the palette it was polished with, so a theme
        switch would reach the table one switch late: polish it again with the new palette."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.view.setStyleSheet("")
            self.view.setStyleSheet(TABLE_STYLE)

    def refresh(self) -> None:
        selected = self.selected_block()
        self.model.set_rows(summary_rows(self.document))
        analysis = self.document.analysis
        self.footer.setText(
            f"Total parameters: {analysis.total_params:,}   ·   trainable: "
            f"{analysis.trainable_params:,}   ·   non-trainable: {analysis.non_trainable:,}"
            f"   ·   MACs: {analysis.macs:,} per image\n"
            "Output shapes are (height,width,channels); vectors are (values).")
        training = self.document.project.training
        batch = int(training.get("batch_size", 64))
        optimizer = str(training.get("optimizer", "adam"))
        memory = analysis.memory(batch, optimizer)
        self.memory_label.setText(f"Training memory: {memory_summary(memory, optimizer)}")
        self.memory_label.setToolTip(memory_breakdown(memory, optimizer))
        if selected is not None:
            self.select_block(selected)

    def selected_block(self) -> str | None:
        rows = self.view.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()].block_id if rows else None

    def select_block(self, block_id: str | None) -> None:
        """Highlight a block's row (the window follows the canvas selection with it)."""
        row = self.model.row_of(block_id) if block_id is not None else -1
        if row < 0:
            self.view.clearSelection()
            return
        self.view.selectRow(row)
        self.view.scrollTo(self.model.index(row, 0))

    def _on_clicked(self, index: QModelIndex) -> None:
        block_id = index.data(BLOCK_ID_ROLE)
        if block_id:
            self.block_activated.emit(block_id)


# -- problems --------------------------------------------------------------------------------


class ProblemsModel(QAbstractListModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.diagnostics: list[Diagnostic] = []

    def set_diagnostics(self, diagnostics: list[Diagnostic]) -> None:
        self.beginResetModel()
        self.diagnostics = diagnostics
        self.endResetModel()

    def rowCount(self, parent: _Index = _ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.diagnostics)

    def data(self, index: _Index, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid():
            return None
        diagnostic = self.diagnostics[index.row()]
        if role == Qt.DisplayRole:
            return diagnostic.message
        if role == Qt.DecorationRole:
            return icons.severity_icon(diagnostic.severity)
        if role == BLOCK_ID_ROLE:
            return diagnostic.block_id
        if role == Qt.ToolTipRole:
            fix = f"\nFix: {diagnostic.fix}" if diagnostic.fix else ""
            apply = f"\n\n{FIX_HINT}" if repairs.can_repair(diagnostic) else ""
            return f"{diagnostic.severity.capitalize()}: {diagnostic.message}{fix}{apply}"
        if role == Qt.UserRole:
            return diagnostic
        return None


def _fix_line(diagnostic: Diagnostic) -> str:
    """The row's second line; a one-click fix says how to apply it (and shows in the link
    colour)."""
    apply = "  (double-click to apply)" if repairs.can_repair(diagnostic) else ""
    return f"Fix: {diagnostic.fix}{apply}"


class _ProblemDelegate(QStyledItemDelegate):
    """Icon, the message, and 'Fix: …' under it in the secondary colour; both lines wrap."""

    PADDING = 6
    ICON = 16

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self.view = view

    def _text_width(self) -> int:
        return max(80, self.view.viewport().width() - self.ICON - 4 * self.PADDING)

    def _blocks(self, option: QStyleOptionViewItem, diagnostic: Diagnostic,
                width: int) -> tuple[QRect, QRect]:
        metrics = option.fontMetrics
        flags = int(Qt.TextWordWrap)
        message = metrics.boundingRect(QRect(0, 0, width, 10_000), flags, diagnostic.message)
        fix = (metrics.boundingRect(QRect(0, 0, width, 10_000), flags, _fix_line(diagnostic))
               if diagnostic.fix else QRect())
        return message, fix

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        diagnostic: Diagnostic = index.data(Qt.UserRole)
        width = self._text_width()
        message, fix = self._blocks(option, diagnostic, width)
        height = message.height() + (fix.height() + 2 if diagnostic.fix else 0)
        return QSize(width, max(height, self.ICON) + 2 * self.PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        diagnostic: Diagnostic = index.data(Qt.UserRole)
        style = option.widget.style() if option.widget else self.view.style()
        background = QStyleOptionViewItem(option)
        self.initStyleOption(background, index)
        background.text = ""
        background.icon = QIcon()  # the icon is drawn below, at the top of the row
        background.state &= ~QStyle.State_HasFocus
        style.drawControl(QStyle.CE_ItemViewItem, background, painter, option.widget)
        rect = option.rect.adjusted(self.PADDING, self.PADDING, -self.PADDING, -self.PADDING)
        selected = bool(option.state & QStyle.State_Selected)
        palette = option.palette
        text_colour = palette.color(QPalette.HighlightedText if selected else QPalette.Text)
        fix_colour = text_colour if selected else (
            theme.current().selection if repairs.can_repair(diagnostic)
            else theme.current().subtext)
        icons.severity_icon(diagnostic.severity).paint(
            painter, QRect(rect.left(), rect.top() + 1, self.ICON, self.ICON))
        left = rect.left() + self.ICON + self.PADDING
        width = rect.right() - left
        message, fix = self._blocks(option, diagnostic, width)
        painter.save()
        painter.setPen(text_colour)
        painter.drawText(QRect(left, rect.top(), width, message.height()), int(Qt.TextWordWrap),
                         diagnostic.message)
        if diagnostic.fix:
            painter.setPen(fix_colour)
            painter.drawText(QRect(left, rect.top() + message.height() + 2, width, fix.height()),
                             int(Qt.TextWordWrap), _fix_line(diagnostic))
        painter.restore()


class ProblemsPanel(QWidget):
    """Every diagnostic of the network, errors first. Click one to go to its block; a
    double-click, the row's menu or Fix All applies one-click repairs (ui/fixes.py)."""

    block_activated = Signal(str)
    count_changed = Signal(int, int)  # errors, warnings
    status_message = Signal(str)  # what a fix did, for the status bar

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.model = ProblemsModel(self)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(_ProblemDelegate(self.view))
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.view.setResizeMode(QListView.Adjust)
        self.view.setUniformItemSizes(False)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.empty_label = QLabel("No problems: every block has a shape and every output "
                                  "is used.", self)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignCenter)
        self.empty_label.setEnabled(False)
        self.fix_all_button = QPushButton(self)
        self.fix_all_button.setToolTip("Apply every one-click fix, as one undo step")
        self.fix_all_button.clicked.connect(self.fix_all)
        self.hint_label = QLabel(FIX_HINT, self)
        self.hint_label.setEnabled(False)
        self.hint_label.setWordWrap(True)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 0)
        bar.addWidget(self.hint_label, 1)
        bar.addWidget(self.fix_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty_label, 1)
        self._counts = (-1, -1)
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        self.view.doubleClicked.connect(self._on_double_clicked)
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._show_row_menu)
        document.analysis_changed.connect(self.refresh)
        self.refresh()

    def count(self) -> int:
        return self.model.rowCount()

    @property
    def counts(self) -> tuple[int, int]:
        """(errors, warnings) as last shown."""
        return self._counts

    def refresh(self) -> None:
        analysis = self.document.analysis
        errors, warnings = analysis.errors, analysis.warnings
        self.model.set_diagnostics(errors + warnings)
        empty = not errors and not warnings
        self.view.setVisible(not empty)
        self.empty_label.setVisible(empty)
        fixable = len(repairs.repairable(errors + warnings))
        self.fix_all_button.setText(f"Fix All ({fixable})")
        self.fix_all_button.setVisible(fixable > 0)
        self.hint_label.setVisible(fixable > 0)
        counts = (len(errors), len(warnings))
        if counts != self._counts:
            self._counts = counts
            self.count_changed.emit(*counts)

    def _on_clicked(self, index: QModelIndex) -> None:
        block_id = index.data(BLOCK_ID_ROLE)
        if block_id:
            self.block_activated.emit(block_id)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        diagnostic = index.data(Qt.UserRole)
        if diagnostic is not None and repairs.can_repair(diagnostic):
            self.fix(diagnostic)

    def fix(self, diagnostic: Diagnostic) -> None:
        self.status_message.emit(apply_repair(self.document, diagnostic))

    def fix_all(self) -> None:
        self.status_message.emit(apply_all_repairs(self.document))

    def row_menu(self, index: QModelIndex) -> QMenu | None:
        """The menu of one problem: Fix (when it has a repair) and Go to Block."""
        diagnostic: Diagnostic | None = index.data(Qt.UserRole)
        if diagnostic is None:
            return None
        menu = QMenu(self)
        if repairs.can_repair(diagnostic):
            fix = menu.addAction(f"Fix: {diagnostic.fix}")
            fix.triggered.connect(lambda _checked=False, d=diagnostic: self.fix(d))
        block_id = diagnostic.block_id
        if block_id:
            go = menu.addAction("Go to Block")
            go.triggered.connect(lambda _checked=False: self.block_activated.emit(block_id))
        if not menu.actions():
            menu.deleteLater()
            return None
        return menu

    def _show_row_menu(self, pos: QPoint) -> None:
        menu = self.row_menu(self.view.indexAt(pos))
        if menu is not None:
            menu.exec(self.view.viewport().mapToGlobal(pos))
            menu.deleteLater()
