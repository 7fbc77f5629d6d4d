"""Feature maps and filters: what each block makes of an image, and what the convolutions learned.

FeatureMapView runs one image (a validation image or a file) through the network and shows every
channel of the chosen block as a small image (Dense layers as a bar chart). FilterView shows the
kernels of a Conv2D block.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.train.inspect import activations, conv_filters, output_probabilities
from cnnstudio.ui.images import image_of, qimage
from cnnstudio.ui.training.inspect.common import InspectPage, SampleChooser, SampleImagePage
from cnnstudio.ui.training.inspect.widgets import (
    DIVERGING,
    SEQUENTIAL,
    ColourBar,
    ImageView,
    TileGrid,
    VectorPlot,
    format_value,
    to_index,
)
from cnnstudio.ui.widgets import scrolled

MAX_TILE = 96  # maps larger than this are shown smaller (smoothly)
KERNEL_TILE = 64
VECTOR_HIDDEN = ("Flatten", "Output", "Dropout")


def tile_size(height: int, width: int, target: int = MAX_TILE) -> tuple[int, bool]:
    """Display size of a map (a whole multiple of its pixels when small) and whether to smooth."""
    side = max(height, width, 1)
    if side > target:
        return target, True
    return side * max(1, target // side), False


def inspectable_blocks(graph: Graph) -> list[tuple[str, str, tuple[int, ...]]]:
    """(block id, combo text, output shape) of the blocks whose output can be shown: every
    image-shaped output after the Input, and the vectors of Dense (and similar) layers."""
    analysis = analyze(graph)
    shown = []
    for block_id in analysis.order:
        block = graph.block(block_id)
        shape = tuple(analysis.blocks[block_id].output_shape or ())
        image = len(shape) == 3 and block.type != "Input"
        vector = len(shape) == 1 and block.type not in VECTOR_HIDDEN
        if image or vector:
            size = f"{shape[1]}×{shape[2]}×{shape[0]}" if image else f"{shape[0]} units"
            shown.append((block_id, f"{block.name} ({block.type}, {size})", shape))
    return shown


class FeatureMapView(SampleImagePage):
    """Every channel of one block's output for one image, as a grid of small images."""

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._graph: Graph | None = None
        self._blocks: list[tuple[str, str, tuple[int, ...]]] = []
        self._maps: np.ndarray | None = None
        self._wanted: str | None = None
        self.setAcceptDrops(True)

        self.block_combo = QComboBox()
        self.block_combo.setToolTip("The block whose output to show (or click it on the canvas)")
        self.block_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.chooser = SampleChooser(context)
        self.shared_check = QCheckBox("Shared colour scale")
        self.shared_check.setToolTip(
            "On: one scale for all channels, so strong and weak channels compare.\n"
            "Off: each channel stretched from its own minimum to its own maximum.")
        top = QHBoxLayout()
        top.addWidget(QLabel("Block"))
        top.addWidget(self.block_combo)
        top.addSpacing(12)
        top.addWidget(self.chooser)
        top.addStretch(1)
        top.addWidget(self.shared_check)

        self.input_view = ImageView()
        self.input_caption = QLabel()
        self.input_caption.setWordWrap(True)
        self.input_caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        left = QVBoxLayout()
        left.addWidget(QLabel("Input, as the network sees it"))
        left.addWidget(self.input_view)
        left.addWidget(self.input_caption, 1)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setFixedWidth(200)

        self.channels_label = QLabel()
        self.channels_label.setWordWrap(True)
        self.grid = TileGrid()
        self.vector_plot = VectorPlot()
        self.maps_stack = QStackedWidget()
        self.maps_stack.addWidget(scrolled(self.grid))
        self.maps_stack.addWidget(self.vector_plot)
        self.colour_bar = ColourBar()
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        right = QVBoxLayout()
        right.addWidget(self.channels_label)
        right.addWidget(self.maps_stack, 1)
        right.addWidget(self.colour_bar)
        right.addWidget(self.note_label)
        body = QHBoxLayout()
        body.addWidget(left_box)
        body.addLayout(right, 1)
        outer = QVBoxLayout(self.content)
        outer.addLayout(top)
        outer.addLayout(body, 1)

        self.block_combo.currentIndexChanged.connect(self._block_picked)
        self.shared_check.toggled.connect(self._redraw)
        self.chooser.changed.connect(self.refresh)
        self.chooser.problem.connect(self._show_problem)

    # -- the window's hooks ------------------------------------------------------------------

    def show_block(self, block_id: str) -> bool:
        """Show this block's output (the canvas calls it when a block is clicked); False with a
        note when the trained network has no such block or it has nothing to show."""
        if not self.context.has_model:
            self._wanted = block_id
            return False
        self._fill_blocks()
        index = self.block_combo.findData(block_id)
        if index < 0:
            graph = self.context.graph
            if graph is not None and block_id in graph:
                self._show_problem(f"{graph.block(block_id).label} has no output to show here")
            else:
                self._show_problem(f"block {block_id!r} is not in the trained network: train "
                                   "again to see it")
            return False
        self.block_combo.setCurrentIndex(index)
        return True

    def channel_count(self) -> int:
        """Channels (or units) drawn now."""
        return 0 if self._maps is None else int(self._maps.shape[0])

    def current_block(self) -> str | None:
        return self.block_combo.currentData()

    # -- refreshing ------------------------------------------------------------------------

    def clear_content(self) -> None:
        self._maps = None
        self.grid.clear()

    def _fill_blocks(self) -> None:
        graph = self.context.graph
        if graph is self._graph:
            return
        previous = self.block_combo.currentData() or self._wanted
        self._graph = graph
        self._blocks = inspectable_blocks(graph) if graph is not None else []
        self.block_combo.blockSignals(True)
        self.block_combo.clear()
        for block_id, text, _ in self._blocks:
            self.block_combo.addItem(text, block_id)
        index = self.block_combo.findData(previous)
        self.block_combo.setCurrentIndex(max(0, index))
        self.block_combo.blockSignals(False)
        self._wanted = None

    def update_content(self) -> None:
        self._fill_blocks()
        self.chooser.sync()
        notes = [self.context.data_problem] if self.context.data_problem else []
        if self.context.edited_since():
            notes.append("The network was edited after this run started: these maps are of the "
                         "network as trained.")
        self.note_label.setStyleSheet("")
        self.note_label.setText("\n".join(notes))
        image, block_id = self.chooser.image, self.block_combo.currentData()
        if image is None or block_id is None:
            self._maps = None
            self.grid.clear()
            self.channels_label.setText("Open an image to see what the network makes of it")
            return
        model = self.context.model
        output = model.main_output_id
        values = activations(model, image, [block_id, output], self.context.mean,
                             self.context.std)
        self._maps = values[block_id]
        self._show_input(image, values[output])
        self._redraw()

    def missing(self) -> str:
        if self.context.has_model:
            return ""  # image files work without the dataset
        return super().missing()

    def _block_picked(self, _index: int) -> None:
        if self.context.has_model:
            self.refresh()

    def _show_input(self, image: np.ndarray, scores: np.ndarray) -> None:
        self.input_view.set_image(image_of(image))
        classes = self.context.classes
        probabilities = output_probabilities(scores, self.context.main_output.kind)
        best = int(probabilities.argmax())
        name = classes[best] if best < len(classes) else str(best)
        lines = [self.chooser.name]
        truth = self.chooser.true_class()
        if truth:
            lines.append(f"label: {truth}")
        mark = "" if not truth else (" ✔" if truth == name else " ✘")
        lines.append(f"predicted: {name} ({probabilities[best]:.0%}){mark}")
        if self.context.description():
            lines.append(f"Weights {self.context.description()}")
        self.input_caption.setText("\n".join(lines))

    def _redraw(self) -> None:
        maps = self._maps
        if maps is None:
            return
        block_id = self.block_combo.currentData()
        name = self.context.graph.block(block_id).name if self.context.graph else block_id
        if maps.ndim == 1:
            self._draw_vector(name, maps, self._gives_probabilities(block_id))
        else:
            self._draw_maps(name, np.nan_to_num(maps.reshape(maps.shape[0], *maps.shape[-2:])))

    def _draw_maps(self, name: str, maps: np.ndarray) -> None:
        channels, height, width = maps.shape
        low_all, high_all = float(maps.min()), float(maps.max())
        shared = self.shared_check.isChecked()
        low: np.ndarray | float
        high: np.ndarray | float
        if shared:
            low, high = low_all, high_all
        else:
            low, high = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
        rgb = SEQUENTIAL[to_index(maps, low, high)]
        images = [qimage(rgb[c]) for c in range(channels)]
        lows, highs = maps.min(axis=(1, 2)), maps.max(axis=(1, 2))
        tips = [f"channel {c}: {format_value(float(lo))} to {format_value(float(hi))}"
                + (" (all zero for this image)" if lo == hi == 0 else "")
                for c, (lo, hi) in enumerate(zip(lows, highs))]
        size, smooth = tile_size(height, width)
        self.grid.set_tiles(images, [str(c) for c in range(channels)], tips, size, smooth)
        self.maps_stack.setCurrentIndex(0)
        self.shared_check.setEnabled(True)
        dead = int(np.count_nonzero((lows == 0) & (highs == 0)))
        dead_text = f", {dead} all zero" if dead else ""
        self.channels_label.setText(
            f"<b>{name}</b>: {channels} channels of {height}×{width}{dead_text} · values "
            f"{format_value(low_all)} to {format_value(high_all)}")
        self.colour_bar.setVisible(True)
        if shared:
            self.colour_bar.set_scale(SEQUENTIAL, format_value(low_all), format_value(high_all),
                                      "one scale for every channel")
        else:
            self.colour_bar.set_scale(SEQUENTIAL, "min", "max",
                                      "each channel from its own min to its own max")

    def _gives_probabilities(self, block_id: str) -> bool:
        """The block's values are the class probabilities: it is the softmax the network ends
        in (core.outputs)."""
        return block_id == self.context.main_output.block_id

    def _draw_vector(self, name: str, values: np.ndarray, probabilities: bool = False) -> None:
        classes = self.context.classes
        names = classes if len(values) == len(classes) else ()
        what = "probability" if probabilities else "score (before softmax)"
        self.vector_plot.set_values(values, names, "class" if names else "unit",
                                    what if names else "value")
        self.maps_stack.setCurrentIndex(1)
        self.shared_check.setEnabled(False)
        self.grid.clear()
        self.colour_bar.setVisible(False)
        self.channels_label.setText(
            f"<b>{name}</b>: {len(values)} units · values {format_value(float(values.min()))} "
            f"to {format_value(float(values.max()))}")



