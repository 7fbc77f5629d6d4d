"""“Extend by N epochs”: more epochs for the run that trains, without restarting it.

The page sends the request to the session (TrainingControl.request_extension); the engine
takes it after the current epoch and extends the schedule by the rule in train/extend.py.
The same number is offered when a finished run in the runs list is extended.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QWidget

DEFAULT_EPOCHS = 5
MAX_EPOCHS = 10_000


class ExtendControl(QWidget):
    """A button and a count of epochs; `requested(epochs)` on a click."""

    requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.button = QPushButton("Extend by")
        self.button.setToolTip(
            "Add epochs to the run that trains, without restarting it: they follow the current "
            "epoch, and the learning-rate schedule is extended (the status says how).")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, MAX_EPOCHS)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.epochs.setSuffix(" epochs")
        self.epochs.setAccessibleName("Epochs to add")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.button)
        layout.addWidget(self.epochs)
        self.button.clicked.connect(lambda: self.requested.emit(self.epochs.value()))
