"""The export dialog's "ONNX, INT8 quantised" result: float and INT8 side by side.

The figures come from train.quantize's QuantizeReport (rows() and details(), the same text the
command line prints); this view only lays them out: a table with one row per measure and a
column per model, then the lines saying what was measured on what.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.summary import format_bytes

if TYPE_CHECKING:  # torch loads when the first quantisation starts
    from cnnstudio.train.quantize import QuantizeReport

QUANTIZED = "onnx_int8"  # the export dialog's format id
COLUMNS = ("Float", "INT8", "Change")
BUSY_TEXT = "Quantising: calibrating, then measuring both models…"


def quantize_work(run_dir: Path, out: Path, overwrite: bool) -> Any:
    """The dialog's background work for this format (train.quantize loads on the worker)."""

    def work(_progress: Any) -> QuantizeReport:
        from cnnstudio.train.quantize import quantize_run

        return quantize_run(run_dir, out, overwrite=overwrite)

    return work


def is_quantize_report(report: object) -> bool:
    """Whether a finished export is a quantisation (train.quantize is loaded by then if so)."""
    module = sys.modules.get("cnnstudio.train.quantize")
    return module is not None and isinstance(report, module.QuantizeReport)


def summary_lines(report: QuantizeReport) -> list[str]:
    """The lines above the table: where the file went, its size and how long it took."""
    return [f"Wrote {report.path}",
            f"ONNX, INT8 quantised, {format_bytes(report.int8.size_bytes)}, in "
            f"{report.seconds:.1f} s"]


class QuantizeReportView(QWidget):
    """Float vs INT8: accuracy, file size and time for one image, then what they mean."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addWidget(self.details)

    def show_report(self, report: QuantizeReport) -> None:
        rows = report.rows()
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([row[0] for row in rows])
        for r, row in enumerate(rows):
            for c, text in enumerate(row[1:]):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self._fit_height()
        lines = report.details() + ([report.input_note] if report.input_note else [])
        self.details.setText("\n".join(lines))

    def cell(self, measure: str, column: str) -> str:
        """The text shown for a measure ("File size") in a column ("INT8")."""
        for r in range(self.table.rowCount()):
            if self.table.verticalHeaderItem(r).text() == measure:
                return self.table.item(r, COLUMNS.index(column)).text()
        raise KeyError(measure)

    def _fit_height(self) -> None:
        """Exactly the rows' height: no scroll bar, no empty space below the last row."""
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(height)


__all__ = ["BUSY_TEXT", "QUANTIZED", "QuantizeReportView", "is_quantize_report", "quantize_work",
           "summary_lines"]
