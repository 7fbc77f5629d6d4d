"""The block palette: every block type by category, with presets for well-known variants.

Entries are drag sources (MIME type BLOCK_MIME, UTF-8 JSON {"type": ..., "params": {...}}) for
the canvas; double-click or Enter asks the window to add the block (`block_requested`). The list
is generated from the registry, so a newly declared block type appears here by itself.

Given the document, the palette also lists the project's module definitions under "My modules"
(kept up to date from the graph's DEFINITION_* events): they drag as MODULE_MIME (the
definition's id) and double-click asks for a new instance (`module_requested`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core import registry
from cnnstudio.core.blocks.base import BlockType
from cnnstudio.core.graph import EventKind, GraphEvent
from cnnstudio.core.module_types import ModuleDef
from cnnstudio.ui import icons
from cnnstudio.ui.canvas.module_actions import MODULE_MIME
from cnnstudio.ui.document import Document

try:
    from cnnstudio.ui.canvas import BLOCK_MIME  # type: ignore[attr-defined]
except ImportError:
    BLOCK_MIME = "application/x-cnnstudio-block"

ENTRY_ROLE = Qt.UserRole + 1
MY_MODULES = "My modules"


@dataclass(frozen=True)
class ModuleEntry:
    """A line of "My modules": one module definition of the project."""

    definition_id: str
    title: str
    blocks: int

    def rank(self, needle: str) -> int | None:
        if not needle:
            return 0
        wanted, title = _squashed(needle), _squashed(self.title)
        if wanted and title == wanted:
            return MATCH_RANKS["name"]
        if wanted and title.startswith(wanted):
            return MATCH_RANKS["name start"]
        if (wanted and wanted in title) or (len(wanted) >= 3 and wanted in "module"):
            return MATCH_RANKS["inside a name"]
        return None


@dataclass(frozen=True)
class PaletteEntry:
    """One line of the palette: a block type with preset parameters and its own title."""

    title: str
    type_id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""  # what the preset sets, added to the block's help in the tooltip

    @property
    def block_type(self) -> BlockType:
        return registry.get(self.type_id)

    def payload(self) -> dict[str, Any]:
        return {"type": self.type_id, "params": {k: _copy(v) for k, v in self.params.items()}}

    def names(self) -> list[str]:
        """What the entry is called: its title, type, display name and every alias that
        SEARCH_ALIASES gives its type and preset parameters."""
        names = [self.title, self.type_id, self.block_type.display_name]
        for type_id, params, aliases in SEARCH_ALIASES:
            if type_id == self.type_id and all(self.params.get(k) == v for k, v in params.items()):
                names.extend(aliases)
        return names

    def rank(self, needle: str) -> int | None:
        """How well a search matches (0 best, None: not at all); see MATCH_RANKS."""
        if not needle:
            return 0
        wanted = _squashed(needle)
        if wanted:
            names = self.names()
            squashed = [_squashed(name) for name in names]
            if wanted in squashed:
                return MATCH_RANKS["name"]
            words = [word for name in names for word in _words(name)]
            if any(name.startswith(wanted) for name in squashed + words):
                return MATCH_RANKS["name start"]
            if any(wanted in name for name in squashed):
                return MATCH_RANKS["inside a name"]
        text = f"{self.block_type.help} {self.note}".casefold()
        return MATCH_RANKS["description"] if needle.casefold() in text else None

    def matches(self, needle: str) -> bool:
        return self.rank(needle) is not None


def _squashed(text: str) -> str:
    """Lower case, letters and digits only: 'Max pooling', 'MaxPool2d' and 'max_pool' meet."""
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^0-9a-z]+", text.casefold()) if word]


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# Search ranks, best first: a whole name or alias ('fc'), the start of one or of one of its
# words ('max' → Max pooling), a part of one, then only the help text mentions it.
MATCH_RANKS = {"name": 0, "name start": 1, "inside a name": 2, "description": 3}

# The names a block goes by in PyTorch, Keras and the literature, for the search box:
# (block type, the preset parameters they name ({}: every entry of the type), aliases).
SEARCH_ALIASES: tuple[tuple[str, Mapping[str, Any], tuple[str, ...]], ...] = (
    ("Input", {}, ("InputLayer", "image")),
    ("Conv2D", {}, ("Conv2d", "nn.Conv2d", "Convolution2D", "conv", "convolution", "filter")),
    ("Conv2D", {"kernel": [1, 1]}, ("pointwise", "1x1 conv")),
    ("Conv2D", {"depthwise": True}, ("DepthwiseConv2D", "depthwise", "dwconv", "separable")),
    ("Activation", {}, ("nonlinearity",)),
    ("Activation", {"function": "relu"}, ("nn.ReLU", "rectifier")),
    ("Activation", {"function": "leaky_relu"}, ("LeakyReLU", "nn.LeakyReLU")),
    ("Activation", {"function": "gelu"}, ("nn.GELU",)),
    ("Activation", {"function": "tanh"}, ("nn.Tanh",)),
    ("Activation", {"function": "sigmoid"}, ("nn.Sigmoid", "logistic")),
    ("Activation", {"function": "softmax"}, ("nn.Softmax",)),
    ("Activation", {"function": "relu6"}, ("nn.ReLU6",)),
    ("Activation", {"function": "silu"}, ("nn.SiLU", "swish")),
    ("Activation", {"function": "hardswish"}, ("nn.Hardswish",)),
    ("Activation", {"function": "hardsigmoid"}, ("nn.Hardsigmoid",)),
    ("Pooling", {}, ("pool", "subsampling", "downsampling")),
    ("Pooling", {"mode": "max"}, ("MaxPool2d", "nn.MaxPool2d", "MaxPooling2D", "maxpool")),
    ("Pooling", {"mode": "average"},
     ("AvgPool2d", "nn.AvgPool2d", "AveragePooling2D", "avgpool", "meanpool")),
    ("Pooling", {"mode": "global_average"}, ("GlobalAveragePooling2D", "GAP", "global avgpool")),
    ("Pooling", {"mode": "global_max"}, ("GlobalMaxPooling2D", "global maxpool")),
    ("Pooling", {"mode": "adaptive_average"}, ("AdaptiveAvgPool2d", "nn.AdaptiveAvgPool2d")),
    ("Pooling", {"mode": "adaptive_max"}, ("AdaptiveMaxPool2d", "nn.AdaptiveMaxPool2d")),
    ("Dropout", {}, ("nn.Dropout",)),
    ("Dropout", {"mode": "channel"}, ("Dropout2d", "nn.Dropout2d", "SpatialDropout2D")),
    ("BatchNorm", {}, ("BatchNorm2d", "nn.BatchNorm2d", "BatchNormalization", "bn",
                       "batch normalisation", "batch normalization", "norm")),
    ("LocalResponseNorm", {}, ("LRN", "nn.LocalResponseNorm")),
    ("Flatten", {}, ("nn.Flatten", "reshape", "view")),
    ("Dense", {}, ("Linear", "nn.Linear", "fc", "fully connected", "classifier", "MLP")),
    ("Concatenate", {}, ("concat", "cat", "torch.cat", "join")),
    ("Add", {}, ("residual", "skip connection", "shortcut", "sum", "torch.add")),
    ("Multiply", {}, ("mul", "torch.mul", "product", "gate", "squeeze-and-excitation")),
    ("Output", {}, ("head", "logits", "prediction")),
)


# block type -> its presets; a type not listed gets one entry with its defaults
PRESETS: dict[str, tuple[PaletteEntry, ...]] = {
    "Conv2D": (
        PaletteEntry("Conv2D", "Conv2D"),
        PaletteEntry("Conv2D 3×3 same + ReLU", "Conv2D",
                     {"kernel": [3, 3], "padding": "same", "activation": "relu"},
                     "3×3 kernel, padding 'same' (keeps height and width), fused ReLU."),
        PaletteEntry("Pointwise conv 1×1", "Conv2D", {"kernel": [1, 1], "activation": "relu"},
                     "1×1 kernel with ReLU: mixes channels, keeps height and width."),
        PaletteEntry("Depthwise conv", "Conv2D",
                     {"depthwise": True, "kernel": [3, 3], "padding": "same"},
                     "One 3×3 filter per input channel (groups = filters = C_in), padding "
                     "'same': MobileNet's depthwise convolution."),
    ),
    "Activation": (
        PaletteEntry("ReLU", "Activation", {"function": "relu"}, "ReLU: max(0, x)."),
        PaletteEntry("Leaky ReLU", "Activation", {"function": "leaky_relu"},
                     "Leaky ReLU: ε·x for x < 0."),
        PaletteEntry("GELU", "Activation", {"function": "gelu"}, "GELU: x·Φ(x)."),
        PaletteEntry("Tanh", "Activation", {"function": "tanh"}, "Hyperbolic tangent."),
        PaletteEntry("Sigmoid", "Activation", {"function": "sigmoid"}, "Logistic sigmoid."),
        PaletteEntry("Softmax", "Activation", {"function": "softmax"},
                     "Softmax across channels or features. Just before an Output its values "
                     "are probabilities: no second softmax is applied."),
        PaletteEntry("ReLU6", "Activation", {"function": "relu6"},
                     "ReLU6: min(max(0, x), 6) (MobileNetV2)."),
        PaletteEntry("SiLU (Swish)", "Activation", {"function": "silu"},
                     "SiLU, also called Swish: x·sigmoid(x) (EfficientNet)."),
        PaletteEntry("Hardswish", "Activation", {"function": "hardswish"},
                     "Hardswish: x·ReLU6(x + 3)/6 (MobileNetV3)."),
        PaletteEntry("Hardsigmoid", "Activation", {"function": "hardsigmoid"},
                     "Hardsigmoid: ReLU6(x + 3)/6, a cheap sigmoid (MobileNetV3 gates)."),
    ),
    "Pooling": (
        PaletteEntry("Max pooling", "Pooling", {"mode": "max"}, "Maximum of each 2×2 window."),
        PaletteEntry("Average pooling", "Pooling", {"mode": "average"},
                     "Mean of each 2×2 window."),
        PaletteEntry("Global average pooling", "Pooling", {"mode": "global_average"},
                     "Mean of each channel: H×W×C becomes a vector of C values."),
        PaletteEntry("Global max pooling", "Pooling", {"mode": "global_max"},
                     "Maximum of each channel: H×W×C becomes a vector of C values."),
        PaletteEntry("Adaptive average pooling", "Pooling",
                     {"mode": "adaptive_average", "output_size": [7, 7]},
                     "Averages down to a 7×7 map whatever the input size (PyTorch "
                     "AdaptiveAvgPool2d, as VGG and AlexNet in torchvision)."),
        PaletteEntry("Adaptive max pooling", "Pooling", {"mode": "adaptive_max"},
                     "Maximum over windows that cut the input into the output size you choose "
                     "(PyTorch AdaptiveMaxPool2d); 1×1 by default."),
    ),
    "Multiply": (
        PaletteEntry("Multiply (channel-wise)", "Multiply", {},
                     "Scales each channel of an image by one value of a vector of channel "
                     "weights (squeeze-and-excitation); equal shapes multiply value by value."),
    ),
    "Dropout": (
        PaletteEntry("Dropout", "Dropout"),
        PaletteEntry("Spatial dropout", "Dropout", {"mode": "channel", "rate": 0.2},
                     "Drops whole feature maps (rate 0.2)."),
    ),
    "Output": (
        PaletteEntry("Output", "Output"),
        PaletteEntry("Auxiliary output", "Output", {"auxiliary": True, "loss_weight": 0.3},
                     "An auxiliary classifier with loss weight 0.3 (Inception v1)."),
    ),
}


def palette_entries() -> dict[str, list[PaletteEntry]]:
    """Every palette entry, grouped by category in palette order (empty categories left out)."""
    groups: dict[str, list[PaletteEntry]] = {}
    for category, block_types in registry.by_category().items():
        entries = [entry for block_type in block_types
                   for entry in PRESETS.get(block_type.type_id,
                                            (PaletteEntry(block_type.display_name,
                                                          block_type.type_id),))]
        if entries:
            groups[category] = entries
    return groups


def block_mime_data(type_id: str, params: Mapping[str, Any] | None = None) -> QMimeData:
    """The drag payload the canvas accepts: BLOCK_MIME with {"type": ..., "params": {...}}."""
    payload = {"type": type_id, "params": {k: _copy(v) for k, v in (params or {}).items()}}
    mime = QMimeData()
    mime.setData(BLOCK_MIME, json.dumps(payload).encode("utf-8"))
    mime.setText(registry.get(type_id).display_name)
    return mime


class _PaletteTree(QTreeWidget):
    """The tree of categories and entries; it builds the drag payload itself."""

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt's name)
        return [BLOCK_MIME, MODULE_MIME]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:  # noqa: N802
        modules = [item.data(0, ENTRY_ROLE) for item in items]
        modules = [m for m in modules if isinstance(m, ModuleEntry)]
        if modules:
            mime = QMimeData()
            mime.setData(MODULE_MIME, modules[0].definition_id.encode("utf-8"))
            mime.setText(modules[0].title)
            return mime
        entries = [item.data(0, ENTRY_ROLE) for item in items]
        entries = [e for e in entries if isinstance(e, PaletteEntry)]
        if not entries:
            return QMimeData()
        return block_mime_data(entries[0].type_id, entries[0].params)

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.CopyAction


class PalettePanel(QWidget):
    """Search box over the block tree. Drag an entry to the canvas, or double-click it."""

    block_requested = Signal(str, dict)  # type id, params
    module_requested = Signal(str)  # a definition id of "My modules"

    def __init__(self, parent: QWidget | None = None, document: Document | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search blocks")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter by name, type or description (Down: go to the list, "
                               "Enter: add the first match)")
        self.tree = _PaletteTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(1)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(14)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setDefaultDropAction(Qt.CopyAction)
        self.empty_label = QLabel("No block matches this search.", self)
        self.empty_label.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
        self.empty_label.setEnabled(False)
        self.empty_label.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty_label)

        self._categories: list[QTreeWidgetItem] = []  # in palette order, whatever is shown
        self._children: dict[QTreeWidgetItem, list[QTreeWidgetItem]] = {}
        self._populate()
        self.modules_header = QTreeWidgetItem([MY_MODULES])
        self._module_items: list[QTreeWidgetItem] = []
        self._setup_modules()
        self.search.textChanged.connect(self.apply_filter)
        self.search.installEventFilter(self)
        self.tree.itemActivated.connect(self._on_activated)

    # -- building --------------------------------------------------------------------------

    def _populate(self) -> None:
        header_font = QFont(self.tree.font())
        header_font.setBold(True)
        for category, entries in palette_entries().items():
            header = QTreeWidgetItem(self.tree, [category])
            header.setIcon(0, icons.category_icon(category))
            header.setFont(0, header_font)
            header.setFlags(Qt.ItemIsEnabled)
            header.setData(0, Qt.AccessibleTextRole, f"{category} blocks")
            for entry in entries:
                item = QTreeWidgetItem(header, [entry.title])
                item.setIcon(0, icons.block_icon(entry.block_type))
                item.setData(0, ENTRY_ROLE, entry)
                item.setToolTip(0, self._tooltip(entry))
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
            self._categories.append(header)
            self._children[header] = [header.child(i) for i in range(header.childCount())]
        self.tree.expandAll()

    def _setup_modules(self) -> None:
        header = self.modules_header
        font = QFont(self.tree.font())
        font.setBold(True)
        header.setFont(0, font)
        header.setFlags(Qt.ItemIsEnabled)
        header.setToolTip(0, "The project's modules: drag one onto the canvas for another "
                             "instance (select blocks and press Ctrl+G to make one)")
        self.tree.insertTopLevelItem(0, header)
        document = self.document
        if document is not None:
            document.graph_event.connect(self._on_graph_event)
            document.project_replaced.connect(self.refresh_modules)
        self.refresh_modules()

    def _on_graph_event(self, event: GraphEvent) -> None:
        if event.kind in (EventKind.DEFINITION_ADDED, EventKind.DEFINITION_REMOVED,
                          EventKind.DEFINITION_CHANGED):
            self.refresh_modules()

    def refresh_modules(self) -> None:
        """List the project's definitions under "My modules" (hidden while there are none)."""
        definitions: list[ModuleDef] = self.document.graph.definitions if self.document else []
        header = self.modules_header
        header.takeChildren()
        self._module_items = []
        for definition in sorted(definitions, key=lambda d: d.name.casefold()):
            entry = ModuleEntry(definition.id, definition.name, len(definition.blocks))
            item = QTreeWidgetItem(header, [entry.title])
            item.setIcon(0, icons.category_icon("Module"))
            item.setData(0, ENTRY_ROLE, entry)
            item.setToolTip(0, f"Module '{entry.title}': {entry.blocks} blocks. Drag it onto "
                               "the canvas (or double-click) for another instance.")
            item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
            self._module_items.append(item)
        self._filter_modules(self.search.text().strip())
        header.setExpanded(True)

    def module_titles(self, visible_only: bool = False) -> list[str]:
        return [item.text(0) for item in self._module_items
                if not (visible_only and (item.isHidden() or self.modules_header.isHidden()))]

    def module_item(self, title: str) -> QTreeWidgetItem | None:
        return next((item for item in self._module_items if item.text(0) == title), None)

    def _filter_modules(self, needle: str) -> None:
        """Show the definitions that match (the header first, back at the top: hiding works
        on items in the tree only, and `_arrange` takes every top-level item out)."""
        if self.tree.indexOfTopLevelItem(self.modules_header) < 0:
            self.tree.insertTopLevelItem(0, self.modules_header)
            self.modules_header.setExpanded(True)
        shown = 0
        for item in self._module_items:
            hidden = item.data(0, ENTRY_ROLE).rank(needle) is None
            item.setHidden(hidden)
            shown += not hidden
        self.modules_header.setHidden(shown == 0)

    @staticmethod
    def _tooltip(entry: PaletteEntry) -> str:
        help_text = entry.block_type.help
        if entry.note:
            return f"{entry.note}\n\n{entry.block_type.display_name}: {help_text}"
        return help_text

    # -- reading (for the window and tests) ------------------------------------------------

    def categories(self) -> list[str]:
        return [header.text(0) for header in self._categories]

    def entries(self, visible_only: bool = False) -> list[PaletteEntry]:
        """The block entries ("My modules" aside: `module_titles`)."""
        return [item.data(0, ENTRY_ROLE) for item in self._entry_items()
                if not (visible_only and item.isHidden())]

    def _entry_items(self) -> list[QTreeWidgetItem]:
        return [item for header in self._categories for item in self._children[header]]

    def _shown_items(self) -> list[QTreeWidgetItem]:
        """The entries the search shows, top to bottom."""
        tree = self.tree
        headers = (tree.topLevelItem(k) for k in range(tree.topLevelItemCount()))
        return [header.child(i) for header in headers if not header.isHidden()
                for i in range(header.childCount()) if not header.child(i).isHidden()]

    def shown_titles(self) -> list[str]:
        return [item.text(0) for item in self._shown_items()]

    def item_for(self, title: str) -> QTreeWidgetItem | None:
        return next((item for item in self._entry_items() if item.text(0) == title), None)

    def mime_data(self, item: QTreeWidgetItem) -> QMimeData:
        return self.tree.mimeData([item])

    # -- behaviour -------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus(Qt.ShortcutFocusReason)
        self.search.selectAll()

    def apply_filter(self, text: str) -> None:
        """Show the entries that match, best first: categories ordered by their best match,
        entries by theirs (ties keep the palette's order); the empty search restores it."""
        needle = text.strip()
        order: list[tuple[int, int, QTreeWidgetItem, list[QTreeWidgetItem]]] = []
        for index, header in enumerate(self._categories):
            ranked = []
            for item in self._children[header]:
                rank = item.data(0, ENTRY_ROLE).rank(needle)
                item.setHidden(rank is None)
                if rank is not None:
                    ranked.append((rank, len(ranked), item))
            ranked.sort(key=lambda entry: entry[:2])
            header.setHidden(not ranked)
            best = ranked[0][0] if ranked else len(MATCH_RANKS)
            order.append((best, index, header, [item for _r, _i, item in ranked]))
        order.sort(key=lambda entry: entry[:2])
        self._arrange([(header, items) for _b, _i, header, items in order], bool(needle))
        self._filter_modules(needle)
        first = next((items[0] for _b, _i, _h, items in order if items), None)
        self.empty_label.setVisible(first is None and self.modules_header.isHidden())
        self.tree.setCurrentItem(first if needle else None)

    def _arrange(self, order: list[tuple[QTreeWidgetItem, list[QTreeWidgetItem]]],
                 expand: bool) -> None:
        """Put categories and their shown entries in this order (hidden entries last)."""
        tree = self.tree
        current = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
        wanted = [header for header, _items in order]
        same = current == wanted and all(
            [header.child(i) for i in range(len(items))] == items for header, items in order)
        if not same:
            expanded = {header: header.isExpanded() for header in wanted}
            while tree.topLevelItemCount():
                tree.takeTopLevelItem(0)
            for header, items in order:
                rest = [item for item in self._children[header] if item not in items]
                header.takeChildren()
                header.addChildren(items + rest)
                tree.addTopLevelItem(header)
                header.setExpanded(expanded[header])
        for header, items in order:
            if expand and items:
                header.setExpanded(True)

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        entry = item.data(0, ENTRY_ROLE)
        if isinstance(entry, PaletteEntry):
            self.block_requested.emit(entry.type_id, entry.payload()["params"])
        elif isinstance(entry, ModuleEntry):
            self.module_requested.emit(entry.definition_id)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.search and event.type() == QEvent.KeyPress:
            key = event.key() if isinstance(event, QKeyEvent) else None
            if key in (Qt.Key_Return, Qt.Key_Enter):
                current = self.tree.currentItem()
                if current is not None and not current.isHidden():
                    self._on_activated(current)
                return True
            if key == Qt.Key_Down:
                self.tree.setFocus(Qt.TabFocusReason)
                if self.tree.currentItem() is None:
                    visible = self._shown_items()
                    if visible:
                        self.tree.setCurrentItem(visible[0])
                return True
            if key == Qt.Key_Escape and self.search.text():
                self.search.clear()
                return True
        return super().eventFilter(watched, event)
