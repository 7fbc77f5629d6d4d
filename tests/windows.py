"""Fixtures every test shares (registered by tests/conftest.py as a pytest plugin).

`config`: settings, recent files and recovery copies go to a temporary folder in every test,
never the user's. `make_window`: main windows shown and active, closed without questions at
the end. Qt is imported only when a test asks for a window, so the core tests stay Qt-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cnnstudio.ui.document import Document
    from cnnstudio.ui.main_window import MainWindow


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder CNNSTUDIO_CONFIG_DIR names for this test (created when something is saved)."""
    directory = tmp_path / "config"
    monkeypatch.setenv("CNNSTUDIO_CONFIG_DIR", str(directory))
    return directory


@pytest.fixture
def make_window(qtbot: Any) -> Iterator[Callable[..., MainWindow]]:
    """make_window(document=None, **MainWindow options): a shown, active main window."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    from cnnstudio.ui.main_window import MainWindow

    made: list[MainWindow] = []

    def make(document: Document | None = None, **kwargs: Any) -> MainWindow:
        window = MainWindow(document, **kwargs)
        made.append(window)
        window.show()
        window.activateWindow()
        qtbot.waitExposed(window)
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
        return window

    yield make
    for window in made:
        window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
        window.close()
        window.deleteLater()
