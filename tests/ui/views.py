"""Showing a view in a test as a user sees it: a real window, exposed, at the size the
inspection tabs have in the main window, and refreshed once."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def shown(qtbot, view: QWidget) -> QWidget:
    qtbot.addWidget(view)
    view.resize(1000, 650)
    view.show()
    qtbot.waitExposed(view)
    view.refresh()
    return view
