"""The runs of this project: those of this session and those found in the runs folder.

Each run folder is read from its small text files (metrics.jsonl, final.json, the project
snapshot's name), never its weights. Ticking a run overlays its curves on the plots; a run's
graph opens in the editor; a stopped run resumes from its checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.ui.training.dataset_panel import outline_indicators
from cnnstudio.ui.training.plots import Overlay

PROJECT, METRICS, FINAL = "project.cnnproj", "metrics.jsonl", "final.json"
CHECKPOINT = "checkpoint.pt"
STATUS_TEXT = {
    "completed": "completed", "stopped": "stopped", "early_stopped": "stopped early",
    "failed": "failed", "running": "running", "paused": "paused", "loading": "starting",
    "stopping": "stopping", "interrupted": "interrupted",
}
RESUMABLE = ("stopped", "interrupted")
EXTENDABLE = ("completed", "early_stopped", *RESUMABLE)  # with a checkpoint (train/extend.py)
COLUMNS = ("Run", "Network", "Status", "Epochs", "Best val. accuracy")


@dataclass
class RunRecord:
    path: Path
    status: str
    epochs_done: int
    epochs_total: int | None
    best_val_acc: float | None
    records: list[dict[str, Any]] = field(default_factory=list)
    network: str = ""
    message: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def title(self) -> str:
        """'2026-05-01 14:03:07' for a folder named 2026-05-01_14-03-07."""
        day, _, time = self.name.partition("_")
        return f"{day} {time.replace('-', ':')}" if time and day.count("-") == 2 else self.name

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE and (self.path / PROJECT).is_file()

    @property
    def extendable(self) -> bool:
        """Ended with a finished epoch to go on from: it can train more epochs."""
        return (self.status in EXTENDABLE and (self.path / PROJECT).is_file()
                and (self.path / CHECKPOINT).is_file())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epoch records of metrics.jsonl (a line cut short by a crash is skipped)."""
    try:
        lines = (path / METRICS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), (int, float)):
            records.append(record)
    return records


def read_run(path: Path) -> RunRecord | None:
    """The record of a run folder, or None when `path` is not one."""
    if not any((path / name).exists() for name in (PROJECT, METRICS, FINAL)):
        return None
    records = read_metrics(path)
    final = _read_json(path / FINAL)
    final = final if isinstance(final, dict) else {}
    project = _read_json(path / PROJECT) if (path / PROJECT).is_file() else None
    accuracies = [r["val_acc"] for r in records if isinstance(r.get("val_acc"), (int, float))]
    best = final.get("best_val_acc")
    return RunRecord(
        path=path,
        status=str(final.get("status", "interrupted")),
        epochs_done=int(final.get("epochs_completed", len(records)) or 0),
        epochs_total=final.get("epochs") if isinstance(final.get("epochs"), int) else None,
        best_val_acc=best if isinstance(best, (int, float)) else max(accuracies, default=None),
        records=records,
        network=str(project.get("name", "")) if isinstance(project, dict) else "",
        message=str(final.get("message", "")),
    )


