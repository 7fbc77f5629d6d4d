"""Where the bundled resources (MNIST sample, photographs, icons) live.

In a source checkout or an editable install they sit in the repository's top-level
`resources/`; a frozen (PyInstaller) build carries them beside the executable.
"""

from __future__ import annotations

import sys
from pathlib import Path


class MissingResource(FileNotFoundError):
    pass


def resources_dir() -> Path:
    candidates = [
        Path(__file__).resolve().parent / "resources",
        Path(__file__).resolve().parents[1] / "resources",
    ]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.insert(0, Path(frozen) / "resources")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise MissingResource(
        "CNN Studio's resources folder is missing; reinstall the application "
        f"(looked in: {', '.join(str(c) for c in candidates)})"
    )


def resource_path(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise MissingResource(f"bundled resource missing: {path}; reinstall the application")
    return path
