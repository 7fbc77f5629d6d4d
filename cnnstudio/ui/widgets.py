"""Small widget helpers shared by the window's pages."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


def scrolled(widget: QWidget) -> QScrollArea:
    """The widget in a frameless area that scrolls vertically only: it keeps the area's width."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def resize_on_screen(window: QWidget, width: int, height: int) -> None:
    """Resize a top-level window to at most what its screen has free, then move it up or left
    where it would reach past the screen's edge: a dialog that grows with its results (an
    export report, a latency table) keeps its buttons on the screen."""
    screen = window.screen()
    if screen is None:
        window.resize(width, height)
        return
    free = screen.availableGeometry()
    frame = window.frameGeometry()
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    window.resize(min(width, free.width() - extra_w), min(height, free.height() - extra_h))
    frame = window.frameGeometry()
    dx = min(0, free.right() - frame.right())
    dy = min(0, free.bottom() - frame.bottom())
    if dx or dy:
        window.move(max(free.left(), window.x() + dx), max(free.top(), window.y() + dy))
