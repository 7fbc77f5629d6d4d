"""Grad-CAM and saliency overlays in the inspection views: the controls (method, block, opacity),
the colour scale, and the work that computes the maps on a thread (train/attribution.py).

The maps are computed once per image, method and block; moving the opacity slider only mixes
the ready map with the image again, on the GUI thread (a NumPy step per image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from cnnstudio.core.analysis import analyze
from cnnstudio.train.attribution import (
    GRADCAM,
    HEAT_LUT,
    METHOD_NAMES,
    SALIENCY,
    Explanation,
    coarsest_useful,
    conv_blocks,
    explain,
    overlay,
)
from cnnstudio.ui.images import image_of, qimage
from cnnstudio.ui.training.inspect.widgets import ColourBar

NONE = ""  # the method combo's "no overlay"
DEFAULT_OPACITY = 50  # percent
METHOD_TIPS = {
    NONE: "Show the image alone",
    GRADCAM: "Grad-CAM: which regions of the chosen convolution block's output raised the score "
             "of the class (coarse where the block's maps are small)",
    SALIENCY: "Saliency: how much each input pixel changes the score of the class (the gradient "
              "at the pixel)",
}


def overlay_image(image: np.ndarray, heat: np.ndarray | None, opacity: float) -> QImage:
    """A uint8 C×H×W image with its map over it (the image alone without a map)."""
    if heat is None or opacity <= 0:
        return image_of(image)
    return qimage(overlay(image, heat, opacity))


def heat_scale(parent: QWidget | None = None) -> ColourBar:
    """The colour scale of the maps: low to high share of the evidence for the class."""
    bar = ColourBar(parent)
    bar.set_scale(HEAT_LUT, "low", "high")
    bar.setToolTip("Each map is scaled to its own maximum: high = the pixels that most raised "
                   "the class's score")
    return bar


def explain_work(model: Any, images: np.ndarray, mean: np.ndarray, std: np.ndarray, *,
                 method: str, block_id: str | None, kind: str,
                 key: object) -> Callable[[Callable[[int, int], None]], object]:
    """Work for a BackgroundTask: (key, list of Explanation) for the images (N×C×H×W)."""
    def work(progress: Callable[[int, int], None]) -> object:
        found = explain(model, images, mean, std, method=method, block_id=block_id, kind=kind)
        progress(len(found), len(found))
        return key, found

    return work


class ExplainControls(QWidget):
    """Explain: [method] [block] Opacity [slider]. `changed` after the method or block,
    `opacity_changed` after the slider."""

    changed = Signal()
    opacity_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.method_combo = QComboBox()
        for method, text in ((NONE, "No overlay"), (GRADCAM, METHOD_NAMES[GRADCAM]),
                             (SALIENCY, METHOD_NAMES[SALIENCY])):
            self.method_combo.addItem(text, method)
            self.method_combo.setItemData(self.method_combo.count() - 1, METHOD_TIPS[method],
                                          Qt.ItemDataRole.ToolTipRole)
        self.method_combo.setToolTip("Why did the network predict that? Colour the pixels that "
                                     "raised the score of the predicted class")
        self.block_combo = QComboBox()
        self.block_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.block_combo.setToolTip("The convolution block Grad-CAM looks at (default: the last "
                                    "one before the classifier)")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(DEFAULT_OPACITY)
        self.opacity_slider.setFixedWidth(120)
        self.opacity_slider.setToolTip("How strongly the map covers the image")
        self.opacity_label = QLabel("Opacity")
        layout.addWidget(QLabel("Explain:"))
        layout.addWidget(self.method_combo)
        layout.addWidget(self.block_combo)
        layout.addWidget(self.opacity_label)
        layout.addWidget(self.opacity_slider)
        layout.addStretch(1)
        self._graph: Any = None
        self._blocks: list[str] = []
        self.method_combo.currentIndexChanged.connect(self._method_picked)
        self.block_combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.opacity_slider.valueChanged.connect(lambda _v: self.opacity_changed.emit())
        self._method_picked()

    def method(self) -> str:
        return str(self.method_combo.currentData() or NONE)

    def block_id(self) -> str | None:
        """The chosen Conv2D block (Grad-CAM only)."""
        if self.method() != GRADCAM:
            return None
        data = self.block_combo.currentData()
        return str(data) if data else None

    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    def set_model(self, graph: Any, model: Any) -> None:
        """The Conv2D blocks of a trained network by name; the default is
        attribution.coarsest_useful's, a block chosen before stays chosen while the network
        has it."""
        blocks = conv_blocks(model) if model is not None else []
        if graph is self._graph and blocks == self._blocks:
            return
        previous = self.block_combo.currentData()
        self._graph, self._blocks = graph, blocks
        self.block_combo.blockSignals(True)
        self.block_combo.clear()
        shapes = analyze(graph).blocks if graph is not None else {}
        sizes: dict[str, tuple[int, int]] = {}
        for block_id in blocks:
            name = graph.block(block_id).name if graph is not None else block_id
            shape = tuple(shapes[block_id].output_shape or ()) if block_id in shapes else ()
            size = ""
            if len(shape) == 3:
                sizes[block_id] = (shape[1], shape[2])
                size = f" ({shape[1]}×{shape[2]} map)"
            self.block_combo.addItem(f"{name}{size}", block_id)
        default = coarsest_useful(blocks, sizes)
        index = self.block_combo.findData(previous if previous in blocks else default)
        self.block_combo.setCurrentIndex(max(0, index))
        self.block_combo.blockSignals(False)
        gradcam = self.method_combo.findData(GRADCAM)
        item = self.method_combo.model().item(gradcam)  # type: ignore[attr-defined]
        item.setEnabled(bool(blocks))
        if not blocks and self.method() == GRADCAM:
            self.method_combo.setCurrentIndex(self.method_combo.findData(SALIENCY))
        self._method_picked()

    def _method_picked(self, _index: int = -1) -> None:
        method = self.method()
        self.block_combo.setVisible(method == GRADCAM)
        self.block_combo.setEnabled(bool(self._blocks))
        self.opacity_label.setEnabled(method != NONE)
        self.opacity_slider.setEnabled(method != NONE)
        if _index >= 0:
            self.changed.emit()


def explanation_text(found: Explanation, classes: Sequence[str], block_name: str) -> str:
    """One line under the image: what the map explains."""
    name = classes[found.target] if found.target < len(classes) else str(found.target)
    where = f" of {block_name}" if block_name else ""
    if found.empty:
        return (f"{METHOD_NAMES[found.method]}{where}: nothing here speaks for {name}; try an "
                "earlier block")
    return f"{METHOD_NAMES[found.method]}{where} for <b>{name}</b>"
