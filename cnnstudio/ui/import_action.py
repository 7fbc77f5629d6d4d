"""File → Import…: an ONNX file or a torchvision model becomes the open project, weights too.

The import (reading the file or tracing the model: seconds for a large network) runs on a
worker thread (BackgroundTask) while the window stays usable. Then the window asks where to
save, writes NET.cnnproj and NET.weights.pt with `importers.write_import`, and opens the project
as File → Open would. An import the importers refuse shows their list of nodes without a
block; nothing is written and the open project stays as it was. The questions are methods of
their own, so tests answer them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from cnnstudio.core.analysis import analyze
from cnnstudio.core.files import replace_refusal
from cnnstudio.core.project import EXTENSION, ProjectError, load_project
from cnnstudio.ui.training.inspect.common import BackgroundTask

ONNX_FILTER = "ONNX models (*.onnx);;All files (*)"
WEIGHTS_FILTER = "PyTorch weights (*.pth *.pt);;All files (*)"
PROJECT_FILTER = f"CNN Studio projects (*{EXTENSION})"
# torchvision classification models the menu offers (the command line takes any name)
TORCHVISION_MODELS = ("resnet18", "resnet34", "resnet50", "squeezenet1_0", "squeezenet1_1",
                      "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "vgg11",
                      "vgg16", "alexnet", "efficientnet_b0", "shufflenet_v2_x1_0")
Button = QMessageBox.StandardButton
Work = Callable[[], Any]


def written_by_cnn_studio(project_path: Path, path: Path) -> bool:
    """Whether an existing `path` may be replaced after asking: the project file at
    `project_path` is a CNN Studio project, and `path` is that file or the weights it uses."""
    try:
        project = load_project(project_path)
    except ProjectError:
        return False
    if path == project_path:
        return True
    weights = project.weights_file()
    return weights is not None and Path(weights).resolve() == path.resolve()


def replace_problem(project_path: Path) -> tuple[str | None, list[Path]]:
    """(why these files may not be written, or None; the existing files that would be replaced
    and may be after asking). Called once an import has loaded torch (importers.common)."""
    from cnnstudio.importers.common import weights_path_for

    existing = []
    for path in (project_path, weights_path_for(project_path)):
        refusal = replace_refusal(path)
        if refusal is not None:
            return f"'{path}': {refusal}", []
        if not path.exists():
            continue
        if not written_by_cnn_studio(project_path, path):
            return (f"'{path}' already exists and is not a file CNN Studio wrote for this "
                    "project; choose another name"), []
        existing.append(path)
    return None, existing


def status_text(result: Any, weights_path: Path) -> str:
    """'Imported resnet18.onnx: 71 blocks, 11,689,512 parameters; weights in …'."""
    analysis = analyze(result.graph)
    return (f"Imported {result.source}: {len(result.graph):,} blocks, "
            f"{analysis.learnable_params:,} parameters; weights in {weights_path.name}")


def _refusal_or_result(work: Work) -> Any:
    """Run the import; a refusal comes back as a value (the window lists its nodes)."""
    from cnnstudio.importers import ImportRefused

    try:
        return work()
    except ImportRefused as refused:
        return refused


class TorchvisionChoice(QDialog):
    """A torchvision model by name, and the file of its trained weights (optional)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import torchvision model")
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)  # any torchvision classification model
        self.model_combo.addItems(TORCHVISION_MODELS)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("optional: the model's .pth file; else random weights")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.choose_weights)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.weights_edit, 1)
        layout.addWidget(browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Model", self.model_combo)
        form.addRow("Weights", row)
        form.addRow(buttons)
        self.setMinimumWidth(480)

    def choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights of the model",
                                              self.weights_edit.text(), WEIGHTS_FILTER)
        if path:
            self.weights_edit.setText(path)

    def choice(self) -> tuple[str, str | None]:
        weights = self.weights_edit.text().strip()
        return self.model_combo.currentText().strip(), weights or None


