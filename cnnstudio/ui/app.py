"""Start the application: `run()` is what `cnnstudio [FILE]` and `make run` call.

The window shows before anything imports torch: nothing in cnnstudio.ui imports it at import
time, so the first window appears faster than `import torch` alone takes
(bench/startup_time.py). With CNNSTUDIO_STARTUP_PROBE=1 the application prints the seconds
from run() to the first paint of the window and quits: the benchmark's hook.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from cnnstudio import __version__
from cnnstudio.core.adapt import adapt
from cnnstudio.core.graph import GraphError
from cnnstudio.core.project import ProjectError, load_project
from cnnstudio.core.templates import get_template, new_project
from cnnstudio.ui import theme as themes
from cnnstudio.ui import warmup
from cnnstudio.ui.document import Document
from cnnstudio.ui.icons import app_icon
from cnnstudio.ui.main_window import APP_NAME, DEFAULT_DATASET, DEFAULT_TEMPLATE, MainWindow
from cnnstudio.ui.settings_store import THEMES, SettingsStore
from cnnstudio.ui.start_page import StartPage

PROBE_ENV = "CNNSTUDIO_STARTUP_PROBE"
SCREENSHOT_SIZE = (1400, 900)
PAGES = ("canvas", "lab", "start")
WARMUP_DELAY_MS = 1000  # after the first paint: the window is drawn and idle by then


class AppError(Exception):
    """A bad argument or an output that cannot be written: exit status 2."""


class _FirstPaint(QObject):
    """Calls back once, on the first paint of the watched window."""

    def __init__(self, callback: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._callback = callback
        self._done = False

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if not self._done and event.type() == QEvent.Type.Paint:
            self._done = True
            QTimer.singleShot(0, self._callback)
        return False


def application(theme_name: str | None = None) -> QApplication:
    """The QApplication (created once, named, with its icon) with the theme applied."""
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setApplicationName(APP_NAME)
        QCoreApplication.setOrganizationName(APP_NAME)
        QCoreApplication.setOrganizationDomain("cnnstudio.org")
        QCoreApplication.setApplicationVersion(__version__)
        app = QApplication(sys.argv[:1])
        QApplication.setDesktopFileName("cnnstudio")
    assert isinstance(app, QApplication)
    app.setWindowIcon(app_icon())
    themes.apply(app, theme_name or SettingsStore().theme())
    return app


def _initial_document(file: str | None, template: str | None,
                      input_shape: tuple[int, int, int] | None,
                      classes: int | None) -> tuple[Document | None, ProjectError | None]:
    if template:
        return Document(new_project(template, input_shape, classes,
                                    dataset={"spec": DEFAULT_DATASET})), None
    if file:
        try:
            project = load_project(file)
        except ProjectError as err:
            return None, err
        try:
            adapt(project.graph, input_shape, classes, project.template)
        except GraphError as err:
            raise AppError(str(err)) from None
        return Document(project, Path(file).resolve()), None
    return None, None


def run(file: str | None = None, template: str | None = None, screenshot: str | None = None,
        theme: str | None = None, page: str = "canvas",
        input_shape: tuple[int, int, int] | None = None, classes: int | None = None) -> int:
    """Open the window and run until it closes; with `screenshot`, render it off-screen to
    that PNG instead and return.

    theme: "light", "dark", "system", or None for the user's saved choice. Returns the exit
    status; raises AppError (exit status 2) for a bad argument or a screenshot that cannot be
    written.
    """
    started = time.perf_counter()
    if page not in PAGES:
        raise AppError(f"unknown page {page!r}; expected one of {', '.join(PAGES)}")
    if screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif QApplication.instance() is None and not _display_available():
        raise AppError("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not "
                       "set); run it on a desktop, or render it with --screenshot OUT.png")
    window = open_window(file, template, theme, input_shape, classes,
                         screenshot=screenshot is not None)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    if screenshot:
        return _screenshot(app, window, Path(screenshot), page)
    if os.environ.get(PROBE_ENV):
        def report() -> None:
            print(f"window shown after {time.perf_counter() - started:.3f} s: "
                  f"{window.windowTitle().replace('[*]', '')}", flush=True)
            window.close()
            app.quit()

        window.installEventFilter(_FirstPaint(report, window))
    else:  # torch loads while the person looks at the network, not when they press Train
        window.installEventFilter(_FirstPaint(
            lambda: QTimer.singleShot(WARMUP_DELAY_MS, warmup.start), window))
    return app.exec()


def open_window(file: str | None = None, template: str | None = None, theme: str | None = None,
                input_shape: tuple[int, int, int] | None = None, classes: int | None = None,
                *, screenshot: bool = False) -> MainWindow:
    """Create the application if needed, apply the theme and show the main window on the file,
    the template, recovered work or the default project. A file that cannot be opened is
    reported in a dialog once the window shows, over the default project."""
    if file and template:
        raise AppError("give either a project file or --template, not both")
    if theme is not None and theme not in THEMES:
        raise AppError(f"unknown theme {theme!r}; expected one of {', '.join(THEMES)}")
    if not file and not template and (input_shape or classes):
        template = DEFAULT_TEMPLATE
    if template:
        get_template(template)  # an unknown name fails before any window opens
    theme_name = theme or SettingsStore().theme()
    application(theme_name)
    document, error = _initial_document(file, template, input_shape, classes)
    if error is not None and screenshot:
        raise AppError(str(error))
    window = MainWindow(document, recover=not screenshot)
    window.check_theme(theme_name)
    if screenshot:
        return window
    window.restore_layout()
    window.show()  # the canvas picks its first view: the whole network when it is readable
    if error is not None:
        QTimer.singleShot(0, lambda: window.show_error(
            error.summary, error.problems, "Cannot open the project"))
    return window


def _display_available() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def settle(app: QApplication, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()
        app.sendPostedEvents()


def _screenshot(app: QApplication, window: MainWindow, path: Path, page: str) -> int:
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    settle(app)
    window.canvas.initial_view()
    convolutions = [b.id for b in window.document.graph.blocks if b.type == "Conv2D"]
    if convolutions:  # show the inspector with real content
        window.canvas.select_blocks(convolutions[:1])
        window.canvas.initial_view()
    settle(app)
    if page == "lab":
        window.show_page("lab")
        settle(app)
    if page == "start":
        dialog = StartPage(window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        dialog.resize(960, 620)
        dialog.show()
        settle(app)
        image = dialog.grab()
        dialog.close()
    else:
        image = window.grab()
    window.remember_layout = False
    window.close()
    window.deleteLater()
    if not image.save(str(path), "PNG"):
        raise AppError(f"cannot write the screenshot to '{path}' (check the folder exists and "
                       "is writable)")
    return 0
