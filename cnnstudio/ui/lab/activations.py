"""The Activations tab: each function and its derivative over a range (pyqtgraph), ε and α
adjustable, and softmax of a small editable vector."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.lab import ops
from cnnstudio.ui import theme
from cnnstudio.ui.lab.widgets import MatrixTable, mute

SAMPLES = 801
SOFTMAX_START = (2.0, 1.0, 0.1)
FUNCTION_COLOUR = ("#1565c0", "#64b5f6")  # light, dark
DERIVATIVE_COLOUR = ("#ef6c00", "#ffb74d")


def _colour(pair: tuple[str, str]) -> QColor:
    return QColor(pair[1] if theme.current().dark else pair[0])


class ActivationsView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.range_spin = QSpinBox()
        self.range_spin.setRange(1, 50)
        self.range_spin.setValue(5)
        self.range_spin.setPrefix("x from −r to r, r = ")
        self.eps_spin = QDoubleSpinBox()
        self.eps_spin.setRange(0.0, 1.0)
        self.eps_spin.setSingleStep(0.05)
        self.eps_spin.setValue(0.1)
        self.eps_spin.setPrefix("Leaky ReLU ε = ")
        self.alpha_spin = QDoubleSpinBox()
        self.alpha_spin.setRange(0.0, 5.0)
        self.alpha_spin.setSingleStep(0.1)
        self.alpha_spin.setValue(1.0)
        self.alpha_spin.setPrefix("ELU α = ")
        self.derivative_check = QCheckBox("derivatives (dashed)")
        self.derivative_check.setChecked(True)
        controls = QHBoxLayout()
        for widget in (self.range_spin, self.eps_spin, self.alpha_spin, self.derivative_check):
            controls.addWidget(widget)
        controls.addStretch(1)

        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        grid = QGridLayout()
        grid.setSpacing(8)
        keys = [*ops.ACTIVATIONS, "softmax"]
        for k, key in enumerate(keys):
            plot = pg.PlotWidget()
            plot.setMinimumSize(200, 160)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMenuEnabled(False)
            plot.addLegend(offset=(8, 8))
            function = plot.plot([], [], name="f(x)")
            derivative = plot.plot([], [], name="f′(x)")
            self.plots[key], self.curves[key] = plot, (function, derivative)
            grid.addWidget(plot, k // 3, k % 3)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        left = QVBoxLayout()
        left.addLayout(controls)
        left.addLayout(grid, 1)
        layout.addLayout(left, 3)
        layout.addWidget(self._build_softmax(), 1)

        for spin in (self.range_spin, self.eps_spin, self.alpha_spin):
            spin.valueChanged.connect(self.refresh)
        self.derivative_check.toggled.connect(self.refresh)
        self.refresh_theme()

    def _build_softmax(self) -> QGroupBox:
        box = QGroupBox("Softmax of a vector")
        layout = QVBoxLayout(box)
        self.length_spin = QSpinBox()
        self.length_spin.setRange(2, 6)
        self.length_spin.setValue(len(SOFTMAX_START))
        self.length_spin.setPrefix("values: ")
        layout.addWidget(self.length_spin)
        layout.addWidget(QLabel("Scores z (edit them)"))
        self.z_table = MatrixTable(cell=52, font_points=11)
        layout.addWidget(self.z_table)
        layout.addWidget(QLabel("softmax(z)ᵢ = e^zᵢ / Σⱼ e^zⱼ"))
        self.p_table = MatrixTable(cell=52, font_points=11)
        layout.addWidget(self.p_table)
        self.sum_label = QLabel()
        self.sum_label.setWordWrap(True)
        mute(self.sum_label)
        layout.addWidget(self.sum_label)
        self.bars = pg.PlotWidget()
        self.bars.setMenuEnabled(False)
        self.bars.setMouseEnabled(x=False, y=False)
        self.bars.setYRange(0, 1)
        self.bars.setMinimumHeight(150)
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.6)
        self.bars.addItem(self.bar_item)
        layout.addWidget(self.bars, 1)
        note = QLabel("The plot of softmax varies z₁ and keeps the other scores: "
                      "p₁ = softmax(z)₁ and ∂p₁/∂z₁ = p₁(1 − p₁).")
        note.setWordWrap(True)
        mute(note)
        layout.addWidget(note)
        self.z = np.array(SOFTMAX_START)
        self.z_table.edited.connect(self._on_z)
        self.length_spin.valueChanged.connect(self._on_length)
        return box

    # -- values ------------------------------------------------------------------------------

    def x(self) -> np.ndarray:
        r = self.range_spin.value()
        return np.linspace(-r, r, SAMPLES)

    def values(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(f(x), f′(x)) over the range for one function, with the current ε, α and z."""
        x = self.x()
        if key == "softmax":
            others = self.z[1:]
            logits = np.concatenate([x[:, None], np.broadcast_to(others, (len(x), len(others)))],
                                    axis=1)
            shifted = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(shifted[:, 0]) / np.exp(shifted).sum(axis=1)
            return p, p * (1.0 - p)
        activation = ops.ACTIVATIONS[key]
        kwargs = ({"eps": self.eps_spin.value()} if key == "leaky_relu"
                  else {"alpha": self.alpha_spin.value()} if key == "elu" else {})
        return activation.function(x, **kwargs), activation.derivative(x, **kwargs)

    def _title(self, key: str) -> str:
        if key == "softmax":
            rest = ", ".join(ops.fmt(v, 2) for v in self.z[1:])
            return f"softmax: p₁ of (z₁, {rest})"
        activation = ops.ACTIVATIONS[key]
        formula = activation.formula
        if key == "leaky_relu":
            formula = formula.replace("ε", ops.fmt(self.eps_spin.value(), 2))
        if key == "elu":
            formula = formula.replace("α", ops.fmt(self.alpha_spin.value(), 2))
        return f"{activation.name}: {formula}"

    def refresh(self, *_args: object) -> None:
        x = self.x()
        show_derivative = self.derivative_check.isChecked()
        text = theme.current().text.name()
        for key, plot in self.plots.items():
            f, df = self.values(key)
            function, derivative = self.curves[key]
            function.setData(x, f)
            derivative.setData(x, df)
            derivative.setVisible(show_derivative)
            plot.setTitle(self._title(key), color=text, size="10pt")
        self._refresh_softmax()

    def _refresh_softmax(self) -> None:
        p = ops.softmax(self.z)
        self.z_table.set_values(self.z[None])
        self.p_table.set_values(p[None], editable=False)
        self.p_table.show_cells({(0, k): f"{v:.3f}" for k, v in enumerate(p)})
        self.sum_label.setText(f"Σ p = {p.sum():.3f} (always 1); the largest score gets the "
                               "largest share")
        self.bar_item.setOpts(x=np.arange(1, len(p) + 1), height=p, width=0.6,
                              brush=_colour(FUNCTION_COLOUR))
        self.bars.setXRange(0.4, len(p) + 0.6)
        self.bars.getAxis("bottom").setTicks(
            [[(k + 1, f"p{'₁₂₃₄₅₆₇₈₉'[k]}") for k in range(len(p))]])

    def _on_z(self, matrix: np.ndarray) -> None:
        self.z = matrix[0].copy()
        self.refresh()

    def _on_length(self, length: int) -> None:
        z = np.zeros(length)
        n = min(length, len(self.z))
        z[:n] = self.z[:n]
        self.z = z
        self.refresh()

    def refresh_theme(self) -> None:
        current = theme.current()
        for plot in [*self.plots.values(), self.bars]:
            plot.setBackground(current.canvas)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(current.subtext))
                axis.setTextPen(pg.mkPen(current.text))
            legend = plot.getPlotItem().legend
            if legend is not None:
                legend.setLabelTextColor(current.text)
                legend.setBrush(pg.mkBrush(current.block))
                for _sample, label in legend.items:
                    label.setText(label.text, color=current.text)
        for function, derivative in self.curves.values():
            function.setPen(pg.mkPen(_colour(FUNCTION_COLOUR), width=2.5))
            derivative.setPen(pg.mkPen(_colour(DERIVATIVE_COLOUR), width=2,
                                       style=Qt.PenStyle.DashLine))
        self.refresh()