class FilterView(InspectPage):
    """The learned kernels of a Conv2D block."""

    MODES: ClassVar[dict[str, str]] = {
        "rgb": "Colour: one RGB image per filter",
        "mean": "Mean over the input channels",
        "inputs": "Every input channel of one filter",
    }

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._graph: Graph | None = None
        self._weights: np.ndarray | None = None
        self.block_combo = QComboBox()
        self.block_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.mode_combo = QComboBox()
        self.mode_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.filter_spin = QSpinBox()
        self.filter_spin.setPrefix("filter ")
        top = QHBoxLayout()
        for widget in (QLabel("Convolution"), self.block_combo, QLabel("Show"), self.mode_combo,
                       self.filter_spin):
            top.addWidget(widget)
        top.addStretch(1)
        self.lab_button = QPushButton("Open in lab")
        self.lab_button.setToolTip("The convolution lab on these weights: apply any kernel to an "
                                   "image and follow its arithmetic")
        self.lab_button.clicked.connect(self.open_in_lab)
        top.addWidget(self.lab_button)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.grid = TileGrid(tile_px=KERNEL_TILE)
        self.colour_bar = ColourBar()
        outer = QVBoxLayout(self.content)
        outer.addLayout(top)
        outer.addWidget(self.explanation)
        outer.addWidget(scrolled(self.grid), 1)
        outer.addWidget(self.colour_bar)
        self.block_combo.currentIndexChanged.connect(self._block_picked)
        self.mode_combo.currentIndexChanged.connect(self._redraw)
        self.filter_spin.valueChanged.connect(self._redraw)

    def missing(self) -> str:
        why = super().missing()
        if why and self.context.has_model:
            why = ""  # the weights are enough
        if not why and not self._conv_blocks():
            why = "This network has no convolution, so there are no filters to show"
        return why

    def tile_count(self) -> int:
        return self.grid.count()

    def open_in_lab(self) -> bool:
        """The lab on this block, with a copy of these weights (the reverse of the lab's "Use
        as first layer"): the main window's `open_in_lab(network, block_id)` shows it."""
        from cnnstudio.train.learned_kernels import TrainedNetwork

        block_id, context = self.block_combo.currentData(), self.context
        opener = getattr(self.window(), "open_in_lab", None)
        if block_id is None or not context.has_model or opener is None:
            return False
        name = "the run on the Training page"
        opener(TrainedNetwork(context.model_copy(), context.graph, context.mean, context.std,
                              context.input_shape, name, context.description()), block_id)
        return True

    def _conv_blocks(self) -> list[str]:
        graph = self.context.graph
        if graph is None:
            return []
        analysis = analyze(graph)
        self._filters = {b: analysis.blocks[b].output_shape[0] for b in analysis.order
                         if graph.block(b).type == "Conv2D" and analysis.blocks[b].output_shape}
        return [b for b in analysis.order if b in self._filters]

    def clear_content(self) -> None:
        self._weights = None
        self.grid.clear()

    def update_content(self) -> None:
        graph = self.context.graph
        if graph is not self._graph:
            previous = self.block_combo.currentData()
            self._graph = graph
            self.block_combo.blockSignals(True)
            self.block_combo.clear()
            for block_id in self._conv_blocks():
                block = graph.block(block_id)
                self.block_combo.addItem(f"{block.name} · {self._filters[block_id]} filters",
                                         block_id)
            self.block_combo.setCurrentIndex(max(0, self.block_combo.findData(previous)))
            self.block_combo.blockSignals(False)
        self._load_weights()

    def _block_picked(self, _index: int) -> None:
        if self.context.has_model:
            self._load_weights()

    def _load_weights(self) -> None:
        block_id = self.block_combo.currentData()
        if block_id is None:
            return
        self._weights = conv_filters(self.context.model, block_id)
        filters, inputs = self._weights.shape[:2]
        modes = (["rgb"] if inputs == 3 else []) + (["mean", "inputs"] if inputs > 1 else
                                                    ["mean"])
        chosen = self.mode_combo.currentData()
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        for mode in modes:
            text = "One kernel per filter" if inputs == 1 else self.MODES[mode]
            self.mode_combo.addItem(text, mode)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(chosen)))
        self.mode_combo.setEnabled(len(modes) > 1)
        self.mode_combo.blockSignals(False)
        self.filter_spin.blockSignals(True)
        self.filter_spin.setRange(0, filters - 1)
        self.filter_spin.blockSignals(False)
        self._redraw()

    def _redraw(self) -> None:
        w = self._weights
        if w is None:
            return
        mode = self.mode_combo.currentData()
        self.filter_spin.setVisible(mode == "inputs")
        filters, inputs, kh, kw = w.shape
        size = kh * max(1, KERNEL_TILE // max(kh, kw))
        shape = f"{kh}×{kw}"
        over = f"over {inputs} input channel{'s' * (inputs != 1)}"
        if mode == "rgb":
            flat = w.reshape(filters, -1)
            low = flat.min(axis=1)[:, None, None, None]
            high = flat.max(axis=1)[:, None, None, None]
            rgb = np.moveaxis(to_index(w, low, high), 1, -1)
            images = [qimage(rgb[f]) for f in range(filters)]
            self.grid.set_tiles(images, [str(f) for f in range(filters)], [], size)
            self.colour_bar.setVisible(False)
            self.explanation.setText(
                f"{filters} filters of {shape} {over}. Each filter's red, green and blue "
                "weights form one colour image, stretched from its own smallest weight (black) "
                "to its largest (white): the colour and pattern each filter looks for.")
            return
        if mode == "inputs":
            index = self.filter_spin.value()
            kernels = w[index]
            captions = [f"in {c}" for c in range(inputs)]
            text = (f"Filter {index} of {filters}: its {shape} kernel for each of the {inputs} "
                    "input channels; the filter sums what these kernels see.")
        else:
            kernels = w.mean(axis=1)
            captions = [str(f) for f in range(filters)]
            text = (f"{filters} filters of {shape} {over}. "
                    + ("Each tile is one filter's kernel." if inputs == 1 else
                       f"Each tile is the mean of a filter's {inputs} kernels (one per input "
                       "channel); pick 'Every input channel of one filter' to see them all."))
        extent = float(np.abs(kernels).max()) or 1.0
        rgb = DIVERGING[to_index(kernels, -extent, extent)]
        tips = [f"{caption}: weights {format_value(float(k.min()))} to "
                f"{format_value(float(k.max()))}" for caption, k in zip(captions, kernels)]
        self.grid.set_tiles([qimage(rgb[i]) for i in range(len(kernels))], captions, tips, size)
        self.colour_bar.setVisible(True)
        self.colour_bar.set_scale(DIVERGING, format_value(-extent), format_value(extent),
                                  "blue negative · white zero · red positive")
        self.explanation.setText(text)
