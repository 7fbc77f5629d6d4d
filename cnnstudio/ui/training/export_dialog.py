"""File → Export Trained Model…: a run folder to ONNX, TorchScript, a state dict or Python code.

The export (which reloads the file and checks it against PyTorch) runs on a QThread behind a busy
indicator; the dialog then shows where the file went, its size and how closely it agrees with
PyTorch. An ExportError is shown as its message, never as a traceback.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.summary import format_bytes
from cnnstudio.ui import theme
from cnnstudio.ui.training.inspect.common import BackgroundTask
from cnnstudio.ui.training.latency import LatencySection
from cnnstudio.ui.training.quantize_report import (
    BUSY_TEXT,
    QUANTIZED,
    QuantizeReportView,
    is_quantize_report,
    quantize_work,
    summary_lines,
)
from cnnstudio.ui.widgets import resize_on_screen

if TYPE_CHECKING:  # torch loads when the first export starts, not with the window's menus
    from cnnstudio.nn.export import ExportReport

# format id, menu text, file suffix, file filter, what the file is for
CHOICES = (
    ("onnx", "ONNX", ".onnx", "ONNX models (*.onnx)",
     "For ONNX Runtime, OpenCV or TensorRT; checked in ONNX Runtime."),
    ("pt2", "PyTorch ExportedProgram", ".pt2", "PyTorch ExportedPrograms (*.pt2)",
     "Load with torch.export.load(path).module(); no CNN Studio needed."),
    ("torchscript", "TorchScript", ".torchscript.pt", "TorchScript files (*.pt)",
     "Load with torch.jit.load (deprecated in PyTorch: prefer .pt2)."),
    ("state_dict", "PyTorch state dict", ".state_dict.pt", "PyTorch files (*.pt)",
     "The weights alone, for torch.load(weights_only=True)."),
    ("python", "Standalone Python code", ".py", "Python files (*.py)",
     "This network as a PyTorch nn.Module in one .py file."),
    (QUANTIZED, "ONNX, INT8 quantised", ".int8.onnx", "ONNX models (*.onnx)",
     "About 4× smaller; calibrated on training images, then compared with float."),
)
CHECKED_BY = {"onnx": "in ONNX Runtime", "pt2": "after reloading",
              "torchscript": "after reloading", "python": "running the generated module"}


def limit_text(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def describe_report(report: ExportReport) -> list[str]:
    """The lines the dialog shows after an export."""
    name = next((text for fmt, text, *_ in CHOICES if fmt == report.format), report.format)
    lines = [f"Wrote {report.path}",
             f"{name}, {format_bytes(report.size_bytes)}, in {report.seconds:.1f} s"]
    if report.max_abs_diff is not None:
        batches = ", ".join(map(str, report.batch_sizes))
        limit = report.tolerance
        where = CHECKED_BY.get(report.format, "")
        line = (f"Checked against PyTorch {where} at batch sizes {batches}: largest difference "
                f"of log-probabilities {report.max_abs_diff:.1e}")
        lines.append(line + (f" (limit {limit_text(limit)})" if limit else ""))
    elif report.format == "state_dict":
        lines.append("Read back and compared with the trained weights: identical")
    if report.ort_ms is not None and report.torch_ms is not None:
        lines.append(f"Time for one image: ONNX Runtime {report.ort_ms:.2f} ms, PyTorch "
                     f"{report.torch_ms:.2f} ms")
    if report.input_note:  # the pixel range above all: 0..255 input fails silently
        lines.append(report.input_note)
    lines.extend(report.notes)  # the older exporter wrote the file, and why
    return lines


class ExportDialog(QDialog):
    """Export a run folder; `run_dir` None lets the user pick one."""

    exported = Signal(object)  # ExportReport (train.quantize.QuantizeReport for INT8)
    failed = Signal(str)

    def __init__(self, run_dir: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Trained Model")
        self.report: ExportReport | None = None
        self.error = ""
        self._suggested = ""
        self._confirmed_replace = ""  # a path the user already agreed to replace
        self._task = BackgroundTask(self)
        self._task.done.connect(self._done)
        self._task.failed.connect(self._failed)

        self.run_edit = QLineEdit(str(run_dir) if run_dir else "")
        self.run_edit.setPlaceholderText("the folder of a training run (it holds model.pt)")
        self.run_button = QPushButton("Choose…")
        self.run_button.clicked.connect(self.choose_run)
        self.format_combo = QComboBox()
        for fmt, text, suffix, _, _ in CHOICES:
            self.format_combo.addItem(f"{text} ({suffix})", fmt)
        self.format_note = QLabel()
        self.format_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.out_edit = QLineEdit()
        self.out_button = QPushButton("Choose…")
        self.out_button.clicked.connect(self.choose_output)
        form = QFormLayout()
        form.addRow("Run folder", _row(self.run_edit, self.run_button))
        form.addRow("Format", self.format_combo)
        form.addRow("", self.format_note)
        form.addRow("Save as", _row(self.out_edit, self.out_button))

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy_label = QLabel("Exporting and checking the file…")
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy_label)
        busy_row.addWidget(self.busy, 1)
        self._show_busy(False)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export",
                                                    QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.export)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(busy_row)
        # the results scroll (an INT8 report above a latency table outgrows a laptop's screen);
        # the buttons stay below them
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.result_label)
        self.quantize_view = QuantizeReportView()  # float vs INT8, for that format only
        self.quantize_view.hide()
        body.addWidget(self.quantize_view)
        self.latency = LatencySection(self.run_edit.text, getattr(parent, "canvas", None))
        self.latency.busy_changed.connect(self._update_buttons)  # time each block, tint canvas
        body.addWidget(self.latency)
        body.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.body)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)

        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.run_edit.textChanged.connect(self._run_changed)
        self.out_edit.textChanged.connect(self._update_buttons)
        self._format_changed()

    # -- choices ---------------------------------------------------------------------------

    def _choice(self) -> tuple[str, str, str, str, str]:
        fmt = self.format_combo.currentData()
        return next(choice for choice in CHOICES if choice[0] == fmt)

    def set_format(self, fmt: str) -> None:
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt)))

    def _suggestion(self) -> str:
        run = self.run_edit.text().strip()
        if not run:
            return ""
        folder = Path(run).expanduser()
        return str(folder.parent / f"{folder.name or 'model'}{self._choice()[2]}")

    def _format_changed(self, *_args: Any) -> None:
        self.format_note.setText(self._choice()[4])
        self._follow_suggestion()

    def _run_changed(self, *_args: Any) -> None:
        self._follow_suggestion()

    def _follow_suggestion(self) -> None:
        """Keep the output name in step with the run and format until the user edits it."""
        current = self.out_edit.text().strip()
        suggestion = self._suggestion()
        if not current or current == self._suggested:
            self.out_edit.setText(suggestion)
        self._suggested = suggestion
        self._update_buttons()

    def _update_buttons(self, *_args: Any) -> None:
        self.latency.set_blocked(self._task.running)  # the one slows the other's timing
        busy = self._task.running or self.latency.running
        ready = bool(self.run_edit.text().strip() and self.out_edit.text().strip())
        self.export_button.setEnabled(ready and not busy)
        for widget in (self.run_edit, self.run_button, self.format_combo, self.out_edit,
                       self.out_button):
            widget.setEnabled(not busy)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(not busy)

    def choose_run(self) -> None:
        start = self.run_edit.text().strip() or str(Path.cwd())
        folder = QFileDialog.getExistingDirectory(self, "Choose a training run folder", start)
        if folder:
            self.run_edit.setText(folder)

    def choose_output(self) -> None:
        _, text, _, file_filter, _ = self._choice()
        path, _ = QFileDialog.getSaveFileName(self, f"Export as {text}",
                                              self.out_edit.text().strip(), file_filter)
        if path:
            self.out_edit.setText(path)
            # the save dialog has asked before choosing an existing file
            self._confirmed_replace = path if Path(path).exists() else ""

    # -- exporting -------------------------------------------------------------------------

    def _show_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        self.busy_label.setVisible(busy)

    @property
    def running(self) -> bool:
        return self._task.running

    def export(self) -> None:
        from cnnstudio.nn.export import MODEL_FILE, export_run

        run = Path(self.run_edit.text().strip()).expanduser()
        out = Path(self.out_edit.text().strip()).expanduser()
        fmt = self._choice()[0]
        self.report, self.error = None, ""
        if not (run / MODEL_FILE).exists() and run.is_dir():
            self._failed(f"{run} has no {MODEL_FILE} yet: the run has not finished an epoch; "
                         "export it after the first epoch")
            return
        replace = out.is_file() and (str(out) == self._confirmed_replace
                                     or self._ask_replace(out))
        if out.is_file() and not replace:
            return
        self.result_label.clear()
        self._show_busy(True)
        self.quantize_view.hide()
        self.busy_label.setText(BUSY_TEXT if fmt == QUANTIZED
                                else "Exporting and checking the file…")
        self._task.start(quantize_work(run, out, replace) if fmt == QUANTIZED
                         else lambda _progress: export_run(run, fmt, out, overwrite=replace))
        self._update_buttons()

    def fit_contents(self) -> None:
        """Grow the dialog so that the results show whole (every wrapped line, the tables'
        columns), as far as the screen allows; beyond that they scroll."""
        self.body.layout().activate()
        viewport = self.scroll.viewport()
        wanted_width = self.body.minimumSizeHint().width()
        width = self.width() + max(0, wanted_width - viewport.width())
        inner = viewport.width() + (width - self.width())
        wanted = (self.body.heightForWidth(inner) if self.body.hasHeightForWidth()
                  else self.body.sizeHint().height())
        height = self.height() + max(0, wanted - viewport.height())
        if (width, height) != (self.width(), self.height()):
            resize_on_screen(self, width, height)

    def _ask_replace(self, out: Path) -> bool:
        answer = QMessageBox.question(
            self, "Replace the file?",
            f"{out} already exists. Replace it with the exported model?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _done(self, report: ExportReport) -> None:
        self._show_busy(False)
        self.report = report
        self.result_label.setStyleSheet("")
        quantized = is_quantize_report(report)
        lines = [html.escape(line) for line in (summary_lines(report) if quantized
                                                else describe_report(report))]
        if quantized:
            self.quantize_view.show_report(report)
        self.quantize_view.setVisible(quantized)
        self.result_label.setText("<b>" + lines[0] + "</b><br>" + "<br>".join(lines[1:]))
        self.fit_contents()
        self._update_buttons()
        self.exported.emit(report)

    def _failed(self, message: str) -> None:
        self._show_busy(False)
        self.error = message
        colour = theme.current().error.name()
        self.result_label.setStyleSheet(f"color: {colour};")
        self.result_label.setText("<b>Not exported.</b><br>"
                                  + html.escape(message).replace("\n", "<br>"))
        self.fit_contents()
        self._update_buttons()
        self.failed.emit(message)

    def reject(self) -> None:
        if not self._task.running and not self.latency.running:  # the export finishes first
            super().reject()


def _row(edit: QLineEdit, button: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    layout.addWidget(button)
    return row


def open_export_dialog(window: QWidget) -> ExportDialog:
    """The dialog for the window's latest run (its training page's session), else for a run
    folder the user picks."""
    page = getattr(window, "training_page", None)
    session = getattr(page, "session", None)
    run_dir = getattr(session, "run_dir", None)
    dialog = ExportDialog(run_dir, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


__all__ = ["CHOICES", "ExportDialog", "describe_report", "open_export_dialog"]
