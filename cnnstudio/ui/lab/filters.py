"""The Filters tab: a photograph, a kernel, the convolution output (a diverging colour scale for
values of both signs, grey for values of one sign), the output after an activation, and its
pooling, with the output sizes written out."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from cnnstudio.lab import ops
from cnnstudio.ui.images import IMAGE_FILTER, qimage
from cnnstudio.ui.lab.images import LabImageError, available_samples, load_image, sample_path
from cnnstudio.ui.lab.kernel_editor import KernelEditor
from cnnstudio.ui.lab.widgets import MapView, Tile, colour_scale, mute, titled_column

ACTIVATION_CHOICES = (("none", "none"), ("relu", "ReLU"), ("leaky_relu", "Leaky ReLU"),
                      ("elu", "ELU"))
POOL_LABELS = {"max": "max", "average": "average", "sum": "sum", "l2": "L2 (√Σx²)"}
PADDING_LABELS = {"valid": "valid (no padding)", "same": "same (keep size)",
                  "full": "full (pad k − 1)", "explicit": "explicit p"}
CHANNELS = ("R", "G", "B")


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _pair_row(first: QWidget, second: QWidget) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(first)
    layout.addWidget(QLabel("×"))
    layout.addWidget(second)
    layout.addStretch(1)
    return row


class FiltersView(QWidget):
    """Everything recomputes together (one zero-delay timer per burst of changes)."""

    use_kernel = Signal(object, bool, str)  # kernel matrix, trainable, kernel name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rgb = np.zeros((8, 8, 3), np.uint8)
        self.image_name = ""
        self.conv_output = np.zeros((0, 0))
        self.activated = np.zeros((0, 0))
        self.pooled = np.zeros((0, 0))
        self.seconds = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.recompute)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self._build_input(), 4)
        layout.addWidget(self._build_kernel(), 4)
        layout.addWidget(self._build_output(), 7)
        layout.addWidget(self._build_after(), 4)
        names = available_samples()
        if names:
            self.open_sample(names[1] if len(names) > 1 else names[0])

    # -- the four columns --------------------------------------------------------------------

    def _build_input(self) -> QGroupBox:
        box, layout = titled_column("1 · Input image")
        self.sample_combo = QComboBox()
        for name in available_samples():
            self.sample_combo.addItem(name.capitalize(), name)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open an image file (or drop one on the picture)")
        row = QHBoxLayout()
        row.addWidget(self.sample_combo, 1)
        row.addWidget(self.open_button)
        layout.addLayout(row)
        self.image_label = QLabel()
        mute(self.image_label)
        self.image_label.setWordWrap(True)
        self.input_view = MapView(accept_files=True)
        self.grey_radio = QRadioButton("Grey-scale")
        self.rgb_radio = QRadioButton("Each of R, G, B")
        self.grey_radio.setChecked(True)
        self.channel_group = QButtonGroup(self)
        self.channel_group.addButton(self.grey_radio)
        self.channel_group.addButton(self.rgb_radio)
        channels = QHBoxLayout()
        channels.addWidget(self.grey_radio)
        channels.addWidget(self.rgb_radio)
        channels.addStretch(1)
        layout.addLayout(channels)
        layout.addWidget(self.image_label)
        layout.addWidget(self.input_view)
        layout.addStretch(1)
        self.sample_combo.activated.connect(
            lambda i: self.open_sample(str(self.sample_combo.itemData(i))))
        self.open_button.clicked.connect(self.open_dialog)
        self.input_view.file_dropped.connect(self.open_file)
        self.grey_radio.toggled.connect(self.schedule)
        return box

    def _build_kernel(self) -> QGroupBox:
        box, layout = titled_column("2 · Kernel and sliding")
        self.kernel_editor = KernelEditor()
        layout.addWidget(self.kernel_editor)
        self.stride_h, self.stride_w = (_spin(1, 8, 1, f"Stride, {a}") for a in
                                        ("vertical", "horizontal"))
        self.padding_combo = QComboBox()
        for mode in ops.PADDING_MODES:
            self.padding_combo.addItem(PADDING_LABELS[mode], mode)
        self.pad_h, self.pad_w = (_spin(0, 8, 1, f"Explicit padding p, {a}") for a in
                                  ("top and bottom", "left and right"))
        self.dilation_h, self.dilation_w = (_spin(1, 4, 1, f"Dilation, {a}") for a in
                                            ("vertical", "horizontal"))
        form = self.slide_form = QFormLayout()
        form.addRow("Stride s", _pair_row(self.stride_h, self.stride_w))
        form.addRow("Padding", self.padding_combo)
        self.explicit_row = _pair_row(self.pad_h, self.pad_w)
        form.addRow("p", self.explicit_row)
        form.addRow("Dilation d", _pair_row(self.dilation_h, self.dilation_w))
        layout.addLayout(form)
        self.size_label = QLabel()
        self.size_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.size_label.setWordWrap(True)
        layout.addWidget(self.size_label)
        self.trainable_check = QCheckBox("trainable")
        self.trainable_check.setToolTip("Off: the kernel stays fixed while the network trains")
        self.use_button = QPushButton("Use as first layer")
        self.use_button.setToolTip("Add a Conv2D with this kernel right after the network's "
                                   "Input, to compare it with learned filters")
        row = QHBoxLayout()
        row.addWidget(self.use_button, 1)
        row.addWidget(self.trainable_check)
        layout.addStretch(1)
        layout.addLayout(row)
        self.kernel_editor.changed.connect(self.schedule)
        for spin in (self.stride_h, self.stride_w, self.pad_h, self.pad_w, self.dilation_h,
                     self.dilation_w):
            spin.valueChanged.connect(self.schedule)
        self.padding_combo.currentIndexChanged.connect(self._on_padding)
        self.use_button.clicked.connect(self._on_use)
        self._on_padding()
        return box

    def _build_output(self) -> QGroupBox:
        box, layout = titled_column("3 · Convolution output")
        self.time_label = QLabel()
        mute(self.time_label)
        layout.addWidget(self.time_label)
        self.output_view = MapView()
        layout.addWidget(self.output_view)
        hint = QLabel("Values of both signs: blue is negative, white 0, red positive. Values of "
                      "one sign (a blur, the output of ReLU): grey, from black for the lowest "
                      "to white for the highest. Values beyond the ends of the bar (≤, ≥) take "
                      "the end colour. Hover over any picture to read its values; drop an "
                      "image file on the photograph to use it.")
        hint.setWordWrap(True)
        layout.addWidget(mute(hint))
        layout.addStretch(1)
        return box

    def _build_after(self) -> QGroupBox:
        box, layout = titled_column("4 · Activation and pooling")
        self.activation_combo = QComboBox()
        for key, label in ACTIVATION_CHOICES:
            self.activation_combo.addItem(label, key)
        self.activation_combo.setCurrentIndex(self.activation_combo.findData("relu"))
        self.eps_spin = QDoubleSpinBox()
        self.eps_spin.setRange(0.0, 1.0)
        self.eps_spin.setSingleStep(0.01)
        self.eps_spin.setValue(0.1)
        self.eps_spin.setPrefix("ε = ")
        self.alpha_spin = QDoubleSpinBox()
        self.alpha_spin.setRange(0.0, 100.0)
        self.alpha_spin.setValue(1.0)
        self.alpha_spin.setPrefix("α = ")
        row = QHBoxLayout()
        row.addWidget(self.activation_combo, 1)
        row.addWidget(self.eps_spin)
        row.addWidget(self.alpha_spin)
        layout.addLayout(row)
        self.activated_view = MapView(columns=2)
        layout.addWidget(self.activated_view)
        self.pool_combo = QComboBox()
        for mode in ops.POOL_MODES:
            self.pool_combo.addItem(POOL_LABELS[mode], mode)
        self.pool_size = _spin(1, 8, 2, "Pool size")
        self.pool_stride = _spin(1, 8, 2, "Pool stride")
        pool_row = QHBoxLayout()
        pool_row.addWidget(QLabel("Pool"))
        pool_row.addWidget(self.pool_combo, 1)
        pool_row.addWidget(self.pool_size)
        pool_row.addWidget(QLabel("stride"))
        pool_row.addWidget(self.pool_stride)
        layout.addLayout(pool_row)
        self.pool_label = QLabel()
        self.pool_label.setWordWrap(True)
        layout.addWidget(self.pool_label)
        self.pooled_view = MapView(columns=2)
        layout.addWidget(self.pooled_view)
        layout.addStretch(1)
        self.activation_combo.currentIndexChanged.connect(self._on_activation)
        for spin in (self.eps_spin, self.alpha_spin):
            spin.valueChanged.connect(self.schedule)
        self.pool_combo.currentIndexChanged.connect(self.schedule)
        self.pool_size.valueChanged.connect(self.schedule)
        self.pool_stride.valueChanged.connect(self.schedule)
        self._on_activation()
        return box

    # -- images ------------------------------------------------------------------------------

    def open_sample(self, name: str) -> None:
        self.sample_combo.setCurrentIndex(self.sample_combo.findData(name))
        self.open_file(sample_path(name), sample=True)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self.open_file(Path(path))

    def open_file(self, path: Path, sample: bool = False) -> bool:
        try:
            rgb, note = load_image(path)
        except LabImageError as err:
            self.image_label.setText(str(err))
            return False
        self.rgb, self.image_name = rgb, Path(path).name
        if not sample:
            self.sample_combo.setCurrentIndex(-1)
            self.sample_combo.setPlaceholderText(Path(path).name)
        h, w = rgb.shape[:2]
        self.image_label.setText(f"{self.image_name}: {h}×{w} pixels, values 0 to 255"
                                 + (f" ({note})" if note else ""))
        self.schedule()
        return True

    # -- settings ----------------------------------------------------------------------------

    @property
    def padding(self) -> str | tuple[int, int]:
        mode = str(self.padding_combo.currentData())
        return (self.pad_h.value(), self.pad_w.value()) if mode == "explicit" else mode

    @property
    def stride(self) -> tuple[int, int]:
        return self.stride_h.value(), self.stride_w.value()

    @property
    def dilation(self) -> tuple[int, int]:
        return self.dilation_h.value(), self.dilation_w.value()

    def _on_padding(self) -> None:
        self.slide_form.setRowVisible(self.explicit_row,
                                      self.padding_combo.currentData() == "explicit")
        self.schedule()

    def _on_activation(self) -> None:
        key = self.activation_combo.currentData()
        self.eps_spin.setVisible(key == "leaky_relu")
        self.alpha_spin.setVisible(key == "elu")
        self.schedule()

    def _on_use(self) -> None:
        matrix = self.kernel_editor.matrix().tolist()
        self.use_kernel.emit(matrix, self.trainable_check.isChecked(), self.kernel_editor.name)

    def schedule(self, *_args: object) -> None:
        self._timer.start()

    # -- computing ---------------------------------------------------------------------------

    def source(self) -> np.ndarray:
        """The convolution's input: H×W grey or 3×H×W channels, values 0 to 255."""
        if self.grey_radio.isChecked():
            return ops.to_grey(self.rgb)
        return np.moveaxis(self.rgb.astype(np.float64), -1, 0)

    def recompute(self) -> None:
        self._timer.stop()
        grey = self.grey_radio.isChecked()
        x = self.source()
        photo = Tile("photograph (R, G, B)", qimage(self.rgb), self.rgb)
        if grey:
            self.input_view.set_tiles([photo, Tile("grey = 0.299 R + 0.587 G + 0.114 B",
                                                   qimage(np.rint(x).astype(np.uint8)), x)])
        else:
            self.input_view.set_tiles([photo] + [
                Tile(f"{name} channel", qimage(x[k].astype(np.uint8)), x[k])
                for k, name in enumerate(("R", "G", "B"))])
        w = self.kernel_editor.matrix()
        shape = (x.shape[-2], x.shape[-1])
        self.size_label.setText(self.size_text(shape, w.shape))
        started = time.perf_counter()
        try:
            self.conv_output = ops.correlate2d(x, w, self.stride, self.padding, self.dilation)
        except ops.LabError as err:
            self.conv_output = self.activated = self.pooled = np.zeros((0, 0))
            for view in (self.output_view, self.activated_view, self.pooled_view):
                view.set_message(str(err).capitalize())
            self.pool_label.setText("")
            self.time_label.setText("")
            return
        self.seconds = time.perf_counter() - started
        key = str(self.activation_combo.currentData())
        self.activated = ops.activate(self.conv_output, key, self.eps_spin.value(),
                                      self.alpha_spin.value())
        self._show_maps(self.output_view, self.conv_output, "output")
        name = self.activation_combo.currentText()
        self._show_maps(self.activated_view, self.activated,
                        "no activation" if key == "none" else f"after {name}")
        self._pool()
        oh, ow = self.conv_output.shape[-2:]
        channels = "" if grey else " per channel"
        self.time_label.setText(f"{oh}×{ow} output{channels}, computed in "
                                f"{self.seconds * 1000:.0f} ms")

    def size_text(self, shape: tuple[int, int], kernel: tuple[int, int]) -> str:
        pads = ops.pads(shape, kernel, self.stride, self.padding, self.dilation)
        lines = [ops.explain_output_size(shape[a], kernel[a], self.stride[a], *pads[a],
                                         dilation=self.dilation[a], axis=name)
                 for a, name in ((0, "height"), (1, "width"))]
        return "Output size  o = ⌊(i − k + 2p)/s⌋ + 1\n" + "\n".join(lines)

    def _pool(self) -> None:
        mode = str(self.pool_combo.currentData())
        size, stride = self.pool_size.value(), self.pool_stride.value()
        try:
            self.pooled = ops.pool2d(self.activated, mode, size, stride)
        except ops.LabError as err:
            self.pooled = np.zeros((0, 0))
            self.pooled_view.set_message(str(err).capitalize())
            self.pool_label.setText("")
            return
        h, w = self.activated.shape[-2:]
        self._show_maps(self.pooled_view, self.pooled,
                        f"{POOL_LABELS[mode].split()[0]} pool {size}×{size}, stride {stride}")
        self.pool_label.setText(
            "Pooled size\n" + "\n".join(ops.explain_output_size(n, size, stride, 0, axis=name)
                                        for n, name in ((h, "height"), (w, "width"))))

    def _show_maps(self, view: MapView, values: np.ndarray, caption: str) -> None:
        """One map, or one per channel under a common title, on one colour scale."""
        colours = colour_scale(values)
        if values.ndim == 2:
            view.set_tiles([Tile(caption, qimage(colours.rgb(values)), values)], colours)
            return
        tiles = [Tile(CHANNELS[k], qimage(colours.rgb(channel)), channel)
                 for k, channel in enumerate(values)]
        view.set_tiles(tiles, colours, title=f"{caption}, per channel")
