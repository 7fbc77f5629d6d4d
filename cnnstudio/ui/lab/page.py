"""The convolution lab: a main-window page beside the network editor.

Three tabs: Filters (classic kernels on real photographs), Step by step (the course's worked
examples, one output cell at a time) and Activations. Its computations live in cnnstudio.lab.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QTimer, Signal
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from cnnstudio.core.graph import GraphError
from cnnstudio.lab.network import add_first_layer
from cnnstudio.ui.document import Document
from cnnstudio.ui.lab.activations import ActivationsView
from cnnstudio.ui.lab.filters import FiltersView
from cnnstudio.ui.lab.stepper import StepperView

TABS = ("filters", "steps", "activations")


class LabPage(QWidget):
    block_added = Signal(str)  # the id of the Conv2D "Use as first layer" added
    status_message = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.filters.use_kernel.connect(self.use_as_first_layer)
        self._theme_timer = QTimer(self)
        self._theme_timer.setSingleShot(True)
        self._theme_timer.setInterval(0)
        self._theme_timer.timeout.connect(self.refresh_theme)

    def show_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(name))

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
