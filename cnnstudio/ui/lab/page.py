"""The convolution lab: a main-window page beside the network editor.

A source chooser on top: "Classic kernels" shows three tabs, Filters (classic kernels on real
photographs), Step by step (the course's worked examples, one output cell at a time) and
Activations; "A trained run" shows the learned kernels of a run's Conv2D blocks (trained.py).
Its computations live in cnnstudio.lab.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.graph import GraphError
from cnnstudio.lab.network import add_first_layer
from cnnstudio.ui.document import Document
from cnnstudio.ui.lab.activations import ActivationsView
from cnnstudio.ui.lab.filters import FiltersView
from cnnstudio.ui.lab.stepper import StepperView
from cnnstudio.ui.lab.trained import TrainedLabView

TABS = ("filters", "steps", "activations")
SOURCES = (("classic", "Classic kernels"), ("trained", "A trained run…"))


class LabPage(QWidget):
    block_added = Signal(str)  # the id of the Conv2D "Use as first layer" added
    status_message = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None,
                 runs_root: Callable[[], Path] | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.filters = FiltersView()
        self.steps = StepperView()
        self.activations = ActivationsView()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.filters, "Filters")
        self.tabs.addTab(self.steps, "Step by step")
        self.tabs.addTab(self.activations, "Activations")
        self.trained = TrainedLabView(runs_root)
        self.source_combo = QComboBox()
        for key, text in SOURCES:
            self.source_combo.addItem(text, key)
        self.source_combo.setToolTip("The lab's kernels: the classic ones, or those a trained "
                                     "network learned")
        # the classic tabs scroll, so that the lab (the tallest page) never sets the window's
        # smallest size: a laptop's 1200×720 window still fits
        self.classic_area = QScrollArea()
        self.classic_area.setWidgetResizable(True)
        self.classic_area.setFrameShape(QFrame.Shape.NoFrame)
        self.classic_area.setWidget(self.tabs)
        self.sources = QStackedWidget()
        self.sources.addWidget(self.classic_area)
        self.sources.addWidget(self.trained)
        top = QHBoxLayout()
        top.setContentsMargins(8, 6, 8, 0)
        top.addWidget(QLabel("Kernels"))
        top.addWidget(self.source_combo)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.sources, 1)
        self.source_combo.currentIndexChanged.connect(self._on_source)
        self.trained.status_message.connect(self.status_message)
        self.filters.use_kernel.connect(self.use_as_first_layer)
        self._theme_timer = QTimer(self)
        self._theme_timer.setSingleShot(True)
        self._theme_timer.setInterval(0)
        self._theme_timer.timeout.connect(self.refresh_theme)

    def show_tab(self, name: str) -> None:
        self.show_source("classic")
        self.tabs.setCurrentIndex(TABS.index(name))

    def show_source(self, key: str) -> None:
        """'classic' (the three tabs) or 'trained' (a run's learned kernels)."""
        self.source_combo.setCurrentIndex(self.source_combo.findData(key))

    def source(self) -> str:
        return str(self.source_combo.currentData())

    def _on_source(self, index: int) -> None:
        trained = self.source_combo.itemData(index) == "trained"
        self.sources.setCurrentIndex(1 if trained else 0)
        if trained:
            self.trained.refresh_runs()

    def open_trained(self, network: Any, block_id: str | None = None) -> None:
        """Show a trained network's Conv2D block (train.learned_kernels.TrainedNetwork): the
        reverse of "Use as first layer", from the training page's filters."""
        self.show_source("trained")
        self.trained.set_network(network, block_id)

    def open_run(self, run_dir: Path, block_id: str | None = None) -> None:
        """Show a run folder's network (read on a worker thread) at the given block."""
        self.show_source("trained")
        self.trained.open_run_folder(Path(run_dir), block_id)

    def use_as_first_layer(self, kernel: Sequence[Sequence[float]], trainable: bool,
                           kernel_name: str = "kernel") -> str | None:
        """Add a Conv2D started from the kernel after the network's Input (one undo step)."""
        rows, cols = len(kernel), len(kernel[0])
        try:
            block = self.document.edit(
                f"Use {rows}×{cols} {kernel_name} kernel as first layer",
                lambda g: add_first_layer(g, kernel, trainable, kernel_name))
        except GraphError as err:
            self.status_message.emit(f"Cannot add the kernel to the network: {err}")
            return None
        state = "trainable" if trainable else "frozen"
        self.status_message.emit(f"Added {block.name}: a Conv2D starting from the {rows}×{cols} "
                                 f"{kernel_name} kernel ({state})")
        self.block_added.emit(block.id)
        return block.id

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._theme_timer.start()

    def refresh_theme(self) -> None:
        """Colours that do not come from the palette: plots, highlights, kernel tints."""
        self.activations.refresh_theme()
        self.steps.show_step()
        self.trained.refresh_theme()
