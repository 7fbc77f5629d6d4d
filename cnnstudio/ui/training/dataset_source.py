"""The Dataset tab's source rows, built from the declarations of core.sources.

A combo lists every source; under it come as many path rows as the most paths a source takes,
each labelled, with its placeholder and its Browse dialog taken from the chosen source's
declaration, and the "Download if missing" box for the sources that can download. Nothing here
names a kind of source: a source declared in core.sources appears here as declared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from cnnstudio.core.sources import (
    SOURCES,
    SourceArgument,
    SourceKind,
    SourceSpec,
    format_spec,
    source,
)


class PathRow(QWidget):
    """A line edit with a Browse button; `chosen` on Enter, focus out or a pick."""

    chosen = Signal()

    def __init__(self, browse: Callable[[], str | None]) -> None:
        super().__init__()
        self.line = QLineEdit()
        self.button = QPushButton("Browse…")
        self._browse = browse
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line, 1)
        layout.addWidget(self.button)
        self.line.editingFinished.connect(self.chosen)
        self.button.clicked.connect(self._on_browse)

    def _on_browse(self) -> None:
        path = self._browse()
        if path:
            self.line.setText(path)
            self.chosen.emit()

    @property
    def text(self) -> str:
        return self.line.text().strip()


class SourceRows(QObject):
    """The source combo, its path rows and the download box, added to a form.

    Sources that take the same number of paths share what was typed, as one row did before
    the rows were declared: a folder stays when MNIST becomes CIFAR-10, while the two IDX files
    are kept apart from it.
    """

    kind_activated = Signal()  # the user chose a source in the combo
    path_chosen = Signal()  # the user typed (Enter, focus out) or browsed a path

    def __init__(self, owner: QWidget, form: QFormLayout) -> None:
        super().__init__(owner)
        self._owner = owner
        self.combo = QComboBox()
        for index, kind in enumerate(SOURCES):
            self.combo.addItem(kind.label, kind.id)
            self.combo.setItemData(index, kind.help, Qt.ToolTipRole)
        most = max(len(kind.arguments) for kind in SOURCES)
        self.rows = [PathRow(lambda i=i: self._browse(i)) for i in range(most)]
        self.labels = [QLabel() for _ in range(most)]
        self.download = QCheckBox("Download if missing")
        self.download.setToolTip("Let torchvision fetch the dataset into the folder when it "
                                 "is not there (needs an internet connection).")
        form.addRow("Source", self.combo)
        for label, row in zip(self.labels, self.rows):
            form.addRow(label, row)
        form.addRow("", self.download)
        self._count = 0  # paths the shown rows hold
        self._typed: dict[int, list[str]] = {}  # what was typed for sources taking n paths
        self.combo.activated.connect(self._on_activated)
        for row in self.rows:
            row.chosen.connect(self.path_chosen)
        self._show()

    # -- questions (tests replace these) ---------------------------------------------------

    def ask_folder(self, title: str, start: str) -> str | None:
        path = QFileDialog.getExistingDirectory(self._owner, title, start)
        return path or None

    def ask_file(self, title: str, start: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self._owner, title, start, filters)
        return path or None

    # -- the spec ----------------------------------------------------------------------------

    @property
    def kind(self) -> SourceKind:
        return source(str(self.combo.currentData()))

    def shown_rows(self) -> list[tuple[QLabel, PathRow]]:
        """The label and row of each path the chosen source takes, in order."""
        return list(zip(self.labels, self.rows))[: len(self.kind.arguments)]

    def spec(self) -> str | None:
        """The spec the widgets describe; None while a path is missing. SpecError for a path
        that no spec can hold (a comma in one of the IDX files)."""
        paths = tuple(row.text for _label, row in self.shown_rows())
        if not all(paths):
            return None
        return format_spec(SourceSpec(self.kind.id, paths))

    def missing_text(self) -> str:
        """What to choose before the source is complete: 'the folder', 'the .npz file'."""
        return " and ".join(f"the {argument.noun}" for argument in self.kind.arguments)

    def show_spec(self, spec: SourceSpec) -> None:
        """Show a spec (the project's): its source in the combo, its paths in the rows."""
        with QSignalBlocker(self.combo):
            self.combo.setCurrentIndex(max(self.combo.findData(spec.kind), 0))
        self._switch_to(len(spec.paths))
        for row, path in zip(self.rows, spec.paths):
            row.line.setText(path)
        self._show()

    def _on_activated(self, _index: int) -> None:
        self._switch_to(len(self.kind.arguments))
        self._show()
        self.kind_activated.emit()

    def _switch_to(self, count: int) -> None:
        if count == self._count:
            return
        self._typed[self._count] = [row.text for row in self.rows[: self._count]]
        typed = self._typed.get(count, [])
        for index, row in enumerate(self.rows):
            row.line.setText(typed[index] if index < len(typed) else "")
        self._count = count

    def _show(self) -> None:
        arguments: tuple[SourceArgument, ...] = self.kind.arguments
        for index, (label, row) in enumerate(zip(self.labels, self.rows)):
            shown = index < len(arguments)
            label.setVisible(shown)
            row.setVisible(shown)
            if shown:
                label.setText(arguments[index].label)
                row.line.setPlaceholderText(arguments[index].noun)
        self.download.setVisible(self.kind.can_download)

    def _browse(self, index: int) -> str | None:
        argument = self.kind.arguments[index]
        start = self.rows[index].text or str(Path.home())
        if argument.is_folder:
            return self.ask_folder(argument.title, start)
        return self.ask_file(argument.title, start, argument.filters)
