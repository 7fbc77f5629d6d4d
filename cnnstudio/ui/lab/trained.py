"""The lab on the user's own trained network: a run, one of its Conv2D blocks, its learned
kernels shown as the lab shows the classic ones, any of them applied to a digit or a photo, and
one output value worked out step by step with the real weights.

For the first convolution the input is the image normalised as the run normalises it; for a
deeper one it is the block's real input, computed with the run's model. The lab then computes
the filter's output itself (cnnstudio.lab.learned, NumPy) and says how far it is from the
model's own output: a few 1e-7, float32 against float64. Torch loads only when a run opens
(cnnstudio.train.learned_kernels), on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.lab import learned, ops
from cnnstudio.ui.images import IMAGE_FILTER, qimage
from cnnstudio.ui.lab.images import available_samples, sample_path
from cnnstudio.ui.lab.trained_steps import PixelStepper, show_matrix
from cnnstudio.ui.lab.widgets import (
    ColourScale,
    MapView,
    MatrixTable,
    Tile,
    colour_of,
    colour_scale,
    mute,
    symmetric_scale,
    titled_column,
)
from cnnstudio.ui.training.inspect.common import BackgroundTask

CHOOSE_FOLDER = "folder"
DIGITS = 10
DIGIT_SHAPE = (1, 28, 28)  # networks of this input are offered MNIST digits, others photos
MODEL_FILE = "model.pt"
SUM = -1  # the channel combo's "sum over the channels"
KERNEL_CELL = 44
CAPTIONED_FILTERS = 16  # more kernels than this are drawn without numbers (the tooltip has them)


def trained_runs(root: Path | None) -> list[tuple[str, Path]]:
    """(text, folder) of the runs under root that have weights, newest first."""
    if root is None:
        return []
    from cnnstudio.ui.training.runs import scan_runs

    runs = [r for r in scan_runs(root) if (r.path / MODEL_FILE).is_file()]
    runs.sort(key=lambda r: r.name, reverse=True)
    return [(f"{r.title} · {r.network}" if r.network else r.title, r.path) for r in runs]


class TrainedLabView(QWidget):
    """Run → block → kernels, input, output and the arithmetic of one output pixel."""

    status_message = Signal(str)

    def __init__(self, runs_root: Callable[[], Path] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs_root = runs_root
        self.network: Any = None  # train.learned_kernels.TrainedNetwork
        self.conv: learned.LearnedConv | None = None
        self.image: np.ndarray | None = None  # uint8 C×H×W, the network's input shape
        self.image_name = ""
        self.x: np.ndarray | None = None  # the block's input for the image
        self.output: np.ndarray | None = None  # the chosen filter's output, computed here
        self.model_difference: float | None = None
        self._model_maps = np.zeros((0, 0, 0))  # the model's own output of the block
        self._digits: tuple[np.ndarray, list[str]] = (np.zeros((0, 1, 1, 1), np.uint8), [])
        self._wanted_block: str | None = None
        self._loading: Path | None = None
        self._loader = BackgroundTask(self)
        self._loader.done.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)

        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(28)
        self.run_combo.setToolTip("A run of this project (from its runs folder), or any run "
                                  "folder")
        self.block_combo = QComboBox()
        self.block_combo.setMinimumContentsLength(22)
        self.block_combo.setToolTip("The Conv2D block whose learned kernels to look at")
        self.source_label = QLabel()
        mute(self.source_label)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run"))
        top.addWidget(self.run_combo)
        top.addSpacing(12)
        top.addWidget(QLabel("Block"))
        top.addWidget(self.block_combo)
        top.addSpacing(12)
        top.addWidget(self.source_label, 1)

        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self._build_content())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)

        self.run_combo.activated.connect(self._on_run_picked)
        self.block_combo.activated.connect(
            lambda i: self.choose_block(str(self.block_combo.itemData(i))))
        self.refresh_runs()
        self.block_combo.setEnabled(False)
        self._say("Choose a trained run above: its Conv2D blocks' learned kernels show here, "
                  "applied to a digit or a photo, with the arithmetic of any output value.\n"
                  "The list holds this project's runs (the runs folder beside the project "
                  "file); 'Choose a run folder…' opens any other.")

    # -- building ----------------------------------------------------------------------------

    def _build_content(self) -> QWidget:
        kernels, kernels_layout = titled_column("1 · Learned kernels")
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip("Each filter has one kernel per input channel it reads")
        self.filter_spin = QSpinBox()
        self.filter_spin.setPrefix("filter ")
        self.filter_spin.setToolTip("The filter to apply (or click its kernel)")
        row = QHBoxLayout()
        row.addWidget(QLabel("Kernels of"))
        row.addWidget(self.channel_combo, 1)
        kernels_layout.addLayout(row)
        self.kernels_view = MapView(columns=8)
        self.kernel_table = MatrixTable(cell=KERNEL_CELL)
        holder = QWidget()
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        holder_layout.addWidget(self.kernel_table)
        holder_layout.addStretch(1)
        self.kernel_scroller = QScrollArea()  # an 11×11 kernel scrolls, never overlaps
        self.kernel_scroller.setWidget(holder)
        holder.setAutoFillBackground(False)  # the group box's colour, not the scroll area's
        self.kernel_scroller.viewport().setAutoFillBackground(False)
        self.kernel_scroller.setWidgetResizable(True)
        self.kernel_scroller.setFrameShape(QFrame.Shape.NoFrame)
        chosen = QVBoxLayout()
        chosen.addWidget(self.filter_spin)
        chosen.addWidget(self.kernel_scroller, 1)
        grid = QHBoxLayout()
        grid.addWidget(self.kernels_view, 1)
        grid.addLayout(chosen)
        kernels_layout.addLayout(grid, 1)
        self.kernel_label = QLabel()
        self.kernel_label.setWordWrap(True)
        kernels_layout.addWidget(self.kernel_label)

        inputs, input_layout = titled_column("2 · Input")
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("A digit of the bundled MNIST sample or a photograph, "
                                    "resized to the network's input as its dataset is")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open an image file (or drop one on the input)")
        row = QHBoxLayout()
        row.addWidget(self.image_combo, 1)
        row.addWidget(self.open_button)
        input_layout.addLayout(row)
        self.input_view = MapView(accept_files=True)
        input_layout.addWidget(self.input_view, 1)
        self.input_label = QLabel()
        self.input_label.setWordWrap(True)
        mute(self.input_label)
        input_layout.addWidget(self.input_label)

        outputs, output_layout = titled_column("3 · Output of the filter")
        self.output_view = MapView()
        self.output_view.setToolTip("")
        output_layout.addWidget(self.output_view, 1)
        self.output_label = QLabel()
        self.output_label.setWordWrap(True)
        mute(self.output_label)
        output_layout.addWidget(self.output_label)

        steps, steps_layout = titled_column("4 · Step by step, with the real weights")
        self.stepper = PixelStepper()
        steps_layout.addWidget(self.stepper)

        columns = QHBoxLayout()
        columns.addWidget(kernels, 5)
        columns.addWidget(inputs, 4)
        columns.addWidget(outputs, 4)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(columns, 1)
        layout.addWidget(steps)

        self.channel_combo.activated.connect(lambda _i: self._redraw_all())
        self.filter_spin.valueChanged.connect(lambda _v: self._on_filter())
        self.kernels_view.pixel_clicked.connect(lambda tile, _r, _c: self.choose_filter(tile))
        self.output_view.pixel_clicked.connect(lambda _t, r, c: self.stepper.set_pixel(r, c))
        self.stepper.pixel_changed.connect(lambda _r, _c: self._show_step())
        self.image_combo.activated.connect(lambda i: self._on_image_picked(i))
        self.open_button.clicked.connect(self.open_dialog)
        self.input_view.file_dropped.connect(self.open_image_file)
        return content

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentIndex(0)

    # -- runs --------------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        """The runs folder's runs with weights, the network shown now, and 'Choose…'."""
        root = self.runs_root() if self.runs_root is not None else None
        blocker = QSignalBlocker(self.run_combo)
        self.run_combo.clear()
        current = getattr(self.network, "run_dir", None)
        if self.network is not None and current is None:
            self.run_combo.addItem(self.network.name, "loaded")
        elif self.network is None:
            self.run_combo.addItem("Choose a run…", None)
        for text, path in trained_runs(root):
            self.run_combo.addItem(text, str(path))
        if current is not None and self.run_combo.findData(str(current)) < 0:
            self.run_combo.addItem(self.network.name, str(current))
        self.run_combo.addItem("Choose a run folder…", CHOOSE_FOLDER)
        if self.network is not None:
            wanted = "loaded" if current is None else str(current)
            self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(wanted)))
        del blocker

    def _on_run_picked(self, index: int) -> None:
        data = self.run_combo.itemData(index)
        if data == CHOOSE_FOLDER:
            folder = QFileDialog.getExistingDirectory(self, "Choose a training run folder")
            if folder:
                self.open_run_folder(Path(folder))
            else:
                self.refresh_runs()
        elif data not in (None, "loaded"):
            self.open_run_folder(Path(str(data)))

    def open_run_folder(self, folder: Path, block_id: str | None = None) -> None:
        """Read the run on a worker thread; the view follows when it has arrived."""
        self._loading, self._wanted_block = Path(folder), block_id
        self._say(f"Opening the run {Path(folder).name} …")

        def work(_progress: Callable[[int, int], None]) -> Any:
            from cnnstudio.train.learned_kernels import open_run

            return open_run(folder)

        self._loader.start(work)

    @property
    def loading(self) -> bool:
        return self._loader.running

    def _on_loaded(self, network: Any) -> None:
        self.set_network(network, self._wanted_block)

    def _on_load_failed(self, message: str) -> None:
        name = self._loading.name if self._loading is not None else "the run"
        self._say(f"Cannot open {name}: {message}")
        self.status_message.emit(f"Cannot open {name}: {message}")
        self.refresh_runs()

    def set_network(self, network: Any, block_id: str | None = None) -> None:
        """Show a trained network (train.learned_kernels.TrainedNetwork), at the given Conv2D
        block or its first one."""
        from cnnstudio.train.learned_kernels import conv_blocks
        from cnnstudio.ui import torch_threads

        torch_threads.single_threaded()  # its model runs on the GUI thread
        self.network, self.conv = network, None
        self.refresh_runs()
        blocks = conv_blocks(network)
        blocker = QSignalBlocker(self.block_combo)
        self.block_combo.clear()
        for bid, text in blocks:
            self.block_combo.addItem(text, bid)
        del blocker
        self.block_combo.setEnabled(bool(blocks))
        self.source_label.setText(f"Weights {network.weights}; input "
                                  f"{'×'.join(map(str, network.input_shape[1:]))}×"
                                  f"{network.input_shape[0]}")
        if not blocks:
            self._say(f"{network.name} has no Conv2D block: there are no kernels to show.")
            return
        self._fill_images()
        ids = [bid for bid, _ in blocks]
        self.choose_block(block_id if block_id in ids else ids[0])

    def _fill_images(self) -> None:
        from cnnstudio.train.learned_kernels import sample_digits

        digits = tuple(self.network.input_shape) == DIGIT_SHAPE
        self._digits = (sample_digits(self.network, DIGITS) if digits
                        else (np.zeros((0, *DIGIT_SHAPE), np.uint8), []))
        blocker = QSignalBlocker(self.image_combo)
        self.image_combo.clear()
        for k, label in enumerate(self._digits[1]):
            self.image_combo.addItem(f"MNIST sample {k + 1}: a {label}", ("digit", k))
        for name in available_samples():
            self.image_combo.addItem(f"Photo: {name}", ("sample", name))
        del blocker
        self.image_combo.setCurrentIndex(0)
        self._on_image_picked(self.image_combo.currentIndex(), recompute=False)

    # -- choices -----------------------------------------------------------------------------

    def choose_block(self, block_id: str) -> None:
        from cnnstudio.train.learned_kernels import learned_conv

        index = self.block_combo.findData(block_id)
        if self.network is None or index < 0:
            return
        self.block_combo.setCurrentIndex(index)
        self.conv = learned_conv(self.network, block_id)
        conv = self.conv
        blocker = QSignalBlocker(self.channel_combo)
        self.channel_combo.clear()
        for k in range(conv.per_filter):
            self.channel_combo.addItem(f"input channel {k}", k)
        if conv.per_filter > 1:
            self.channel_combo.addItem(f"the sum over the {conv.per_filter} input channels", SUM)
        del blocker
        self.channel_combo.setEnabled(conv.per_filter > 1)
        spin_blocker = QSignalBlocker(self.filter_spin)
        self.filter_spin.setRange(0, conv.filters - 1)
        self.filter_spin.setValue(min(self.filter_spin.value(), conv.filters - 1))
        del spin_blocker
        self.stack.setCurrentIndex(1)
        self._compute_input()

    @property
    def filter(self) -> int:
        return self.filter_spin.value()

    def choose_filter(self, f: int) -> None:
        self.filter_spin.setValue(f)

    @property
    def channel(self) -> int | None:
        """The chosen input channel (index among the filter's), None for the sum."""
        data = self.channel_combo.currentData()
        return None if data is None or int(data) == SUM else int(data)

    def choose_channel(self, k: int | None) -> None:
        self.channel_combo.setCurrentIndex(self.channel_combo.findData(SUM if k is None else k))
        self._redraw_all()

    def _on_image_picked(self, index: int, recompute: bool = True) -> None:
        kind, key = self.image_combo.itemData(index)
        if kind == "digit":
            self.image, self.image_name = self._digits[0][key], self.image_combo.itemText(index)
        elif not self.open_image_file(sample_path(key), recompute=False, sample=True):
            return
        if recompute:
            self._compute_input()

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self.open_image_file(Path(path))

    def open_image_file(self, path: Path, recompute: bool = True, sample: bool = False) -> bool:
        """An image file resized to the network's input as its dataset would be."""
        from cnnstudio.train.inspect import ImageFileError
        from cnnstudio.train.learned_kernels import network_image

        if self.network is None:
            return False
        try:
            self.image = network_image(self.network, path)
        except ImageFileError as err:
            self.input_label.setText(str(err))
            return False
        self.image_name = Path(path).name
        if not sample:
            self.image_combo.setCurrentIndex(-1)
            self.image_combo.setPlaceholderText(Path(path).name)
        if recompute:
            self._compute_input()
        return True

    # -- computing ---------------------------------------------------------------------------

    def _compute_input(self) -> None:
        from cnnstudio.train.learned_kernels import block_input, block_output

        if self.network is None or self.conv is None or self.image is None:
            return
        self.x = block_input(self.network, self.conv.block_id, self.image)
        self._model_maps = block_output(self.network, self.conv.block_id, self.image)
        self._redraw_all()

    def _on_filter(self) -> None:
        if self.conv is not None and self.x is not None:
            self._redraw_all()

    def _redraw_all(self) -> None:
        if self.conv is None or self.x is None:
            return
        self._show_kernels()
        self._show_output()
        self._show_input()
        self._show_step()

    def _show_kernels(self) -> None:
        conv, f, channel = self.conv, self.filter, self.channel
        assert conv is not None
        kernels = [conv.kernel(k, channel) for k in range(conv.filters)]
        m = max(symmetric_scale(k) for k in kernels)
        scale = ColourScale(-m, m)
        self.kernels_view.show_captions = len(kernels) <= CAPTIONED_FILTERS
        self.kernels_view.set_tiles([Tile(f"filter {k}", qimage(scale.rgb(kernel)), kernel)
                                     for k, kernel in enumerate(kernels)], scale)
        kh, kw = conv.kernel_size
        self.kernels_view.set_marks({f: (0, 0, kh, kw)})
        kernel = kernels[f]
        show_matrix(self.kernel_table, kernel, KERNEL_CELL)
        own = symmetric_scale(kernel)
        self.kernel_table.paint_cells({(i, j): colour_of(kernel[i, j], own)
                                       for i in range(kh) for j in range(kw)})
        self.kernel_table.setToolTip("\n".join("  ".join(ops.fmt(v, 5) for v in row)
                                               for row in kernel))
        which = ("its kernels summed over the input channels (a summary: the filter applies "
                 "each channel's own kernel)" if channel is None and conv.per_filter > 1
                 else f"its kernel for input channel {conv.input_channels(f)[channel or 0]}"
                 if conv.per_filter > 1 else "its kernel")
        bias = f"bias b = {ops.fmt(conv.bias[f], 4)}" if conv.has_bias else "no bias"
        self.kernel_label.setText(
            f"{conv.describe()}.\nFilter {f}: {which}; {bias}; then "
            f"{learned.activation_label(conv.activation)}. One colour scale for every tile: "
            "blue negative, white 0, red positive.")

    def _input_channel(self) -> int:
        """The block-input channel shown: the chosen one, or the filter's first for the sum."""
        assert self.conv is not None
        return self.conv.input_channels(self.filter)[self.channel or 0]

    def _show_input(self) -> None:
        conv, x, network = self.conv, self.x, self.network
        assert conv is not None and x is not None
        k = self._input_channel()
        source = network.model.sources[conv.block_id][0]
        first = source == network.model.input_id
        values = x[k]
        scale = colour_scale(values)
        channel = f", channel {k}" if x.shape[0] > 1 else ""
        caption = (f"{self.image_name}, normalised{channel}" if first
                   else f"{network.graph.block(source).name}'s output{channel}")
        self.input_view.set_tiles([Tile(caption, qimage(scale.rgb(values)), values)], scale)
        if first:
            mean, std = network.mean, network.std
            text = (f"The image as the run feeds it: (pixel/255 − {ops.fmt(mean[k % len(mean)])})"
                    f" / {ops.fmt(std[k % len(std)])}. ")
        else:
            text = (f"{conv.name} reads {x.shape[0]} channels of {x.shape[1]}×{x.shape[2]}: "
                    f"the output of {network.graph.block(source).name} for {self.image_name}, "
                    "computed with the run's model. ")
        self.input_label.setText(text + "The outline is the window of the chosen output "
                                 "pixel.")

    def _show_output(self) -> None:
        conv, x, f = self.conv, self.x, self.filter
        assert conv is not None and x is not None
        try:
            self.output = learned.filter_output(conv, x, f)
        except ops.LabError as err:
            self.output = None
            self.output_view.set_message(str(err).capitalize())
            return
        model = np.asarray(self._model_maps[f], dtype=np.float64)
        self.model_difference = float(np.abs(self.output - model).max())
        scale = colour_scale(self.output)
        label = learned.activation_label(conv.activation)
        caption = f"filter {f}" + ("" if conv.activation == "none" else f", after {label}")
        self.output_view.set_tiles([Tile(caption, qimage(scale.rgb(self.output)), self.output)],
                                   scale)
        oh, ow = self.output.shape
        self.stepper.set_output_size(oh, ow)
        over = f" over the {conv.per_filter} input channels" if conv.per_filter > 1 else ""
        self.output_label.setText(
            f"{oh}×{ow}, computed here: each window × kernel, summed{over}, plus the bias, "
            f"then {label}. The "
            f"model's own output differs by at most {self.model_difference:.1e}. Click a pixel "
            "to see how it is computed.")

    def _show_step(self) -> None:
        if self.conv is None or self.x is None or self.output is None:
            self.stepper.clear()
            return
        r, c = self.stepper.pixel
        arithmetic = learned.pixel_arithmetic(self.conv, self.x, self.filter, r, c)
        self.arithmetic = arithmetic
        self.stepper.show_arithmetic(arithmetic, self.channel or 0)
        self.output_view.set_marks({0: (r, c, 1, 1)})
        top, left = arithmetic.offset
        (r0, c0), (r1, c1) = arithmetic.cells[0], arithmetic.cells[-1]
        self.input_view.set_marks({0: (r0 - top, c0 - left, r1 - r0 + 1, c1 - c0 + 1)})

    def refresh_theme(self) -> None:
        self._redraw_all()