def _short(path: Path) -> str:
    """The path with the home folder as ~."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def scan_runs(root: Path) -> list[RunRecord]:
    """Every run folder directly under root."""
    try:
        folders = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    runs = [read_run(p) for p in folders]
    return [r for r in runs if r is not None]


class RunsPanel(QWidget):
    """A table of runs with a tick box each (overlay), Open graph and Resume."""

    overlays_changed = Signal(object)  # {key: Overlay}
    open_project_requested = Signal(object)  # Path of a run's project.cnnproj
    resume_requested = Signal(object)  # Path of a stopped run's folder
    extend_requested = Signal(object)  # Path of a finished or stopped run's folder

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root: Path | None = None
        self.runs: list[RunRecord] = []
        self._session_runs: list[Path] = []
        self._live: dict[Path, str] = {}
        self._checked: set[Path] = set()
        self._busy = False

        self.title = QLabel("Runs")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        self.tree.setToolTip("Tick runs to draw their curves beside the current run.")
        self.open_button = QPushButton("Open graph")
        self.open_button.setToolTip("Open the network this run trained, as it was then.")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a stopped run from its last finished epoch.")
        self.extend_button = QPushButton("Extend…")
        self.extend_button.setToolTip("Train a finished or stopped run more epochs, from its "
                                      "last finished epoch, in the same run folder.")
        self.refresh_button = QPushButton("Refresh")
        buttons = QHBoxLayout()
        buttons.addWidget(self.title, 1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.extend_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addWidget(self.tree, 1)

        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.open_button.clicked.connect(self._open)
        self.resume_button.clicked.connect(self._resume)
        self.extend_button.clicked.connect(self._extend)
        self.refresh_button.clicked.connect(self.refresh)
        self._update_buttons()
        outline_indicators(self.tree)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            outline_indicators(self.tree)

    # -- what is listed ----------------------------------------------------------------------

    def set_root(self, root: Path | None) -> None:
        """The runs folder of the project (changes when the project is saved elsewhere)."""
        if root != self.root:
            self.root = root
            self.refresh()

    def add_session_run(self, path: Path) -> None:
        path = Path(path)
        if path not in self._session_runs:
            self._session_runs.append(path)
        self.refresh()

    def set_live(self, path: Path | None, state: str | None) -> None:
        """The state of the run going on now (None: it ended; the files tell the rest)."""
        self._live = {} if path is None or state is None else {Path(path): state}
        self.refresh()

    def set_busy(self, busy: bool) -> None:
        """While a run goes on, no other can resume."""
        self._busy = busy
        self._update_buttons()

    def refresh(self) -> None:
        found: dict[Path, RunRecord] = {}
        for run in scan_runs(self.root) if self.root is not None else []:
            found[run.path] = run
        for path in self._session_runs:
            if path not in found:
                run = read_run(path)
                if run is not None:
                    found[path] = run
        for path, state in self._live.items():
            run = found.get(path) or RunRecord(path, state, 0, None, None)
            run.status = state
            found[path] = run
        self.runs = sorted(found.values(), key=lambda r: r.name, reverse=True)
        selected = self.selected_run()
        with QSignalBlocker(self.tree):
            self.tree.clear()
            for run in self.runs:
                item = QTreeWidgetItem(self.tree, self._row(run))
                item.setData(0, Qt.UserRole, str(run.path))
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(0, Qt.Checked if run.path in self._checked else Qt.Unchecked)
                item.setToolTip(0, str(run.path))
                item.setToolTip(2, run.message or STATUS_TEXT.get(run.status, run.status))
                for column in (3, 4):
                    item.setTextAlignment(column, Qt.AlignRight | Qt.AlignVCenter)
                if selected is not None and run.path == selected.path:
                    item.setSelected(True)
        self.title.setText(f"Runs ({len(self.runs)})" + (
            f" in {_short(self.root)}" if self.root is not None else ""))
        self.title.setToolTip(str(self.root or ""))
        self._checked &= {r.path for r in self.runs}
        self._update_buttons()
        self._emit_overlays()

    @staticmethod
    def _row(run: RunRecord) -> list[str]:
        epochs = str(run.epochs_done) + (f" / {run.epochs_total}" if run.epochs_total else "")
        best = f"{run.best_val_acc * 100:.1f} %" if run.best_val_acc is not None else "—"
        return [run.title, run.network, STATUS_TEXT.get(run.status, run.status), epochs, best]

    def item_for(self, path: Path) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if Path(item.data(0, Qt.UserRole)) == Path(path):
                return item
        return None

    def run_for(self, path: Path) -> RunRecord | None:
        return next((r for r in self.runs if r.path == Path(path)), None)

    def selected_run(self) -> RunRecord | None:
        items = self.tree.selectedItems()
        return self.run_for(Path(items[0].data(0, Qt.UserRole))) if items else None

    # -- overlays ----------------------------------------------------------------------------

    def set_checked(self, path: Path, checked: bool) -> None:
        item = self.item_for(path)
        if item is not None:
            item.setCheckState(0, Qt.Checked if checked else Qt.Unchecked)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0:
            return
        path = Path(item.data(0, Qt.UserRole))
        if item.checkState(0) == Qt.Checked:
            self._checked.add(path)
        else:
            self._checked.discard(path)
        self._emit_overlays()

    def _emit_overlays(self) -> None:
        overlays = {str(r.path): Overlay(r.title, r.records) for r in self.runs
                    if r.path in self._checked}
        self.overlays_changed.emit(overlays)

    # -- actions -----------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        run = self.selected_run()
        self.open_button.setEnabled(run is not None and (run.path / PROJECT).is_file())
        self.resume_button.setEnabled(run is not None and run.resumable and not self._busy)
        self.extend_button.setEnabled(run is not None and run.extendable and not self._busy)

    def _open(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.open_project_requested.emit(run.path / PROJECT)

    def _resume(self) -> None:
        run = self.selected_run()
        if run is not None and run.resumable and not self._busy:
            self.resume_requested.emit(run.path)

    def _extend(self) -> None:
        run = self.selected_run()
        if run is not None and run.extendable and not self._busy:
            self.extend_requested.emit(run.path)
