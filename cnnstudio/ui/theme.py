"""Light and dark themes, following the system, and the canvas colours of each."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

CATEGORY_HUES = {  # palette category -> accent colour (same hue in both themes)
    "Input": "#2e7d32",
    "Convolution": "#1565c0",
    "Activation": "#ef6c00",
    "Pooling": "#6a1b9a",
    "Regularisation": "#00838f",
    "Reshape": "#5d4037",
    "Dense": "#283593",
    "Merge": "#ad1457",
    "Output": "#c62828",
}


@dataclass(frozen=True)
class Theme:
    name: str
    dark: bool
    canvas: QColor
    grid: QColor
    block: QColor
    block_border: QColor
    text: QColor
    subtext: QColor
    wire: QColor
    wire_text: QColor
    selection: QColor
    error: QColor
    warning: QColor

    def accent(self, category: str) -> QColor:
        colour = QColor(CATEGORY_HUES.get(category, "#546e7a"))
        return colour.lighter(150) if self.dark else colour


LIGHT = Theme(
    "light", False,
    canvas=QColor("#f7f8fa"), grid=QColor("#e3e6eb"), block=QColor("#ffffff"),
    block_border=QColor("#b0b7c3"), text=QColor("#1c1f24"), subtext=QColor("#5b6270"),
    wire=QColor("#7b8494"), wire_text=QColor("#3d4450"), selection=QColor("#1e88e5"),
    error=QColor("#d32f2f"), warning=QColor("#ef8f00"),
)
DARK = Theme(
    "dark", True,
    canvas=QColor("#1e2126"), grid=QColor("#2a2e35"), block=QColor("#2c3038"),
    block_border=QColor("#4a505c"), text=QColor("#e8eaed"), subtext=QColor("#a4abb8"),
    wire=QColor("#8a93a3"), wire_text=QColor("#c5cad3"), selection=QColor("#64b5f6"),
    error=QColor("#ef5350"), warning=QColor("#ffb74d"),
)

_current = LIGHT


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """From `a` (t = 0) to `b` (t = 1), opaque."""
    t = min(1.0, max(0.0, t))
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t,
                           a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t)


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return bool(scheme and scheme() == Qt.ColorScheme.Dark)


def current() -> Theme:
    return _current


def apply(app: QApplication, name: str = "system") -> Theme:
    """Fusion style with a light or dark palette; 'system' follows the desktop setting."""
    global _current
    dark = system_prefers_dark() if name == "system" else name == "dark"
    _current = DARK if dark else LIGHT
    app.setStyle("Fusion")
    app.setPalette(_palette(_current))
    return _current


def _palette(theme: Theme) -> QPalette:
    p = QPalette()
    if theme.dark:
        window, base, text = QColor("#25282e"), QColor("#1e2126"), theme.text
        button, alt = QColor("#30343b"), QColor("#2a2e35")
    else:
        window, base, text = QColor("#eef0f3"), QColor("#ffffff"), theme.text
        button, alt = QColor("#f4f5f7"), QColor("#f5f6f8")
    roles = {
        QPalette.Window: window, QPalette.WindowText: text, QPalette.Base: base,
        QPalette.AlternateBase: alt, QPalette.Text: text, QPalette.Button: button,
        QPalette.ButtonText: text, QPalette.ToolTipBase: base, QPalette.ToolTipText: text,
        # selected rows: white text needs a darker blue than the canvas's selection outline
        QPalette.Highlight: QColor("#2d6cb5") if theme.dark else theme.selection,
        QPalette.HighlightedText: QColor("#ffffff"),
        QPalette.PlaceholderText: theme.subtext, QPalette.Link: theme.selection,
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    disabled = QColor(theme.subtext)
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        p.setColor(QPalette.Disabled, role, disabled)
    return p
