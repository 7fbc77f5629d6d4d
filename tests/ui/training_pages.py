"""What the Training page tests share: a small network, a real mouse click, and the wait that
settles a page after its test. The page and its data come from tests/ui/conftest.py
(`make_page`, `tiny_npz`)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QThreadPool
from PySide6.QtWidgets import QCheckBox, QWidget

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.ui.training.page import TrainingPage

LONG = 60_000


def tiny_project(spec: str, epochs: int = 2, input_shape: tuple[int, int, int] = (1, 28, 28),
                 classes: int = 10) -> Project:
    c, h, w = input_shape
    g = Graph()
    g.chain([("Input", {"channels": c, "height": h, "width": w}),
             ("Conv2D", {"filters": 4, "kernel": 3, "activation": "relu"}),
             ("Pooling", {}), ("Flatten", {}), ("Dense", {"units": classes}), ("Output", {})])
    return Project.new(g, name="tiny", dataset={"spec": spec},
                       training={"epochs": epochs, "batch_size": 32, "learning_rate": 0.01})


def settle(page: TrainingPage) -> None:
    from cnnstudio.ui.training.inspect.views import wait_for_background_work

    page.stop_and_wait()
    if page.failure_box is not None:
        page.failure_box.done(0)
    QThreadPool.globalInstance().waitForDone(30_000)
    wait_for_background_work()


def click(qtbot, widget: QWidget) -> None:
    assert widget.isEnabled() and widget.isVisible(), widget
    if isinstance(widget, QCheckBox):  # on its box: the row may be wider than the text
        qtbot.mouseClick(widget, Qt.LeftButton, pos=QPoint(8, widget.height() // 2))
    else:
        qtbot.mouseClick(widget, Qt.LeftButton)
