"""Step by step through one output value of a learned filter, with the real numbers: the
window of one input channel, the kernel, their products and sum, then the sum over the
channels, the bias and the block's activation (cnnstudio.lab.learned.pixel_arithmetic)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.lab.learned import PixelArithmetic
from cnnstudio.ui.images import text_on
from cnnstudio.ui.lab.stepper import STEP_BUTTON_WIDTH, output_colour, window_colour
from cnnstudio.ui.lab.widgets import MatrixTable, colour_of, mute, symmetric_scale

TABLE_CELL = 46
MAX_TERMS = 27  # a channel's sum longer than this is written with "…" in the middle


def table_style(side: int, cell: int = TABLE_CELL) -> tuple[int, float, int]:
    """(cell size, font points (0: the table's own), decimals) for a kernel's tables, so that an
    11×11 kernel's numbers fit the page as a 3×3 kernel's do."""
    if side <= 3:
        return cell, 0.0, 3
    if side <= 5:
        return min(cell, 38), 0.0, 3
    if side <= 7:
        return 30, 8.0, 2
    return 24, 7.0, 2


def show_matrix(table: MatrixTable, values: np.ndarray, cell: int = TABLE_CELL) -> None:
    """Fill a read-only table sized for the matrix (3 decimals shown; 2 for a big kernel)."""
    size, points, digits = table_style(max(values.shape), cell)
    table.set_cell(size, points)
    table.set_values(values if digits >= 3 else np.round(values, digits), editable=False)


class PixelStepper(QWidget):
    """The output pixel (row and column spins, ◀ Previous / Next ▶, or a click on the output
    map) and its arithmetic. `pixel_changed` carries the new (row, column)."""

    pixel_changed = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.arithmetic: PixelArithmetic | None = None
        self.channel = 0  # among the channels the filter reads
        self.output_size = (1, 1)
        self.row_spin, self.col_spin = QSpinBox(), QSpinBox()
        self.row_spin.setPrefix("row ")
        self.col_spin.setPrefix("column ")
        self.row_spin.setToolTip("The output pixel's row (or click the output map)")
        self.col_spin.setToolTip("The output pixel's column (or click the output map)")
        self.previous_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.previous_button.setToolTip("The previous output pixel (row by row)")
        self.next_button.setToolTip("The next output pixel (row by row)")
        for button in (self.previous_button, self.next_button):
            button.setFixedWidth(STEP_BUTTON_WIDTH)
        self.title = QLabel()
        controls = QHBoxLayout()
        controls.addWidget(self.title)
        controls.addSpacing(12)
        controls.addWidget(self.row_spin)
        controls.addWidget(self.col_spin)
        controls.addWidget(self.previous_button)
        controls.addWidget(self.next_button)
        controls.addStretch(1)

        self.window_table = MatrixTable(cell=TABLE_CELL)
        self.kernel_table = MatrixTable(cell=TABLE_CELL)
        self.product_table = MatrixTable(cell=TABLE_CELL)
        self.window_caption, self.kernel_caption, self.product_caption = (QLabel(), QLabel(),
                                                                          QLabel())
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        signs = ("×", "=")
        for column, (caption, table) in enumerate(((self.window_caption, self.window_table),
                                                   (self.kernel_caption, self.kernel_table),
                                                   (self.product_caption, self.product_table))):
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(caption, 0, 2 * column)
            grid.addWidget(table, 1, 2 * column, Qt.AlignmentFlag.AlignHCenter
                           | Qt.AlignmentFlag.AlignTop)
            if column < 2:
                sign = QLabel(signs[column])
                big = QFont(sign.font())
                big.setPointSizeF(max(big.pointSizeF(), 9.0) * 1.6)
                sign.setFont(big)
                grid.addWidget(sign, 1, 2 * column + 1, Qt.AlignmentFlag.AlignCenter)
        grid.setColumnStretch(6, 1)
        self.channel_label = QLabel()
        self.channel_label.setWordWrap(True)
        self.channel_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mute(self.channel_label)
        self.sum_labels = [QLabel() for _ in range(3)]
        formula_font = QFont(self.font())
        formula_font.setPointSizeF(max(formula_font.pointSizeF(), 9.0) * 1.25)
        sums = QVBoxLayout()
        for label in self.sum_labels:
            label.setFont(formula_font)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            sums.addWidget(label)
        sums.addStretch(1)
        tables = QWidget()
        tables.setLayout(grid)
        scroller = QScrollArea()  # a big kernel's tables scroll rather than widen the window
        scroller.setWidget(tables)
        tables.setAutoFillBackground(False)  # the group box's colour, not the scroll area's
        scroller.viewport().setAutoFillBackground(False)
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        body = QHBoxLayout()
        body.addWidget(scroller, 3)
        body.addSpacing(24)
        body.addLayout(sums, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(body)
        layout.addWidget(self.channel_label)

        self.row_spin.valueChanged.connect(self._on_spins)
        self.col_spin.valueChanged.connect(self._on_spins)
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))

    @property
    def pixel(self) -> tuple[int, int]:
        return self.row_spin.value(), self.col_spin.value()

    def set_output_size(self, rows: int, cols: int) -> None:
        """The output map's size: the spins' ranges (the pixel is kept when it still fits)."""
        self.output_size = (rows, cols)
        for spin, top in ((self.row_spin, rows - 1), (self.col_spin, cols - 1)):
            blocker = QSignalBlocker(spin)
            spin.setRange(0, max(top, 0))
            del blocker

    def set_pixel(self, row: int, col: int) -> None:
        """Choose an output pixel as the spins would (pixel_changed follows)."""
        for spin, value in ((self.row_spin, row), (self.col_spin, col)):
            blocker = QSignalBlocker(spin)
            spin.setValue(value)
            del blocker
        self._on_spins()

    def step(self, delta: int) -> None:
        rows, cols = self.output_size
        index = self.row_spin.value() * cols + self.col_spin.value() + delta
        index = min(max(index, 0), rows * cols - 1)
        self.set_pixel(index // cols, index % cols)

    def _on_spins(self, *_args: object) -> None:
        self.pixel_changed.emit(*self.pixel)

    def show_arithmetic(self, arithmetic: PixelArithmetic, channel: int) -> None:
        """The arithmetic of one pixel, its window and products for one input channel (index
        among the channels the filter reads)."""
        self.arithmetic, self.channel = arithmetic, channel
        rows, cols = self.output_size
        index = arithmetic.out[0] * cols + arithmetic.out[1]
        self.previous_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < rows * cols - 1)
        r, c = arithmetic.out
        self.title.setText(f"<b>Filter {arithmetic.filter}, output pixel</b>")
        number = arithmetic.channels[channel]
        window, kernel = arithmetic.windows[channel], arithmetic.kernels[channel]
        self.window_caption.setText(f"Input window (channel {number})")
        self.kernel_caption.setText(f"Kernel w (channel {number})")
        self.product_caption.setText("Products")
        show_matrix(self.window_table, window)
        self.window_table.paint_cells({(i, j): window_colour() for i in range(window.shape[0])
                                       for j in range(window.shape[1])})
        show_matrix(self.kernel_table, kernel)
        scale = symmetric_scale(kernel)
        self.kernel_table.paint_cells({(i, j): colour_of(kernel[i, j], scale)
                                       for i in range(kernel.shape[0])
                                       for j in range(kernel.shape[1])})
        products = arithmetic.products(channel)
        show_matrix(self.product_table, products)
        self.product_table.paint_cells({})
        n = len(arithmetic.channels)
        lead = (f"Channel {number}: " if n > 1 else "")
        self.channel_label.setText(f"{lead}{arithmetic.channel_text(channel, MAX_TERMS)}"
                                   + (f"   (one of the {n} input channels this filter sums; "
                                      "choose another above)" if n > 1 else ""))
        for label, text in zip(self.sum_labels, arithmetic.lines()):
            label.setText(text)
        colour = output_colour()
        self.sum_labels[-1].setStyleSheet(f"background: {colour.name()}; "
                                          f"color: {text_on(colour).name()}; padding: 2px 6px;")
        self.sum_labels[-1].setText(f"y[{r}, {c}]  ←  {self.sum_labels[-1].text()}")

    def clear(self, message: str = "") -> None:
        self.arithmetic = None
        for table in (self.window_table, self.kernel_table, self.product_table):
            table.set_values(np.zeros((0, 0)), editable=False)
        for label in self.sum_labels:
            label.setText("")
            label.setStyleSheet("")
        self.channel_label.setText(message)


__all__ = ["PixelStepper"]
