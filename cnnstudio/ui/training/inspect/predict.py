"""Predict: run one image (a file, dropped or opened, or a validation image) through the trained
network and show the five most probable classes, and why (a Grad-CAM or saliency overlay,
computed on a thread: overlay.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.train.attribution import Explanation
from cnnstudio.train.inspect import predictions, top_k
from cnnstudio.ui.training.inspect.common import BackgroundTask, SampleChooser, SampleImagePage
from cnnstudio.ui.training.inspect.overlay import (
    NONE,
    ExplainControls,
    explain_work,
    explanation_text,
    heat_scale,
    overlay_image,
)
from cnnstudio.ui.training.inspect.widgets import BarList, ImageView

TOP = 5


class PredictView(SampleImagePage):
    """An image as the network sees it, and its top-5 classes as bars."""

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.setAcceptDrops(True)
        self.probabilities: np.ndarray | None = None
        self.chooser = SampleChooser(context)
        self.invert_check = QCheckBox("Invert colours")
        self.invert_check.setToolTip(
            "Swap dark and light before predicting: MNIST digits are white on black, a digit "
            "drawn on paper is black on white")
        top = QHBoxLayout()
        top.addWidget(self.chooser)
        top.addWidget(self.invert_check)
        top.addStretch(1)
        self.explain = ExplainControls()
        self.explanation: Explanation | None = None
        self._shown: np.ndarray | None = None  # the image as predicted (inverted if asked)
        self._explained: tuple[object, ...] | None = None  # what self.explanation is of
        self._explaining: tuple[object, ...] | None = None  # what the thread computes now
        self._explain_task = BackgroundTask(self)
        self._explain_task.done.connect(self._explained_now)
        self._explain_task.failed.connect(self._explain_failed)

        self.image_view = ImageView(minimum=224)
        self.image_view.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.image_caption = QLabel()
        self.image_caption.setWordWrap(True)
        self.image_caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        left = QVBoxLayout()
        left.addWidget(QLabel("As the network sees it"), 0, Qt.AlignmentFlag.AlignHCenter)
        left.addWidget(self.image_view)
        self.heat_bar = heat_scale()
        self.heat_bar.hide()
        left.addWidget(self.heat_bar)
        self.explain_label = QLabel()
        self.explain_label.setWordWrap(True)
        self.explain_label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        left.addWidget(self.explain_label)
        left.addWidget(self.image_caption)
        left.addStretch(1)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setFixedWidth(240)

        self.title_label = QLabel(f"<b>Top {TOP} classes</b>")
        self.bars = BarList()
        self.bars.setMaximumWidth(620)
        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        self.hint_label = QLabel("Drop an image file here, or open one, to see what the network "
                                 "thinks it shows.")
        self.hint_label.setWordWrap(True)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        right = QVBoxLayout()
        right.addWidget(self.title_label)
        right.addWidget(self.bars)
        right.addWidget(self.verdict_label)
        right.addStretch(1)
        right.addWidget(self.hint_label)
        right.addWidget(self.note_label)
        body = QHBoxLayout()
        body.addWidget(left_box)
        body.addSpacing(16)
        body.addLayout(right, 1)
        outer = QVBoxLayout(self.content)
        outer.addLayout(top)
        outer.addWidget(self.explain)
        outer.addLayout(body, 1)

        self.chooser.changed.connect(self.refresh)
        self.chooser.problem.connect(self._show_problem)
        self.invert_check.toggled.connect(self.refresh)
        self.explain.changed.connect(self._explain_image)
        self.explain.opacity_changed.connect(self._draw_image)

    def missing(self) -> str:
        return "" if self.context.has_model else super().missing()

    def open_path(self, path: Any) -> bool:
        """Predict an image file; False (with a message shown) if it cannot be read."""
        return self.chooser.open_path(path)

    def clear_content(self) -> None:
        self.probabilities = None
        self.bars.set_rows([])
        self._shown = self.explanation = self._explained = self._explaining = None
        self.explain_label.clear()
        self.heat_bar.hide()

    @property
    def explain_busy(self) -> bool:
        return self._explain_task.running

    def update_content(self) -> None:
        self.chooser.sync()
        self.note_label.setText(self.context.data_problem)
        image = self.chooser.image
        if image is None:
            self.clear_content()
            self.image_view.set_image(None)
            self.image_caption.clear()
            self.verdict_label.setText("Open or drop an image to predict its class")
            return
        if self.invert_check.isChecked():
            image = 255 - image
        model = self.context.model
        self._shown = image
        self.explain.set_model(self.context.graph, model)
        self.probabilities = predictions(model, image[None], self.context.mean,
                                         self.context.std, kind=self.context.main_output.kind)[0]
        self._explain_image()
        self.image_caption.setText(self.chooser.name)
        classes = self.context.classes
        indices, values = top_k(self.probabilities, TOP)
        names = [classes[i] if i < len(classes) else str(i) for i in indices]
        self.bars.set_rows([(name, float(p), f"{p:.1%}") for name, p in zip(names, values)])
        self.title_label.setText(f"<b>Top {len(indices)} classes</b> of {len(classes)}")
        truth = self.chooser.true_class()
        verdict = f"Most likely <b>{names[0]}</b> ({values[0]:.1%})"
        if truth:
            mark = "right" if truth == names[0] else "wrong"
            verdict += f"; the label is <b>{truth}</b> ({mark})"
        where = self.context.description()
        self.verdict_label.setText(verdict + (f"<br>Weights {where}" if where else ""))


    # -- the overlay -----------------------------------------------------------------------

    def _wanted(self) -> tuple[object, ...]:
        """What the overlay must show now: the model, the image, the method and the block."""
        image = self._shown
        pixels = image.tobytes() if image is not None else b""
        return (self.context.revision, pixels, self.explain.method(), self.explain.block_id())

    def _explain_image(self) -> None:
        """Show the image now, and start its map on the thread unless it is already there."""
        method = self.explain.method()
        self.heat_bar.setVisible(method != NONE and self._shown is not None)
        if self._shown is None or self.context.model is None:
            return
        wanted = self._wanted()
        if method == NONE:
            self.explanation = self._explained = None
            self.explain_label.clear()
        elif wanted not in (self._explained, self._explaining):
            self.explanation = self._explained = None
            self.explain_label.setText("Computing the map…")
            self._explaining = wanted
            self._explain_task.start(explain_work(
                self.context.model_copy(), self._shown[None], self.context.mean,
                self.context.std, method=method, block_id=self.explain.block_id(),
                kind=self.context.main_output.kind, key=wanted))
        self._draw_image()

    def _explained_now(self, result: tuple[tuple[object, ...], list[Explanation]]) -> None:
        key, found = result
        if key != self._explaining:
            return
        self._explaining = None
        if key != self._wanted():
            return  # an image or a choice that is no longer shown
        self.explanation, self._explained = found[0], key
        block_id = found[0].block_id
        graph = self.context.graph
        name = graph.block(block_id).name if graph is not None and block_id else ""
        self.explain_label.setText(explanation_text(found[0], self.context.classes, name))
        self._draw_image()

    def _explain_failed(self, message: str) -> None:
        self._explaining = None
        self.explain_label.clear()
        self._show_problem(f"Cannot compute the map: {message}")

    def _draw_image(self) -> None:
        if self._shown is None:
            return
        heat = self.explanation.heat if self.explanation is not None else None
        self.image_view.set_image(overlay_image(self._shown, heat, self.explain.opacity()))