class ImportFlow(QObject):
    """The window's import commands; one import at a time."""

    finished = Signal(bool)  # True when an imported project was written and opened

    def __init__(self, window: Any) -> None:
        """`window`: the MainWindow (its questions, status bar, canvas and show_project; not
        imported here, as the window imports this module)."""
        super().__init__(window)
        self.window = window
        self._task = BackgroundTask(self)
        self._task.done.connect(self._imported)
        self._task.failed.connect(self._failed)
        self._source = ""  # what is being imported: "resnet18.onnx", "torchvision resnet18"
        self._suggested = Path()
        self.actions: list[Any] = []  # the menu's import actions, disabled while one runs

    @property
    def running(self) -> bool:
        return self._task.running

    def wait(self, timeout_ms: int = 60_000) -> bool:
        return self._task.wait(timeout_ms)

    # -- questions (tests replace these) -----------------------------------------------------

    def ask_onnx_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Import ONNX model",
                                              self.window._start_folder(), ONNX_FILTER)
        return path or None

    def ask_torchvision_model(self) -> tuple[str, str | None] | None:
        dialog = TorchvisionChoice(self.window)
        try:
            accepted = dialog.exec() == QDialog.DialogCode.Accepted
            return dialog.choice() if accepted and dialog.choice()[0] else None
        finally:
            dialog.deleteLater()

    def ask_project_path(self, suggested: Path) -> str | None:
        # replacing is asked below, once for the project and its weights file
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save the imported project as", str(suggested), PROJECT_FILTER,
            options=QFileDialog.Option.DontConfirmOverwrite)
        return path or None

    def ask_replace(self, paths: Sequence[Path]) -> bool:
        names = " and ".join(f"“{p.name}”" for p in paths)
        box = QMessageBox(QMessageBox.Icon.Warning, "Replace the files?",
                          f"{names} already exist{'s' * (len(paths) == 1)} in "
                          f"{paths[0].parent}. Replace with the imported network?",
                          Button.Yes | Button.Cancel, self.window)
        box.setDefaultButton(Button.Cancel)
        return box.exec() == Button.Yes

    # -- commands ----------------------------------------------------------------------------

    def import_onnx(self) -> bool:
        """Ask for an ONNX file and start importing it; False when nothing started."""
        if self.running:
            return False
        path = self.ask_onnx_path()
        if not path:
            return False
        source = Path(path)

        def work() -> Any:
            from cnnstudio.importers import from_onnx

            return from_onnx(source)

        return self._start(work, source.name, source.with_suffix(EXTENSION))

    def import_torchvision(self) -> bool:
        """Ask for a torchvision model (and its weights) and start importing it."""
        if self.running:
            return False
        choice = self.ask_torchvision_model()
        if choice is None:
            return False
        name, weights = choice

        def work() -> Any:
            from cnnstudio.importers.torch_fx import from_torchvision

            return from_torchvision(name, weights)

        folder = Path(weights).parent if weights else Path(self.window._start_folder())
        return self._start(work, f"torchvision {name}", folder / f"{name}{EXTENSION}")

    def _start(self, work: Work, source: str, suggested: Path) -> bool:
        self._source, self._suggested = source, suggested
        self._set_busy(True)
        self.window.statusBar().showMessage(f"Importing {source}…")
        self._task.start(lambda _progress: _refusal_or_result(work))
        return True

    def _set_busy(self, busy: bool) -> None:
        for action in self.actions:
            action.setEnabled(not busy)

    # -- outcomes ----------------------------------------------------------------------------

    def _imported(self, outcome: Any) -> None:
        self._set_busy(False)
        self.window.statusBar().clearMessage()
        if not hasattr(outcome, "graph"):  # an ImportRefused
            summary = outcome.summary[:1].upper() + outcome.summary[1:]
            self.window.show_error(summary,
                                   [" ".join(part for part in (f"{name} ({op}):", advice) if part)
                                    for name, op, advice in outcome.unsupported],
                                   f"Cannot import {self._source}")
            self.finished.emit(False)
            return
        self.finished.emit(self._save_and_open(outcome))

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.window.statusBar().clearMessage()
        self.window.show_error(f"Cannot import {self._source}", [message],
                               f"Cannot import {self._source}")
        self.finished.emit(False)

    def _save_and_open(self, result: Any) -> bool:
        """Ask where to save, write the project and its weights, open it; False when the user
        cancelled or the files could not be written (the open project then stays)."""
        chosen = self.ask_project_path(self._suggested)
        if not chosen:
            return False
        path = Path(chosen) if Path(chosen).suffix else Path(chosen + EXTENSION)
        refusal, existing = replace_problem(path)
        if refusal is not None:
            self.window.show_error(f"Cannot save the imported project as {path.name}",
                                   [refusal], "Import not saved")
            return False
        if existing and not self.ask_replace(existing):
            return False
        if not self.window.confirm_discard():
            return False
        from cnnstudio.importers import write_import

        try:
            project_path, weights_path = write_import(result, path, force=bool(existing))
            project = load_project(project_path)
        except (OSError, ProjectError) as err:
            summary = getattr(err, "summary", f"Cannot save the imported project as {path}")
            problems = getattr(err, "problems", [str(err)])
            self.window.show_error(summary, problems, "Import not saved")
            return False
        self.window.show_project(project, project_path, status_text(result, weights_path))
        self.window.canvas.fit_all()
        return True


__all__ = ["ImportFlow", "TORCHVISION_MODELS", "TorchvisionChoice", "replace_problem",
           "status_text", "written_by_cnn_studio"]
