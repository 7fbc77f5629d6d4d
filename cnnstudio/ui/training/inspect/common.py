"""The shared behaviour of the inspection views: a page that shows a placeholder until it can
show something and refreshes only while visible, the chooser of the image to look at, and work
on a QThread whose results arrive on the GUI thread.

Torch is imported only when an image is first needed: the export dialog uses BackgroundTask, and
the window builds its menus before torch is loaded.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QStackedLayout,
    QWidget,
)

from cnnstudio.ui import theme, torch_threads
from cnnstudio.ui.images import IMAGE_FILTER, image_paths
from cnnstudio.ui.training.inspect.widgets import PLACEHOLDER, WAITING, Placeholder


class InspectPage(QWidget):
    """A view of the context: a placeholder until it can show something, and refreshes that
    are throttled and wait until the view is visible (a hidden tab costs nothing per epoch)."""

    REFRESH_MS = 250

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._pages = QStackedLayout(self)
        self.placeholder = Placeholder()
        self.content = QWidget()
        self._pages.addWidget(self.placeholder)
        self._pages.addWidget(self.content)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh)
        self._dirty = True
        context.model_changed.connect(self.schedule_refresh)
        context.data_changed.connect(self.schedule_refresh)

    def missing(self) -> str:
        """Why the view cannot show anything now ('' when it can)."""
        if not self.context.has_model:
            return WAITING if self.context.data is not None else PLACEHOLDER
        if not self.context.ready:
            problem = self.context.data_problem
            return problem or PLACEHOLDER
        return ""

    def showing_placeholder(self) -> bool:
        return self._pages.currentWidget() is self.placeholder

    def schedule_refresh(self) -> None:
        self._dirty = True
        if self.isVisible():
            self._timer.start(self.REFRESH_MS)

    def refresh(self) -> None:
        """Redraw now from the context (also the on-demand refresh)."""
        self._timer.stop()
        self._dirty = False
        why = self.missing()
        if why:
            self.placeholder.setText(why)
            self._pages.setCurrentWidget(self.placeholder)
            self.clear_content()
            return
        self._pages.setCurrentWidget(self.content)
        self.update_content()

    def clear_content(self) -> None:
        """Forget what was drawn (the model or data went away)."""

    def update_content(self) -> None:
        raise NotImplementedError

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self._dirty:
            self._timer.start(0)


# -- work on a thread ------------------------------------------------------------------------

Work = Callable[[Callable[[int, int], None]], object]
_RUNNING: set[QThread] = set()


class SampleImagePage(InspectPage):
    """A page that looks at one sample image (`self.chooser`) and reports problems in
    `self.note_label`; image files dropped on it become the sample."""

    chooser: SampleChooser
    note_label: Any

    def _show_problem(self, message: str) -> None:
        self.note_label.setStyleSheet(f"color: {theme.current().error.name()};")
        self.note_label.setText(message)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if image_paths(event) and self.context.has_model:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        paths = image_paths(event)
        if paths:
            self.chooser.open_path(paths[0])
            event.acceptProposedAction()


class _WorkThread(QThread):
    progress = Signal(int, int)

    def __init__(self, work: Work) -> None:
        super().__init__()
        self._work = work
        self.outcome: tuple[str, object] = ("failed", "the work did not run")

    def run(self) -> None:
        torch_threads.helper_thread()
        try:
            self.outcome = ("done", self._work(self.progress.emit))
        except Exception as err:  # shown in the view as a message, never a traceback
            self.outcome = ("failed", str(err).strip() or type(err).__name__)


class BackgroundTask(QObject):
    """Runs one piece of work at a time on a QThread; its outcome arrives on the GUI thread once
    the thread has ended (so `running` is False by then).

    Starting while work runs queues the new work (the latest only) and drops the running work's
    outcome, so a burst of requests costs at most two runs."""

    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: _WorkThread | None = None
        self._pending: Work | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, work: Work) -> None:
        if self._thread is not None:
            self._pending = work
            return
        thread = _WorkThread(work)
        thread.progress.connect(self._on_progress)
        thread.finished.connect(self._on_finished)
        self._thread = thread
        _RUNNING.add(thread)
        thread.start()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        thread = self._thread
        return thread is None or thread.wait(timeout_ms)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self.sender() is self._thread and self._pending is None:
            self.progress.emit(done, total)

    @Slot()
    def _on_finished(self) -> None:
        thread = self.sender()
        if isinstance(thread, QThread):
            _RUNNING.discard(thread)
            thread.deleteLater()
        if not isinstance(thread, _WorkThread) or thread is not self._thread:
            return
        self._thread = None
        pending, self._pending = self._pending, None
        if pending is not None:
            self.start(pending)
            return
        kind, value = thread.outcome
        if kind == "done":
            self.done.emit(value)
        else:
            self.failed.emit(str(value))


def wait_for_background_work(timeout_ms: int = 30_000) -> None:
    """Let every running piece of work end (at exit: Qt aborts on a running QThread)."""
    for thread in list(_RUNNING):
        thread.wait(timeout_ms)


atexit.register(wait_for_background_work)


class SampleChooser(QWidget):
    """Which image a view runs through the network: a validation image (number or random) or
    an image file (opened or dropped), converted to the network's input as training would."""

    changed = Signal()
    problem = Signal(str)

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.image: np.ndarray | None = None  # uint8 C×H×W as the network takes it
        self.label: int | None = None
        self.index: int | None = None
        self.name = ""
        self._file: Path | None = None
        self._rng = np.random.default_rng()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.spin = QSpinBox()
        self.spin.setPrefix("validation image ")
        self.spin.setSpecialValueText("an image file")  # the value -1, while a file is shown
        self.spin.setToolTip("The number of a validation image (the first is 0)")
        self.spin.setKeyboardTracking(False)
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("Pick a validation image at random")
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Run an image file through the network (or drop one here)")
        for widget in (self.spin, self.random_button, self.open_button):
            layout.addWidget(widget)
        self.spin.valueChanged.connect(self.use_validation)
        self.random_button.clicked.connect(self.pick_random)
        self.open_button.clicked.connect(self.ask_open)

    def sync(self) -> None:
        """Follow the context: the validation range, a file re-read for a new input shape."""
        count = self._validation_count()
        self.spin.setEnabled(count > 0)
        self.random_button.setEnabled(count > 0)
        self.open_button.setEnabled(self.context.has_model)
        shape = self.context.input_shape
        stale = self.image is None or shape is None or tuple(self.image.shape) != shape
        if self._file is not None and stale and not self._read(self._file):
            self._file = None
        self._set_spin(count)
        if self._file is None:
            if count:
                self._take_validation(self.spin.value())
            else:
                self.image, self.label, self.index, self.name = None, None, None, ""

    def _set_spin(self, count: int) -> None:
        """The range of validation numbers, and -1 ('an image file') while a file is shown."""
        value = -1 if self._file is not None and count else max(self.spin.value(), 0)
        self.spin.blockSignals(True)
        self.spin.setSpecialValueText("an image file" if count else "")
        self.spin.setRange(-1 if count else 0, max(0, count - 1))
        self.spin.setValue(value)  # also redraws the text: setRange alone can leave the
        self.spin.blockSignals(False)  # special text of the old minimum showing

    def _validation_count(self) -> int:
        data = self.context.data
        return int(data.num_val) if data is not None else 0

    def _take_validation(self, index: int) -> None:
        from cnnstudio.train.inspect import validation_images, validation_labels

        data = self.context.data
        self.image = validation_images(data, [index])[0]
        self.label = int(validation_labels(data)[index])
        self.index, self.name = index, f"validation image {index}"

    def use_validation(self, index: int) -> None:
        if self._validation_count() == 0:
            return
        if index < 0:  # stepped down to 'an image file'
            if self._file is None:
                self.spin.setValue(0)
            return
        self._file = None
        self._take_validation(int(index))
        self.changed.emit()

    def show_validation(self, index: int) -> None:
        """Show validation image `index` (also when it is the number already in the box)."""
        if index == self.spin.value():
            self.use_validation(index)
        else:
            self.spin.setValue(index)

    def pick_random(self) -> None:
        count = self._validation_count()
        if count:
            self.show_validation(int(self._rng.integers(count)))

    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Use an image file; False (and `problem` emitted) when it cannot be read."""
        if self._read(Path(path)):
            self._file = Path(path)
            self._set_spin(self._validation_count())
            self.changed.emit()
            return True
        return False

    def _read(self, path: Path) -> bool:
        from cnnstudio.train.inspect import ImageFileError, load_image_file

        shape = self.context.input_shape
        if shape is None:
            self.problem.emit("There is no trained network to run the image through yet")
            return False
        try:
            self.image = load_image_file(path, shape)
        except ImageFileError as err:
            self.problem.emit(str(err))
            return False
        kind = {1: "grey", 3: "colour", 4: "colour with alpha"}.get(shape[0], "")
        self.label, self.index = None, None
        self.name = f"{path.name} (as {shape[1]}×{shape[2]} {kind})"
        return True

    def true_class(self) -> str:
        classes = self.context.classes
        if self.label is None or not 0 <= self.label < len(classes):
            return ""
        return classes[self.label]
