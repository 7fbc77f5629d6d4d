"""The Step by step tab: the course's worked examples, one output cell at a time.

The window under the kernel is highlighted in the input, the products and their sum are
written out, and the output fills in cell by cell (next / previous / play). Every matrix is
editable; an edit recomputes the whole trace and keeps the current step.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.lab import ops
from cnnstudio.lab.examples import EXAMPLES, Example
from cnnstudio.ui import theme
from cnnstudio.ui.lab.widgets import MatrixTable, mute

PLAY_INTERVAL_MS = 800
STEP_BUTTON_WIDTH = 110
MAX_INPUT = 9
MAX_KERNEL = 5
POOL_NAMES = {"max": "Max", "average": "Average", "sum": "Sum", "l2": "L2"}


def window_colour() -> QColor:
    return QColor("#c79a00") if theme.current().dark else QColor("#ffe082")


def output_colour() -> QColor:
    return QColor("#2e7d32") if theme.current().dark else QColor("#a5d6a7")


def _grown(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Top-left part kept, new cells 0."""
    out = np.zeros((rows, cols))
    r, c = min(rows, matrix.shape[0]), min(cols, matrix.shape[1])
    out[:r, :c] = matrix[:r, :c]
    return out


def _spin(low: int, high: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setToolTip(tip)
    return spin


class StepperView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.example: Example = EXAMPLES[0]
        self.x = np.zeros((1, 1))
        self.w = np.zeros((1, 1))
        self.trace: ops.Trace | None = None
        self._pads: set[tuple[int, int]] = set()
        self.index = 0
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)

        self.example_combo = QComboBox()
        for example in EXAMPLES:
            self.example_combo.addItem(example.title, example.key)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.rows_spin = _spin(1, MAX_INPUT, "Rows of the input")
        self.cols_spin = _spin(1, MAX_INPUT, "Columns of the input")
        self.krows_spin = _spin(1, MAX_KERNEL, "Rows of the kernel")
        self.kcols_spin = _spin(1, MAX_KERNEL, "Columns of the kernel")
        self.stride_spin = _spin(1, 4, "Stride s, both directions")
        self.pad_spin = _spin(0, 2, "Zero padding p on every side")
        self.mode_combo = QComboBox()
        for mode in ops.POOL_MODES:
            self.mode_combo.addItem(POOL_NAMES[mode], mode)
        self.pool_spin = _spin(1, 4, "Pool size")
        self.pool_stride_spin = _spin(1, 4, "Pool stride")

        options = QHBoxLayout()
        options.addWidget(QLabel("Example"))
        self.example_combo.setMinimumContentsLength(32)
        options.addWidget(self.example_combo)
        options.addStretch(1)
        input_options = self._options(("Input", self.rows_spin, "×", self.cols_spin))
        self.conv_options = self._options(
            ("Kernel", self.krows_spin, "×", self.kcols_spin), ("Stride s", self.stride_spin),
            ("Padding p", self.pad_spin))
        self.pool_options = self._options(("Pooling", self.mode_combo), ("size", self.pool_spin),
                                          ("stride", self.pool_stride_spin))
        options.addWidget(input_options)
        options.addWidget(self.conv_options)
        options.addWidget(self.pool_options)

        self.input_table = MatrixTable(cell=54, font_points=15)
        self.kernel_table = MatrixTable(cell=54, font_points=15)
        self.output_table = MatrixTable(cell=54, font_points=15)
        self.input_caption, self.kernel_caption, self.output_caption = QLabel(), QLabel(), QLabel()
        grid = QGridLayout()
        grid.setHorizontalSpacing(36)
        for column, (caption, table) in enumerate(((self.input_caption, self.input_table),
                                                   (self.kernel_caption, self.kernel_table),
                                                   (self.output_caption, self.output_table))):
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(caption, 0, column + 1)
            grid.addWidget(table, 1, column + 1, Qt.AlignmentFlag.AlignHCenter
                           | Qt.AlignmentFlag.AlignTop)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(4, 1)

        self.formula_label = QLabel()
        formula_font = QFont(self.font())
        formula_font.setPointSizeF(max(formula_font.pointSizeF(), 9.0) * 1.6)
        self.formula_label.setFont(formula_font)
        self.formula_label.setWordWrap(True)
        self.formula_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.formula_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.step_label = QLabel()
        self.step_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.size_label = QLabel()
        self.size_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(self.size_label)

        self.reset_button = QPushButton("Reset")
        self.previous_button = QPushButton("◀ Previous")
        self.play_button = QPushButton("▶ Play")
        self.next_button = QPushButton("Next ▶")
        self.previous_button.setToolTip("Previous output cell (← or Page Up)")
        self.next_button.setToolTip("Next output cell (→, Page Down or Space)")
        self.reset_button.setToolTip("Back to the first output cell (Home)")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.reset_button, self.previous_button, self.play_button,
                       self.next_button):
            button.setFixedWidth(STEP_BUTTON_WIDTH)  # "▶ Play" and "Pause" take the same room
            buttons.addWidget(button)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(options)
        layout.addWidget(self.note_label)
        layout.addStretch(1)
        layout.addLayout(grid)
        layout.addSpacing(24)
        layout.addWidget(self.formula_label)
        layout.addWidget(self.step_label)
        layout.addWidget(self.size_label)
        layout.addStretch(1)
        layout.addSpacing(16)
        layout.addLayout(buttons)  # at the bottom: the same place for every example and size

        self.example_combo.currentIndexChanged.connect(
            lambda i: self.load_example(str(self.example_combo.itemData(i))))
        self.reset_button.clicked.connect(self.reset)
        self.previous_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.play_button.clicked.connect(self.toggle_play)
        self.input_table.edited.connect(self._on_input_edited)
        self.kernel_table.edited.connect(self._on_kernel_edited)
        for spin in (self.rows_spin, self.cols_spin, self.krows_spin, self.kcols_spin):
            spin.valueChanged.connect(self._on_sizes)
        for spin in (self.stride_spin, self.pad_spin, self.pool_spin, self.pool_stride_spin):
            spin.valueChanged.connect(self.recompute)
        self.mode_combo.currentIndexChanged.connect(self.recompute)
        self.load_example(EXAMPLES[0].key)

    @staticmethod
    def _options(*groups: tuple[str | QWidget, ...]) -> QWidget:
        """A row of labelled controls: ('Kernel', rows, '×', cols), ('Stride s', spin)."""
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(12, 0, 0, 0)
        for group in groups:
            for part in group:
                row.addWidget(QLabel(part) if isinstance(part, str) else part)
            row.addSpacing(10)
        return box

    # -- examples and edits ------------------------------------------------------------------

    @property
    def pooling(self) -> bool:
        return self.example.kind == "pooling"

    def load_example(self, key: str) -> None:
        self.stop()
        self.example = next(e for e in EXAMPLES if e.key == key)
        blocker = QSignalBlocker(self.example_combo)
        self.example_combo.setCurrentIndex(self.example_combo.findData(key))
        del blocker
        self.x = np.array(self.example.x, dtype=np.float64)
        self.w = np.array(self.example.w or ((1.0,),), dtype=np.float64)
        spins = ((self.rows_spin, self.x.shape[0]), (self.cols_spin, self.x.shape[1]),
                 (self.krows_spin, self.w.shape[0]), (self.kcols_spin, self.w.shape[1]),
                 (self.stride_spin, self.example.stride), (self.pad_spin, 0),
                 (self.pool_spin, self.example.size), (self.pool_stride_spin, self.example.stride))
        for spin, value in spins:
            spin_blocker = QSignalBlocker(spin)
            spin.setValue(value)
            del spin_blocker
        if self.pooling:
            mode_blocker = QSignalBlocker(self.mode_combo)
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(self.example.mode))
            del mode_blocker
        self.conv_options.setVisible(not self.pooling)
        self.pool_options.setVisible(self.pooling)
        self.kernel_table.setVisible(not self.pooling)
        self.note_label.setText(self.example.note)
        self.index = 0
        self.recompute()

    def _on_input_edited(self, padded: np.ndarray) -> None:
        if self.trace is None:
            return
        top, left = self.trace.offset
        self.x = padded[top:top + self.x.shape[0], left:left + self.x.shape[1]].copy()
        self.recompute()

    def _on_kernel_edited(self, matrix: np.ndarray) -> None:
        self.w = matrix
        self.recompute()

    def _on_sizes(self) -> None:
        self.x = _grown(self.x, self.rows_spin.value(), self.cols_spin.value())
        self.w = _grown(self.w, self.krows_spin.value(), self.kcols_spin.value())
        self.recompute()

    def recompute(self, *_args: object) -> None:
        try:
            if self.pooling:
                size = self.pool_spin.value()
                self.trace = ops.pool_trace(self.x, str(self.mode_combo.currentData()), size,
                                            self.pool_stride_spin.value())
            else:
                self.trace = ops.conv_trace(self.x, self.w, self.stride_spin.value(),
                                            self.pad_spin.value())
        except ops.LabError as err:
            self.trace = None
            self.output_table.set_values(np.zeros((0, 0)), editable=False)
            self.formula_label.setText(str(err).capitalize())
            self.step_label.setText("")
            self.size_label.setText("")
            self._show_inputs_without_trace()
            return
        self.index = min(self.index, len(self.trace.steps) - 1)
        self._fill_tables()
        self.show_step()

    def _show_inputs_without_trace(self) -> None:
        self.input_table.set_values(self.x)
        self.input_table.paint_cells({})
        self.kernel_table.set_values(self.w)
        self.kernel_table.paint_cells({})

    def _fill_tables(self) -> None:
        trace = self.trace
        assert trace is not None
        top, left = trace.offset
        h, w = self.x.shape
        pads = {(r, c) for r in range(trace.padded.shape[0]) for c in range(trace.padded.shape[1])
                if not (top <= r < top + h and left <= c < left + w)}
        self.input_table.set_values(trace.padded, fixed=pads)
        self._pads = pads
        self.kernel_table.set_values(self.w)
        self.output_table.set_values(trace.output, editable=False, blank=True)
        one_d = h == 1 and self.w.shape[0] == 1 and not self.pooling
        if self.pooling:
            size = self.pool_spin.value()
            self.input_caption.setText(f"Input x ({h}×{w})")
            self.output_caption.setText(f"{self.mode_combo.currentText()} pooling "
                                        f"{size}×{size}, stride {self.pool_stride_spin.value()}")
        else:
            shown = "x" if not pads else f"x padded with p = {self.pad_spin.value()}"
            self.input_caption.setText(f"Input {shown} ({w} values)" if one_d
                                       else f"Input {shown} ({h}×{w})")
            kh, kw = self.w.shape
            self.kernel_caption.setText(f"Kernel w ({kw} values)" if one_d
                                        else f"Kernel w ({kh}×{kw})")
            oh, ow = trace.output.shape
            self.output_caption.setText(f"Output y ({ow} values)" if one_d
                                        else f"Output y ({oh}×{ow})")
        self.size_label.setText("Output size  " + "    ".join(trace.size_lines))

    # -- stepping ----------------------------------------------------------------------------

    @property
    def step_count(self) -> int:
        return len(self.trace.steps) if self.trace is not None else 0

    def show_step(self) -> None:
        trace = self.trace
        if trace is None or not trace.steps:
            return
        step = trace.steps[self.index]
        window = {cell: window_colour() for cell in step.cells}
        self.input_table.paint_cells(window, self._pads)
        kernel_cells = {cell: window_colour() for cell in step.taps}
        self.kernel_table.paint_cells(kernel_cells)
        done = {s.out: ops.fmt(s.result) for s in trace.steps[:self.index + 1]}
        self.output_table.show_cells(done)
        self.output_table.paint_cells({step.out: output_colour()})
        r, c = step.out
        one_d = trace.output.shape[0] == 1 and self.x.shape[0] == 1
        where = f"y[{c}]" if one_d else f"y[{r}, {c}]"
        self.formula_label.setText(f"{where} = {step.text}")
        self.step_label.setText(f"Step {self.index + 1} of {len(trace.steps)}")
        self.previous_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < len(trace.steps) - 1)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        """Arrows and a presenter's clicker (Page Down / Page Up) step through the cells."""
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_PageDown, Qt.Key.Key_Space):
            self.next()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_PageUp):
            self.previous()
        elif key == Qt.Key.Key_Home:
            self.reset()
        else:
            super().keyPressEvent(event)

    def next(self) -> None:
        if self.index < self.step_count - 1:
            self.index += 1
            self.show_step()

    def previous(self) -> None:
        if self.index > 0:
            self.index -= 1
            self.show_step()

    def reset(self) -> None:
        self.stop()
        self.index = 0
        self.show_step()

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.stop()
            return
        if self.index >= self.step_count - 1:
            self.index = 0
            self.show_step()
        self.timer.start()
        self.play_button.setText("Pause")

    def stop(self) -> None:
        self.timer.stop()
        self.play_button.setText("▶ Play")

    def _tick(self) -> None:
        if self.index >= self.step_count - 1:
            self.stop()
            return
        self.next()
        if self.index >= self.step_count - 1:
            self.stop()
