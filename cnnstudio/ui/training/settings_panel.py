"""The training settings: a form generated from core.settings.TRAINING.

Each row is the field the inspector uses for the same ParamSpec kind; an edit becomes
`Document.update_settings("training", ...)` (undoable, marks the document changed). Settings
without effect under the current choice are greyed out (TRAINING.is_relevant). Augmentations
are checkboxes with a live preview: the same few images, augmented as training would. The
device list shows only what this machine has; finding that out imports torch, so it happens
on a worker thread once the page is first shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.params import ParamError
from cnnstudio.core.settings import AUGMENTATIONS, TRAINING, parse_augment
from cnnstudio.ui.document import Document
from cnnstudio.ui.panels.param_fields import ChoiceField, ParamField, make_field
from cnnstudio.ui.training.dataset_panel import image_grid, outline_indicators, run_in_background

CHOICE_TEXT = {
    "sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
    "constant": "constant", "step": "step decay", "cosine": "cosine", "one_cycle": "one cycle",
    "cross_entropy": "cross-entropy", "mse": "mean squared error",
    "auto": "auto (a GPU if there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple MPS",
}
# choices whose words mean something else in another setting ("auto" above is the device's)
SETTING_CHOICE_TEXT = {
    "precision": {"auto": "auto (bf16 on a GPU, else float32)", "float32": "float32",
                  "float16": "float16 (GPU only)", "bf16": "bf16"},
}
AUGMENT_TEXT = {
    "flip": ("Flip", "Mirror left-right, half of the images."),
    "translate": ("Translate", "Shift by up to 10 % of the side, either way."),
    "rotate": ("Rotate", "Turn by up to 10 degrees, either way."),
    "scale": ("Scale", "Zoom between 0.9 and 1.1."),
    "channel_permute": ("Channel permute", "Shuffle the colour channels (colour images)."),
    "grayscale": ("Grey-scale", "Turn a fifth of the colour images grey."),
}
PREVIEW_IMAGES = 8
PREVIEW_CELL = 40
BASE_DEVICES = ("auto", "cpu")


def available_devices() -> list[str]:
    """auto, cpu, and cuda / mps where this machine has them (imports torch)."""
    import torch

    found = list(BASE_DEVICES)
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def augment_images(images: np.ndarray, names: list[str], seed: int) -> np.ndarray:
    """uint8 N×C×H×W images augmented as a training batch would be (torch is loaded by now)."""
    import torch

    from cnnstudio.train.augment import AugmentConfig, augment_batch
    from cnnstudio.ui import torch_threads

    torch_threads.single_threaded()  # the GUI thread's torch work (see torch_threads)

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    generator = torch.Generator()
    generator.manual_seed(seed)
    out = augment_batch(x, AugmentConfig.from_names(names), generator)
    return out.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


class SettingsPanel(QWidget):
    """Hyper-parameters of the project's training, stored in the project."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.fields: dict[str, ParamField] = {}
        self.labels: dict[str, QLabel] = {}
        self.devices: list[str] = list(BASE_DEVICES)
        self._probed = False
        self.devices_known = False  # the probe has answered
        self.samples: np.ndarray | None = None
        self._draw = 0
        self.preview_count = 0
        self._applying: ParamField | None = None

        form = self.form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for spec in TRAINING.params:
            if spec.name == "augment":
                continue
            field = make_field(spec)
            if isinstance(field, ChoiceField):
                texts = {**CHOICE_TEXT, **SETTING_CHOICE_TEXT.get(spec.name, {})}
                for i in range(field.combo.count()):
                    data = field.combo.itemData(i)
                    field.combo.setItemText(i, texts.get(data, field.combo.itemText(i)))
            field.edited.connect(lambda value, n=spec.name, f=field: self._store(n, value, f))
            label = QLabel(spec.title)
            label.setToolTip(spec.help)
            label.setBuddy(field.focus_widget)
            form.addRow(label, field.widget)
            self.fields[spec.name] = field
            self.labels[spec.name] = label
        self.device_field = self.fields["device"]
        assert isinstance(self.device_field, ChoiceField)

        self.augment_box = QGroupBox("Augmentation")
        self.augment_box.setToolTip(TRAINING.param("augment").help)
        self.augment_checks: dict[str, QCheckBox] = {}
        checks = QGridLayout()
        for i, name in enumerate(AUGMENTATIONS):
            text, tip = AUGMENT_TEXT.get(name, (name.replace("_", " ").capitalize(), ""))
            check = QCheckBox(text)
            check.setToolTip(tip)
            check.clicked.connect(self._on_augment)
            self.augment_checks[name] = check
            checks.addWidget(check, i // 2, i % 2)
        self.originals = QLabel()
        self.augmented = QLabel()
        self.preview_note = QLabel("The preview appears once the dataset has loaded.")
        self.preview_note.setWordWrap(True)
        self.redraw_button = QPushButton("New draw")
        self.redraw_button.setToolTip("Augment the same images again with new random draws.")
        self.redraw_button.clicked.connect(self._new_draw)
        row = QHBoxLayout()
        row.addWidget(self.preview_note, 1)
        row.addWidget(self.redraw_button, 0, Qt.AlignTop)
        box = QVBoxLayout(self.augment_box)
        box.addLayout(checks)
        box.addWidget(self.originals)
        box.addWidget(self.augmented)
        box.addLayout(row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(10)
        layout.addLayout(form)
        layout.addWidget(self.augment_box)
        layout.addStretch(1)

        document.settings_changed.connect(self._on_settings_changed)
        document.project_replaced.connect(self.refresh)
        self.refresh()
        self.apply_theme()

    # -- values ------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        return TRAINING.normalize(self.document.project.training)[0]

    def refresh(self) -> None:
        """Show the project's settings (opened, replaced, undone) and grey out the irrelevant."""
        values = self.values()
        self._fill_devices(values["device"])
        for name, field in self.fields.items():
            if field is not self._applying:  # never echo into the field being edited
                field.set_value(values[name])
            relevant = TRAINING.is_relevant(name, values)
            field.widget.setEnabled(relevant)
            self.labels[name].setEnabled(relevant)
        chosen = set(parse_augment(values["augment"]))
        for name, check in self.augment_checks.items():
            with QSignalBlocker(check):
                check.setChecked(name in chosen)
        self.refresh_preview()

    def _on_settings_changed(self, group: str, _changes: dict[str, Any]) -> None:
        if group == "training":
            self.refresh()

    def _store(self, name: str, value: Any, field: ParamField | None = None) -> None:
        self._applying = field
        try:
            self.document.update_settings("training", {name: value})
        except ParamError as err:
            if field is not None:
                field.show_error(str(err))
        finally:
            self._applying = None

    def _on_augment(self) -> None:
        names = [n for n in AUGMENTATIONS if self.augment_checks[n].isChecked()]
        self._store("augment", ", ".join(names))

    def add_beside(self, name: str, widget: QWidget) -> None:
        """Show `widget` to the right of the field of setting `name`: a tool for that setting
        (the Training page's learning-rate finder)."""
        field = self.fields[name].widget
        row, _role = self.form.getWidgetPosition(field)
        self.form.removeWidget(field)
        holder = QWidget()
        box = QHBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(field, 1)
        box.addWidget(widget, 0, Qt.AlignTop)
        self.form.setWidget(row, QFormLayout.FieldRole, holder)

    def chosen_augmentations(self) -> list[str]:
        return parse_augment(self.values()["augment"])

    # -- devices -------------------------------------------------------------------------

    def probe_devices(self) -> None:
        """Find the devices of this machine on a worker thread (once)."""
        if not self._probed:
            self._probed = True
            run_in_background(lambda _progress: available_devices(), self._on_devices,
                              lambda _message: None)

    def _on_devices(self, devices: list[str]) -> None:
        self.devices = list(devices)
        self.devices_known = True
        self._fill_devices(self.values()["device"])

    def _fill_devices(self, current: str) -> None:
        combo = self.device_field.combo  # type: ignore[attr-defined]
        with QSignalBlocker(combo):
            combo.clear()
            for device in self.devices:
                combo.addItem(CHOICE_TEXT.get(device, device), device)
            if current not in self.devices:
                combo.addItem(f"{CHOICE_TEXT.get(current, current)} (not available here)",
                              current)
            combo.setCurrentIndex(combo.findData(current))

    # -- augmentation preview ------------------------------------------------------------

    def set_samples(self, images: np.ndarray | None) -> None:
        """The images the augmentation preview shows (from the dataset preview)."""
        self.samples = None if images is None or not len(images) else images[:PREVIEW_IMAGES]
        self.refresh_preview()

    def _new_draw(self) -> None:
        self._draw += 1
        self.refresh_preview()

    def refresh_preview(self) -> None:
        names = self.chosen_augmentations()
        self.redraw_button.setEnabled(self.samples is not None and bool(names))
        if self.samples is None:
            self.originals.clear()
            self.augmented.clear()
            self.preview_note.setText("The preview appears once the dataset has loaded.")
            return
        self.originals.setPixmap(image_grid(self.samples, [], PREVIEW_IMAGES, PREVIEW_CELL))
        if not names:
            self.augmented.clear()
            self.augmented.hide()
            self.preview_note.setText("No augmentation: training sees the images as they are.")
            return
        try:
            shown = augment_images(self.samples, names, self._draw)
        except (ValueError, RuntimeError) as err:
            self.augmented.hide()
            self.preview_note.setText(str(err))
            return
        self.augmented.setPixmap(image_grid(shown, [], PREVIEW_IMAGES, PREVIEW_CELL))
        self.augmented.show()
        self.preview_count += 1
        self.preview_note.setText("Top: the images. Below: as training may see them "
                                  "(a new random draw each time).")

    def apply_theme(self) -> None:
        for check in (*self.augment_checks.values(),
                      self.fields["nesterov"].check):  # type: ignore[attr-defined]
            outline_indicators(check)
        if self.samples is not None:
            self.refresh_preview()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self.apply_theme()
