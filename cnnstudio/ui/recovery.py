"""Autosave for crash recovery, and the banner that tells the user about it.

Each window session writes its project, whenever it has unsaved changes, to
`<config>/recovery/<session>.cnnproj` (the project file text, written atomically) with
`<session>.json` beside it: the original path, the process id and its start time, and when it
was written. It writes every 30 s and about a second after each structural edit (a block or a
connection added or removed). A clean save and a normal close delete both files, so files left
behind by a process that is no longer running are work the user has not saved: the next start
offers them back.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from cnnstudio.core.files import staged_write
from cnnstudio.core.graph import EventKind, GraphEvent
from cnnstudio.core.locks import process_alive, process_start
from cnnstudio.core.project import Project, ProjectError, dumps_project, load_project, save_project
from cnnstudio.ui import theme
from cnnstudio.ui.document import Document
from cnnstudio.ui.settings_store import config_dir

AUTOSAVE_INTERVAL_MS = 30_000
DEBOUNCE_MS = 1_000
STRUCTURAL = frozenset({EventKind.BLOCK_ADDED, EventKind.BLOCK_REMOVED, EventKind.EDGE_ADDED,
                        EventKind.EDGE_REMOVED})


def recovery_dir(base: Path | None = None) -> Path:
    return (base if base is not None else config_dir()) / "recovery"


def write_atomic(path: Path, text: str) -> None:
    with staged_write(path, needed_bytes=len(text.encode("utf-8"))) as temp:
        Path(temp).write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class RecoveryEntry:
    """Unsaved work left behind by a session that did not end normally."""

    session_id: str
    project_file: Path
    meta_file: Path
    original_path: Path | None
    name: str
    saved_at: float

    def load(self) -> Project:
        return load_project(self.project_file)

    def discard(self) -> None:
        for path in (self.project_file, self.meta_file):
            with contextlib.suppress(OSError):
                path.unlink()

    @property
    def description(self) -> str:
        when = time.strftime("%d %b %Y %H:%M", time.localtime(self.saved_at))
        what = self.original_path.name if self.original_path else self.name
        return f"'{what}' (autosaved {when})"


def pending_recoveries(base: Path | None = None) -> list[RecoveryEntry]:
    """Recovery files whose process is gone, newest first."""
    folder = recovery_dir(base)
    entries: list[RecoveryEntry] = []
    if not folder.is_dir():
        return entries
    for meta_file in folder.glob("*.json"):
        project_file = meta_file.with_suffix(".cnnproj")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            pid = int(meta.get("pid", 0))
            started = meta.get("process_start")
            original = meta.get("original_path")
            saved_at = float(meta.get("saved_at", 0.0))
            name = str(meta.get("name", "Untitled"))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        if not project_file.is_file() or process_alive(pid, started):
            continue
        entries.append(RecoveryEntry(meta_file.stem, project_file, meta_file,
                                     Path(original) if original else None, name, saved_at))
    entries.sort(key=lambda e: e.saved_at, reverse=True)
    return entries


class Autosaver(QObject):
    """Writes the document's unsaved state to this session's recovery files."""

    saved = Signal(object)  # Path of the recovery project file
    failed = Signal(str)

    def __init__(self, document: Document, base: Path | None = None,
                 interval_ms: int = AUTOSAVE_INTERVAL_MS, debounce_ms: int = DEBOUNCE_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.folder = recovery_dir(base)
        self.session_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.project_file = self.folder / f"{self.session_id}.cnnproj"
        self.meta_file = self.folder / f"{self.session_id}.json"
        self._last_text: str | None = None
        self._failed_once = False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(debounce_ms)
        self.debounce.timeout.connect(self.save_now)
        document.graph_event.connect(self._on_graph_event)
        document.dirty_changed.connect(self._on_dirty_changed)
        document.project_replaced.connect(self._on_project_replaced)

    def _on_graph_event(self, event: GraphEvent) -> None:
        if event.kind in STRUCTURAL:
            self.debounce.start()

    def _on_dirty_changed(self, dirty: bool) -> None:
        if not dirty:
            self.discard()

    def _on_project_replaced(self) -> None:
        if self.document.is_dirty:
            self.save_now()
        else:
            self.discard()

    def save_now(self) -> bool:
        """Write the recovery files if there are unsaved changes; True when they are on disk."""
        self.debounce.stop()
        if not self.document.is_dirty:
            self.discard()
            return False
        text = dumps_project(self.document.project)
        if text == self._last_text and self.project_file.exists():
            return True
        path = self.document.path
        meta = {
            "session": self.session_id,
            "pid": os.getpid(),
            "process_start": process_start(os.getpid()),
            "original_path": str(path) if path else None,
            "name": self.document.project.name,
            "saved_at": time.time(),
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_project(self.document.project, self.project_file)
            write_atomic(self.meta_file, json.dumps(meta, indent=2) + "\n")
        except (ProjectError, OSError) as err:
            if not self._failed_once:  # once per spell of failures, not at every tick
                self._failed_once = True
                kept = " The previous recovery copy is kept." if self.project_file.exists() else ""
                self.failed.emit(f"Autosave failed: {err}.{kept}")
            return False
        self._failed_once = False
        self._last_text = text
        self.saved.emit(self.project_file)
        return True

    def discard(self) -> None:
        self._last_text = None
        for path in (self.project_file, self.meta_file):
            with contextlib.suppress(OSError):
                path.unlink()

    def stop(self) -> None:
        """A normal end: no more autosaves, and nothing left to recover."""
        self.timer.stop()
        self.debounce.stop()
        self.discard()


class Banner(QFrame):
    """A non-blocking message strip above the canvas, with optional buttons and a close button.

    A message about the open project (recovered changes and their Save… button, defaults filled
    in on opening) goes when another project replaces it (`project_replaced`).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self._layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        self.about_project = False
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        self._layout.addWidget(self.close_button)
        self.refresh_theme()
        self.hide()

    def show_message(self, text: str,
                     actions: list[tuple[str, Callable[[], None]]] | None = None,
                     about_project: bool = False) -> None:
        self.about_project = about_project
        for button in self._buttons:
            button.deleteLater()
        self._buttons = []
        for label, callback in actions or []:
            button = QPushButton(label)
            button.clicked.connect(callback)
            button.clicked.connect(self.hide)
            self._layout.insertWidget(self._layout.count() - 1, button)
            self._buttons.append(button)
        self.label.setText(text)
        self.show()

    def buttons(self) -> list[QPushButton]:
        return list(self._buttons)

    def project_replaced(self) -> None:
        """Another project is open: a message about the previous one no longer applies."""
        if self.about_project:
            self.about_project = False
            self.hide()

    def refresh_theme(self) -> None:
        dark = theme.current().dark
        background, border, text = (("#3b3220", "#6b5a2e", "#f3e3bd") if dark
                                    else ("#fff4d6", "#e6c36a", "#4a3b12"))
        self.setStyleSheet(
            f"QFrame#banner {{ background: {background}; border-bottom: 1px solid {border}; }}"
            f" QFrame#banner QLabel {{ color: {text}; }}"
        )
