"""Find a block on the canvas by name or type (Edit → Find Block…, Ctrl+F).

A small bar over the canvas's top-right corner, like a browser's: typing selects and centres
the first block whose name contains the text (then those whose type does), Enter or F3 goes to
the next match, Shift+Enter or Shift+F3 to the previous one, Escape closes the bar and gives
the canvas its focus back. The bar is a child of the view, not of its viewport, so scrolling
does not smear it.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from cnnstudio.core import registry
from cnnstudio.core.graph import Graph
from cnnstudio.ui import theme
from cnnstudio.ui.document import Document

MARGIN = 10
WIDTH = 360


class FindHost(Protocol):
    """What the bar asks of the canvas view (declared here: the view imports the bar)."""

    document: Document

    def show_match(self, block_id: str) -> None: ...

    def viewport(self) -> QWidget: ...

    def setFocus(self) -> None: ...  # noqa: N802 (Qt's name)


def matching_blocks(graph: Graph, text: str) -> list[str]:
    """Ids of the blocks whose name contains `text` (any case), in the graph's order, then
    those whose type (its display name or id) does."""
    needle = text.strip().casefold()
    if not needle:
        return []
    by_name: list[str] = []
    by_type: list[str] = []
    for block in graph.blocks:
        if needle in block.name.casefold():
            by_name.append(block.id)
        elif registry.is_known(block.type) and (
                needle in registry.get(block.type).display_name.casefold()
                or needle in block.type.casefold()):
            by_type.append(block.id)
    return by_name + by_type


class FindField(QLineEdit):
    """The bar's text field: Enter/F3 next, Shift+Enter/Shift+F3 previous, Escape closes."""

    def __init__(self, bar: FindBar) -> None:
        super().__init__(bar)
        self._bar = bar

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        key, shift = event.key(), bool(event.modifiers() & Qt.ShiftModifier)
        if key in (Qt.Key_Return, Qt.Key_Enter, Qt.Key_F3):
            self._bar.step(-1 if shift else 1)
        elif key == Qt.Key_Escape:
            self._bar.close_bar()
        else:
            super().keyPressEvent(event)


class FindBar(QFrame):
    """The find bar of one canvas view."""

    def __init__(self, host: FindHost, parent: QWidget) -> None:
        super().__init__(parent)
        self._host = host
        self._current: str | None = None
        self.setObjectName("find_bar")
        self.setFrameShape(QFrame.StyledPanel)
        self.setAutoFillBackground(True)
        self.field = FindField(self)
        self.field.setPlaceholderText("Find a block by name or type")
        self.field.setClearButtonEnabled(True)
        self.field.textEdited.connect(self._search)
        self.count = QLabel()
        self.count.setMinimumWidth(64)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.field, 1)
        layout.addWidget(self.count)
        for text, tip, slot in (("▲", "Previous match (Shift+F3)", lambda: self.step(-1)),
                                ("▼", "Next match (F3, Enter)", lambda: self.step(1)),
                                ("✕", "Close (Esc)", self.close_bar)):
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            button.clicked.connect(slot)
            layout.addWidget(button)
        self.hide()

    def place(self) -> None:
        """In the viewport's top-right corner."""
        area = self._host.viewport().geometry()
        width = min(WIDTH, max(area.width() - 2 * MARGIN, 160))
        height = self.sizeHint().height()
        self.setGeometry(QRect(area.right() - width - MARGIN, area.top() + MARGIN, width, height))

    def open_bar(self) -> None:
        """Show the bar with its text selected, ready for typing."""
        self.place()
        self.show()
        self.raise_()
        self.field.setFocus(Qt.ShortcutFocusReason)
        self.field.selectAll()

    def close_bar(self) -> None:
        self.hide()
        self._host.setFocus()

    def matches(self) -> list[str]:
        return matching_blocks(self._host.document.graph, self.field.text())

    def current(self) -> str | None:
        """The block the bar went to last (None before a match)."""
        return self._current

    def _search(self, _text: str = "") -> None:
        self._current = None
        self.step(1)

    def step(self, direction: int) -> None:
        """Go to the next match (1) or the previous one (-1), round the end."""
        if not self.isVisible():
            self.open_bar()
        found = self.matches()
        if not found:
            self._current = None
            typed = self.field.text().strip()
            self._say(f"No block named or typed “{typed}”" if typed else "", error=bool(typed))
            return
        if self._current in found:
            index = (found.index(self._current) + direction) % len(found)
        else:
            index = 0 if direction > 0 else len(found) - 1
        self._current = found[index]
        self._say(f"{index + 1} of {len(found)}")
        self._host.show_match(self._current)

    def _say(self, text: str, error: bool = False) -> None:
        self.count.setText(text if not error else "No match")
        self.count.setToolTip(text)
        colour = theme.current().error.name() if error else ""
        self.count.setStyleSheet(f"color: {colour};" if colour else "")
