"""Write the desktop icon file from the window's icon (cnnstudio.ui.icons.app_icon), so the
launcher, the file manager and the window show one picture. Run it after changing the drawing:

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icon.py

tests/test_packaging.py fails while the file and the drawing differ.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from cnnstudio.resources import RESOURCES_DIR
from cnnstudio.ui.icons import app_icon

ICON_SIZE = 256
ICON_FILE = RESOURCES_DIR / "icons" / "cnnstudio.png"


def render_icon() -> QImage:
    """The window's icon at ICON_SIZE pixels, as a QImage (a QApplication must exist)."""
    return app_icon().pixmap(ICON_SIZE, ICON_SIZE).toImage()


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 (kept alive)
    ICON_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not render_icon().save(str(ICON_FILE)):
        print(f"cannot write {ICON_FILE}", file=sys.stderr)
        return 1
    print(f"wrote {ICON_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
