"""The kernel editor: the classic kernels in a combo, Gaussian size and σ, and a grid of up to
7×7 editable weights (non-square allowed) tinted by sign."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.lab.ops import KERNELS, fmt, kernel
from cnnstudio.ui.lab.widgets import MatrixTable, colour_of, mute, symmetric_scale

MAX_SIDE = 7
CUSTOM = "custom"


def resized(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The matrix grown or cut to rows×cols around its centre; new cells are 0."""
    out = np.zeros((rows, cols))
    r0, c0 = (rows - matrix.shape[0]) // 2, (cols - matrix.shape[1]) // 2
    for r in range(matrix.shape[0]):
        for c in range(matrix.shape[1]):
            if 0 <= r + r0 < rows and 0 <= c + c0 < cols:
                out[r + r0, c + c0] = matrix[r, c]
    return out


class KernelEditor(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = QComboBox()
        for key, info in KERNELS.items():
            self.library.addItem(info.name, key)
        self.library.addItem("Custom", CUSTOM)
        self.library.setToolTip("A classic kernel; editing a weight or the size makes it custom")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, MAX_SIDE)
        self.size_spin.setValue(5)
        self.size_spin.setToolTip("Side of the box or Gaussian blur kernel")
        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.1, 10.0)
        self.sigma_spin.setSingleStep(0.1)
        self.sigma_spin.setValue(1.0)
        self.sigma_spin.setPrefix("σ = ")
        self.rows_spin, self.cols_spin = QSpinBox(), QSpinBox()
        for spin, what in ((self.rows_spin, "Rows"), (self.cols_spin, "Columns")):
            spin.setRange(1, MAX_SIDE)
            spin.setValue(3)
            spin.setToolTip(f"{what} of the kernel (1 to {MAX_SIDE})")
        self.table = MatrixTable(cell=38)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.sum_label = QLabel()
        mute(self.sum_label)

        blur = QHBoxLayout()
        blur.setContentsMargins(0, 0, 0, 0)
        blur.addWidget(self.size_spin)
        blur.addWidget(self.sigma_spin)
        self.blur_row = QWidget()
        self.blur_row.setLayout(blur)
        shape = QHBoxLayout()
        shape.setContentsMargins(0, 0, 0, 0)
        shape.addWidget(self.rows_spin)
        shape.addWidget(QLabel("×"))
        shape.addWidget(self.cols_spin)
        shape.addStretch(1)
        form = self.form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Kernel", self.library)
        form.addRow("Blur size", self.blur_row)
        form.addRow("Size", shape)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.table, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.sum_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.description)

        self.library.currentIndexChanged.connect(self._on_library)
        self.size_spin.valueChanged.connect(self._on_library)
        self.sigma_spin.valueChanged.connect(self._on_library)
        self.rows_spin.valueChanged.connect(self._on_shape)
        self.cols_spin.valueChanged.connect(self._on_shape)
        self.table.edited.connect(self._on_cell)
        self._matrix = np.zeros((3, 3))
        self.select("vertical_edges")

    # -- state --------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return str(self.library.currentData())

    @property
    def name(self) -> str:
        return self.library.currentText()

    def matrix(self) -> np.ndarray:
        return self._matrix.copy()

    def select(self, key: str) -> None:
        """Pick a library kernel (or 'custom') as the user would."""
        self.library.setCurrentIndex(self.library.findData(key))
        self._on_library()

    def set_matrix(self, matrix: np.ndarray) -> None:
        """A custom kernel, as if typed in."""
        matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        self._set_custom(matrix)

    # -- reactions ---------------------------------------------------------------------------

    def _on_library(self, *_args: object) -> None:
        key = self.key
        sized = key != CUSTOM and KERNELS[key].sized
        self.form.setRowVisible(self.blur_row, sized)
        self.sigma_spin.setVisible(key == "gaussian_blur")
        if key == CUSTOM:
            self.description.setText("Your own weights: type in the grid, any size up to "
                                     f"{MAX_SIDE}×{MAX_SIDE}.")
            self._show()
            return
        self.description.setText(KERNELS[key].description)
        self._matrix = kernel(key, self.size_spin.value(), self.sigma_spin.value())
        self._show()

    def _set_custom(self, matrix: np.ndarray) -> None:
        self._matrix = matrix
        blocker = QSignalBlocker(self.library)
        self.library.setCurrentIndex(self.library.findData(CUSTOM))
        del blocker
        self.form.setRowVisible(self.blur_row, False)
        self.description.setText("Your own weights: type in the grid, any size up to "
                                 f"{MAX_SIDE}×{MAX_SIDE}.")
        self._show()

    def _on_shape(self) -> None:
        rows, cols = self.rows_spin.value(), self.cols_spin.value()
        if (rows, cols) != self._matrix.shape:
            self._set_custom(resized(self._matrix, rows, cols))

    def _on_cell(self, matrix: np.ndarray) -> None:
        self._set_custom(matrix)

    def _show(self) -> None:
        rows, cols = self._matrix.shape
        for spin, value in ((self.rows_spin, rows), (self.cols_spin, cols)):
            blocker = QSignalBlocker(spin)
            spin.setValue(value)
            del blocker
        self.table.set_values(self._matrix)
        scale = symmetric_scale(self._matrix)
        self.table.paint_cells({(r, c): colour_of(self._matrix[r, c], scale)
                                for r in range(rows) for c in range(cols)})
        self.table.setToolTip("\n".join("  ".join(fmt(v, 4) for v in row)
                                        for row in self._matrix))
        self.sum_label.setText(f"{rows}×{cols} kernel · sum of weights = "
                               f"{fmt(float(self._matrix.sum()), 3)}")
        self.changed.emit()
