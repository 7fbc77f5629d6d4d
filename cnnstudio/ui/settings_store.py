"""The user's settings: recent files, window geometry and theme, in one INI file.

Everything lives in the configuration folder: CNNSTUDIO_CONFIG_DIR when set (tests point it
at a temporary folder so they never touch the real configuration), otherwise the platform's
application configuration folder (~/.config/cnnstudio on Linux). The recovery files of the
autosave live in its `recovery/` subfolder.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

CONFIG_ENV = "CNNSTUDIO_CONFIG_DIR"
MAX_RECENT = 10
THEMES = ("system", "light", "dark")


def config_dir() -> Path:
    """The configuration folder (not created here)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericConfigLocation)
    base = Path(location) if location else Path.home() / ".config"
    return base / "cnnstudio"


class SettingsStore:
    """A thin typed wrapper around a QSettings INI file in config_dir()."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else config_dir()
        self._settings = QSettings(str(self.directory / "cnnstudio.ini"),
                                   QSettings.Format.IniFormat)

    @property
    def file_name(self) -> str:
        return self._settings.fileName()

    def sync(self) -> None:
        self._settings.sync()

    # -- recent files ------------------------------------------------------------------------

    def recent_files(self) -> list[Path]:
        value = self._settings.value("recent/files", [])
        if isinstance(value, str):  # QSettings gives a lone entry back as a plain string
            value = [value]
        paths: list[Path] = []
        for item in value or []:
            if isinstance(item, str) and item and Path(item) not in paths:
                paths.append(Path(item))
        return paths[:MAX_RECENT]

    def _set_recent(self, paths: list[Path]) -> None:
        self._settings.setValue("recent/files", [str(p) for p in paths[:MAX_RECENT]])
        self._settings.sync()

    def add_recent(self, path: Path | str) -> None:
        path = Path(path).resolve()
        self._set_recent([path] + [p for p in self.recent_files() if p != path])

    def remove_recent(self, path: Path | str) -> None:
        path = Path(path)
        self._set_recent([p for p in self.recent_files() if p != path])

    def clear_recent(self) -> None:
        self._set_recent([])

    # -- theme -------------------------------------------------------------------------------

    def theme(self) -> str:
        value = self._settings.value("view/theme", "system")
        return value if value in THEMES else "system"

    def set_theme(self, name: str) -> None:
        if name not in THEMES:
            raise ValueError(f"unknown theme {name!r}; expected one of {', '.join(THEMES)}")
        self._settings.setValue("view/theme", name)
        self._settings.sync()

    # -- window ------------------------------------------------------------------------------

    def window_geometry(self) -> QByteArray | None:
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self._settings.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._settings.setValue("window/geometry", geometry)
        self._settings.setValue("window/state", state)
        self._settings.sync()
