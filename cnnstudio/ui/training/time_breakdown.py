"""'Where the time goes' on the Training page: each phase's share of a step as one bar.

The engine times every k-th step of an epoch in phases (train/step_timing.py) and sends the
result with the epoch's event (EpochEnded.breakdown). This panel draws the shares as coloured
segments, names them in a legend below, states the step time, images/s and memory, and shows
the plain-language hint when one phase dominates. Hidden until a run's first epoch ends.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from cnnstudio.train.time_shares import PHASE_NAMES, PHASES, percent

PHASE_COLOURS = {"data": QColor("#e8871e"), "forward": QColor("#3f7cbf"),
                 "backward": QColor("#4f9a48"), "optimiser": QColor("#9c5fa8"),
                 "other": QColor("#8f8f8f")}
BAR_HEIGHT = 18


class ShareBar(QWidget):
    """Coloured segments in PHASES order, each as wide as its share; its percentage inside
    when it fits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shares: dict[str, float] = {}
        self.setMinimumHeight(BAR_HEIGHT)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(300, BAR_HEIGHT)

    def set_shares(self, shares: dict[str, float]) -> None:
        self.shares = dict(shares)
        self.setToolTip(", ".join(f"{PHASE_NAMES[p]} {percent(shares.get(p, 0.0))}"
                                  for p in PHASES))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing, False)
        width, height = float(self.width()), float(self.height())
        metrics = painter.fontMetrics()
        x = 0.0
        for phase in PHASES:
            share = self.shares.get(phase, 0.0)
            if share <= 0:
                continue
            segment = QRectF(x, 0, width * share, height)
            colour = PHASE_COLOURS[phase]
            painter.fillRect(segment, colour)
            text = percent(share)
            if metrics.horizontalAdvance(text) + 6 <= segment.width():
                painter.setPen(Qt.white if colour.lightnessF() < 0.6 else Qt.black)
                painter.drawText(segment, Qt.AlignCenter, text)
            x += segment.width()
        painter.end()


class TimeBreakdownPanel(QWidget):
    """The bar, a legend, the figures and the hint of the last epoch's breakdown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.breakdown: Any = None
        self.title = QLabel("<b>Where the time goes</b>")
        self.title.setToolTip(
            "Every tenth training step is timed in phases: data preparation (gathering the "
            "batch, augmenting, normalising), the forward pass with the loss, the backward "
            "pass, the optimiser step, and the engine's bookkeeping (other).")
        self.figures = QLabel()
        self.bar = ShareBar()
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(10)
        top.addWidget(self.title)
        top.addWidget(self.figures, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.legend)
        layout.addWidget(self.hint)
        self.hide()

    def clear(self) -> None:
        self.breakdown = None
        self.hide()

    def show_breakdown(self, breakdown: Any, epoch: int) -> None:
        """An epoch's StepBreakdown (None when the epoch was not timed: nothing changes)."""
        if breakdown is None:
            return
        self.breakdown = breakdown
        shares = breakdown.shares()
        self.bar.set_shares(shares)
        self.figures.setText(
            f"epoch {epoch}: a step {breakdown.step_seconds * 1000:.1f} ms, "
            f"{breakdown.images_per_s:,.0f} images/s, {breakdown.memory_text()}")
        self.legend.setText("&nbsp;&nbsp;".join(
            f"<span style='color:{PHASE_COLOURS[p].name()}'>■</span>&nbsp;{PHASE_NAMES[p]} "
            f"{percent(shares[p]).replace(' ', '&nbsp;')}" for p in PHASES))
        hint = breakdown.hint()
        self.hint.setText(hint[:1].upper() + hint[1:] + "." if hint else "")
        self.hint.setVisible(bool(hint))
        self.show()
