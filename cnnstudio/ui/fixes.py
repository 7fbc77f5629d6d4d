"""One-click fixes: applying a diagnostic's repair, and the problem list with its Fix buttons.

Every place that offers a fix (the badge popup and the block menu on the canvas, the Problems
dock, the inspector) applies it with `apply_repair` and shows the sentence it returns in the
status bar, so each fix is one undo step named after what it did ("Insert Flatten before
'fc1'"). `ProblemList` is the list of a block's problems with a visible Fix button for each
one that has a repair; the inspector shows it under the block's numbers, and `FixPopup` shows
it at the block's badge.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import edits, repairs
from cnnstudio.core.analysis import Diagnostic
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.ui import icons, theme
from cnnstudio.ui.document import Document

POPUP_WIDTH = 400
ICON_SIZE = 16
GONE = "This problem is gone already: the network changed since it was shown"


def apply_repair(document: Document, diagnostic: Diagnostic) -> str:
    """Carry out the diagnostic's repair as one undo step; what it did, or why it did not, for
    the status bar. A diagnostic the network no longer has (a list shown before an edit)
    changes nothing."""
    if not repairs.can_repair(diagnostic):
        return f"No one-click fix for this problem: {diagnostic.fix or diagnostic.message}"
    if diagnostic not in document.analysis.diagnostics:
        return GONE
    text = repairs.describe(document.graph, diagnostic)
    try:
        document.edit(text.command, lambda g: edits.repair(g, diagnostic))
    except GraphError as err:
        return f"Cannot fix it automatically: {err}. Instead, {diagnostic.fix}."
    return text.done


def apply_all_repairs(document: Document) -> str:
    """Fix all: every one-click repair the network needs, as one undo step."""
    done = document.edit("Fix all problems", repairs.repair_all)
    return repairs.summary(done)


def repairable_count(document: Document) -> int:
    return len(repairs.repairable(document.analysis.diagnostics))


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.PlainText)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    label.setAlignment(Qt.AlignLeft | Qt.AlignTop)
    return label


class ProblemList(QWidget):
    """Problems, each with its icon, message and suggested fix, and a Fix button where the
    fix is one click. Choosing one emits `fix_chosen(diagnostic)`; the owner applies it."""

    fix_chosen = Signal(object)  # Diagnostic

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(8)
        self._buttons: list[tuple[Diagnostic, QPushButton]] = []
        self._rows: list[QWidget] = []
        self._shown: list[Diagnostic] | None = None

    def set_diagnostics(self, diagnostics: list[Diagnostic], graph: Graph) -> None:
        if diagnostics == self._shown:
            return  # an edit elsewhere: keep the rows (and the focused button)
        self._shown = list(diagnostics)
        for row in self._rows:
            row.hide()
            row.deleteLater()
        self._rows, self._buttons = [], []
        for diagnostic in diagnostics:
            row = self._row(diagnostic, graph)
            self._layout.addWidget(row)
            self._rows.append(row)

    def _row(self, diagnostic: Diagnostic, graph: Graph) -> QWidget:
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        icon = QLabel()
        icon.setPixmap(icons.severity_icon(diagnostic.severity).pixmap(ICON_SIZE, ICON_SIZE))
        icon.setAlignment(Qt.AlignTop)
        icon.setToolTip(diagnostic.severity.capitalize())
        layout.addWidget(icon)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(_wrapped(diagnostic.message))
        if diagnostic.fix:
            fix = _wrapped(f"Fix: {diagnostic.fix}")
            fix.setStyleSheet(f"color: {theme.current().subtext.name()};")
            texts.addWidget(fix)
        if repairs.can_repair(diagnostic):
            button = QPushButton("Fix")
            button.setCursor(Qt.PointingHandCursor)
            button.setToolTip(f"{repairs.describe(graph, diagnostic).command} (one undo step)")
            button.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
            button.clicked.connect(lambda _checked=False, d=diagnostic: self.fix_chosen.emit(d))
            texts.addSpacing(2)
            texts.addWidget(button, 0, Qt.AlignLeft)
            self._buttons.append((diagnostic, button))
        texts.addStretch(1)
        layout.addLayout(texts, 1)
        return row

    def fix_buttons(self) -> list[tuple[Diagnostic, QPushButton]]:
        """The Fix buttons with the problem each one repairs, top to bottom."""
        return list(self._buttons)

    def row_count(self) -> int:
        return len(self._rows)


class FixPopup(QFrame):
    """The problems of one block, opened by a click on its badge: a Fix button applies a
    repair (and closes the popup); Escape or a click elsewhere closes it."""

    fix_chosen = Signal(object)  # Diagnostic

    def __init__(self, document: Document, block_id: str, parent: QWidget) -> None:
        super().__init__(parent, Qt.Popup)
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.setFrameShape(QFrame.StyledPanel)
        self.setObjectName("fix_popup")
        self.setFixedWidth(POPUP_WIDTH)
        graph = document.graph
        diagnostics = document.analysis.diagnostics_for(block_id)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 12)
        layout.setSpacing(8)
        count = len(diagnostics)
        title = QLabel(f"{graph.block(block_id).label}: "
                       f"{count} problem{'s' * (count != 1)}")
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        layout.addWidget(title)
        self.problems = ProblemList(self)
        self.problems.set_diagnostics(diagnostics, graph)
        self.problems.fix_chosen.connect(self._choose)
        layout.addWidget(self.problems)
        if not self.problems.fix_buttons():
            note = _wrapped("No one-click fix here: change the network as suggested.")
            note.setEnabled(False)
            layout.addWidget(note)

    def _choose(self, diagnostic: Diagnostic) -> None:
        self.close()
        self.fix_chosen.emit(diagnostic)

    def popup_at(self, point: QPoint) -> None:
        """Show it with its top-left corner at `point` (global), kept on the screen, the first
        Fix button focused so that Enter applies it."""
        layout = self.layout()
        self.resize(POPUP_WIDTH, layout.totalHeightForWidth(POPUP_WIDTH)
                    if layout.hasHeightForWidth() else self.sizeHint().height())
        screen = QGuiApplication.screenAt(point) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        x = max(area.left(), min(point.x(), area.right() - self.width()))
        y = point.y() if point.y() + self.height() <= area.bottom() else max(
            area.top(), point.y() - self.height() - 16)
        self.move(x, y)
        self.show()
        buttons = self.problems.fix_buttons()
        if buttons:
            buttons[0][1].setFocus()
