"""The bundled resources: the MNIST sample, the sample photographs and the application icon.

They sit in this package's folder, beside this module, so a source checkout, an editable
install, an installed wheel (pyproject.toml's package-data ships them) and a PyInstaller build
(which keeps the package's layout under its bundle folder) all find them the same way.
"""

from __future__ import annotations

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent


class MissingResource(FileNotFoundError):
    pass


def resource_path(*parts: str) -> Path:
    path = RESOURCES_DIR.joinpath(*parts)
    if not path.exists():
        raise MissingResource(f"bundled resource missing: {path}; reinstall the application")
    return path
