"""Predict: run one image (a file, dropped or opened, or a validation image) through the trained
network and show the five most probable classes."""

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

from cnnstudio.train.inspect import predictions, top_k
from cnnstudio.ui.images import image_of
from cnnstudio.ui.training.inspect.common import SampleChooser, SampleImagePage
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

        self.image_view = ImageView(minimum=224)
        self.image_view.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.image_caption = QLabel()
        self.image_caption.setWordWrap(True)
        self.image_caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        left = QVBoxLayout()
        left.addWidget(QLabel("As the network sees it"), 0, Qt.AlignmentFlag.AlignHCenter)
        left.addWidget(self.image_view)
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
        outer.addLayout(body, 1)

        self.chooser.changed.connect(self.refresh)
        self.chooser.problem.connect(self._show_problem)
        self.invert_check.toggled.connect(self.refresh)

    def missing(self) -> str:
        return "" if self.context.has_model else super().missing()

    def open_path(self, path: Any) -> bool:
        """Predict an image file; False (with a message shown) if it cannot be read."""
        return self.chooser.open_path(path)

    def clear_content(self) -> None:
        self.probabilities = None
        self.bars.set_rows([])

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
        self.probabilities = predictions(model, image[None], self.context.mean,
                                         self.context.std, kind=self.context.main_output.kind)[0]
        self.image_view.set_image(image_of(image))
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

