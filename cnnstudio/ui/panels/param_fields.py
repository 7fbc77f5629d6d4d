"""Editors for block parameters, one per ParamSpec kind, generated from the declaration.

Each field shows a value (or MIXED when several selected blocks disagree) without emitting
anything, and emits `edited(value)` only for user input that passes ParamSpec.coerce; input
that does not shows the ParamError message in red under the field and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QValidator, QWheelEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnnstudio.core.params import PADDING_MODES, ParamError, ParamSpec
from cnnstudio.ui import theme


class _Mixed:
    """The selected blocks hold different values for this parameter."""

    def __repr__(self) -> str:
        return "MIXED"


MIXED: Any = _Mixed()
MIXED_TEXT = "—"
MIXED_PLACEHOLDER = "— (values differ)"
EXPLICIT = "explicit"
CHOICE_LABELS = {
    "relu": "ReLU", "leaky_relu": "Leaky ReLU", "elu": "ELU", "selu": "SELU", "gelu": "GELU",
    "l2": "L2 norm", "global_max": "global max", "global_average": "global average",
    "adaptive_max": "adaptive max", "adaptive_average": "adaptive average",
    "relu6": "ReLU6", "silu": "SiLU (Swish)", "hardswish": "Hardswish",
    "hardsigmoid": "Hardsigmoid",
    "none": "none",
}
PADDING_LABELS = {"valid": "valid (no padding)", "same": "same (keep size)",
                  "full": "full (pad k−1)", EXPLICIT: "explicit ph×pw"}
OPTIONAL_PLACEHOLDERS = {"stride": "same as pool size"}
_PAIR_SEPARATORS = "x×X*, "


def format_pair(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]}×{value[1]}"
    return "" if value is None else str(value)


def format_float(value: float) -> str:
    """Short text for a float: 0.5, 1e-5, 0.0001, 2."""
    text = f"{value:.6g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def pair_incomplete(text: str) -> bool:
    """Text the user is probably still typing ('', '5x'): no error shown yet."""
    stripped = text.strip()
    return not stripped or stripped[-1] in _PAIR_SEPARATORS


class ParamField(QObject):
    """One editor row: its widget (editor above a hidden error line) and its value."""

    edited = Signal(object)

    def __init__(self, host: ParamField | None = None) -> None:
        self.unused_reason = ""  # why the values of the other fields leave this one unused
        if host is not None:
            super().__init__(host)
            self.widget: QWidget = host.widget
            self.error_label: QLabel = host.error_label
            self._row: QHBoxLayout = host._row
            return
        widget = QWidget()
        super().__init__(widget)
        self.widget = widget
        layout = QVBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self._row = QHBoxLayout()
        self._row.setSpacing(4)
        layout.addLayout(self._row)
        self.error_label = QLabel(widget)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)

    @property
    def focus_widget(self) -> QWidget:
        item = self._row.itemAt(0)
        return item.widget() if item is not None else self.widget

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def show_error(self, message: str) -> None:
        self.error_label.setStyleSheet(f"color: {theme.current().error.name()};")
        self.error_label.setText(message[:1].upper() + message[1:])
        self.error_label.show()

    def clear_error(self) -> None:
        self.error_label.hide()
        self.error_label.clear()

    @property
    def error_text(self) -> str:
        return self.error_label.text() if not self.error_label.isHidden() else ""


# -- numbers ---------------------------------------------------------------------------------


class _IntSpin(QSpinBox):
    """A spin box that ignores the wheel unless focused and lets typing replace '—'."""

    def validate(self, text: str, pos: int) -> object:
        cleaned = text.replace(MIXED_TEXT, "")
        return super().validate(cleaned, min(pos, len(cleaned)))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class _FloatSpin(QDoubleSpinBox):
    """Arrows for ordinary values, free typing for tiny ones: accepts 0.5, 1e-5, 2.5E-4."""

    def textFromValue(self, value: float) -> str:  # noqa: N802
        return format_float(value)

    def valueFromText(self, text: str) -> float:  # noqa: N802
        if self.specialValueText() and text == self.specialValueText():
            return self.minimum()
        try:
            return float(text.replace(MIXED_TEXT, "").strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        cleaned = text.replace(MIXED_TEXT, "").strip()
        pos = min(pos, len(cleaned))
        if not all(c in "0123456789.eE+-" for c in cleaned):
            return QValidator.Invalid, cleaned, pos
        try:
            number = float(cleaned)
        except ValueError:
            return QValidator.Intermediate, cleaned, pos
        inside = self.minimum() <= number <= self.maximum()
        return (QValidator.Acceptable if inside else QValidator.Intermediate), cleaned, pos

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


def _float_step(spec: ParamSpec) -> float:
    default = abs(float(spec.default))
    if default == 0:
        return 1e-4  # penalties start at zero and take small values
    magnitude = 10.0 ** math.floor(math.log10(default))
    if spec.maximum is not None and spec.maximum <= 1:
        return 0.05 if default >= 0.05 else magnitude
    return magnitude / 10


class _NumberField(ParamField):
    """Int or float in a spin box; MIXED shows '—' one step below the declared minimum."""

    def __init__(self, spec: ParamSpec, spin: QSpinBox | QDoubleSpinBox, lo: float,
                 hi: float, below: float) -> None:
        super().__init__()
        self.spec = spec
        self.spin = spin
        self.lo, self.hi, self._below = lo, hi, below
        self._mixed = False
        spin.setRange(lo, hi)
        spin.setKeyboardTracking(True)
        spin.setAccelerated(True)
        spin.setFocusPolicy(Qt.StrongFocus)
        self._row.addWidget(spin)
        spin.valueChanged.connect(self._on_value)

    def set_value(self, value: Any) -> None:
        blocker = QSignalBlocker(self.spin)
        self._mixed = value is MIXED
        if self._mixed:
            self.spin.setMinimum(self._below)
            self.spin.setSpecialValueText(MIXED_TEXT)
            self.spin.setValue(self._below)
        else:
            self.spin.setSpecialValueText("")
            self.spin.setMinimum(self.lo)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.spin.setValue(value)
        blocker.unblock()
        self.clear_error()

    def _on_value(self, value: float) -> None:
        if self._mixed:
            blocker = QSignalBlocker(self.spin)
            self._mixed = False
            self.spin.setSpecialValueText("")
            self.spin.setMinimum(self.lo)
            value = max(value, self.lo)
            self.spin.setValue(value)
            blocker.unblock()
        try:
            self.edited.emit(self.spec.coerce(value))
        except ParamError as err:
            self.show_error(str(err))


def _int_field(spec: ParamSpec) -> _NumberField:
    lo = int(spec.minimum) if spec.minimum is not None else -(2**31) + 2
    hi = int(spec.maximum) if spec.maximum is not None else 2**31 - 1
    return _NumberField(spec, _IntSpin(), lo, hi, lo - 1)


def _float_field(spec: ParamSpec) -> _NumberField:
    spin = _FloatSpin()
    spin.setDecimals(12)
    spin.setSingleStep(_float_step(spec))
    lo = float(spec.minimum) if spec.minimum is not None else -1e12
    hi = float(spec.maximum) if spec.maximum is not None else 1e12
    return _NumberField(spec, spin, lo, hi, lo - 1.0)


# -- switches and lists ----------------------------------------------------------------------


class BoolField(ParamField):
    def __init__(self) -> None:
        super().__init__()
        self.check = QCheckBox()
        self._row.addWidget(self.check)
        self._row.addStretch(1)
        self.check.clicked.connect(self._on_clicked)

    def set_value(self, value: Any) -> None:
        blocker = QSignalBlocker(self.check)
        self.check.setTristate(value is MIXED)
        self.check.setCheckState(Qt.PartiallyChecked if value is MIXED
                                 else Qt.Checked if value else Qt.Unchecked)
        blocker.unblock()

    def _on_clicked(self) -> None:
        checked = self.check.checkState() != Qt.Unchecked
        blocker = QSignalBlocker(self.check)
        self.check.setTristate(False)
        self.check.setChecked(checked)
        blocker.unblock()
        self.edited.emit(checked)


class ChoiceField(ParamField):
    def __init__(self, spec: ParamSpec) -> None:
        super().__init__()
        self.combo = QComboBox()
        for choice in spec.choices:
            self.combo.addItem(CHOICE_LABELS.get(choice, choice.replace("_", " ")), choice)
        self.combo.setPlaceholderText(MIXED_TEXT)
        self._row.addWidget(self.combo, 1)
        self.combo.activated.connect(lambda i: self.edited.emit(self.combo.itemData(i)))

    def set_value(self, value: Any) -> None:
        blocker = QSignalBlocker(self.combo)
        self.combo.setCurrentIndex(-1 if value is MIXED else self.combo.findData(value))
        blocker.unblock()


# -- typed text ------------------------------------------------------------------------------


class LineField(ParamField):
    """A line edit checked on every keystroke; valid text applies at once, in any spelling."""

    def __init__(self, parse: Callable[[str], Any], fmt: Callable[[Any], str],
                 placeholder: str = "", incomplete: Callable[[str], bool] = pair_incomplete,
                 host: ParamField | None = None) -> None:
        super().__init__(host)
        self.parse, self.fmt, self.incomplete = parse, fmt, incomplete
        self.placeholder = placeholder
        self._mixed = False
        self.line = QLineEdit()
        self.line.setPlaceholderText(placeholder)
        self._row.addWidget(self.line, 1)
        self.line.textEdited.connect(self._on_edited)
        self.line.editingFinished.connect(self._on_finished)

    def set_value(self, value: Any) -> None:
        self._mixed = value is MIXED
        self.line.setPlaceholderText(MIXED_PLACEHOLDER if self._mixed else self.placeholder)
        text = "" if self._mixed else self.fmt(value)
        if self.line.hasFocus() and not self._mixed and self._parses_to(value):
            self.clear_error()
            return  # the user's own spelling ("5x1") of the same value stays as typed
        position = self.line.cursorPosition()
        self.line.setText(text)
        if self.line.hasFocus():
            self.line.setCursorPosition(min(position, len(text)))
        self.clear_error()

    def _parses_to(self, value: Any) -> bool:
        try:
            return self.parse(self.line.text()) == value
        except (ParamError, ValueError):
            return False

    def _on_edited(self, text: str) -> None:
        try:
            value = self.parse(text)
        except (ParamError, ValueError) as err:
            if self.incomplete(text):
                self.clear_error()
            else:
                self.show_error(str(err))
            return
        self.clear_error()
        self._mixed = False
        self.edited.emit(value)

    def _on_finished(self) -> None:
        text = self.line.text()
        if self._mixed and not text.strip():
            return
        try:
            value = self.parse(text)
        except (ParamError, ValueError) as err:
            self.show_error(str(err))
            return
        if self.fmt(value) != text:
            self.line.setText(self.fmt(value))


def _pair_field(spec: ParamSpec) -> LineField:
    return LineField(spec.coerce, format_pair, "height×width, e.g. 3×3 or 1, 7")


def _optional_pair_field(spec: ParamSpec) -> LineField:
    pair = ParamSpec(spec.name, "pair", [1, 1], minimum=spec.minimum, maximum=spec.maximum)

    def parse(text: str) -> list[int] | None:
        if not text.strip():
            return None
        try:
            return pair.coerce(text)
        except ParamError as err:
            raise ParamError(f"{err}, or leave it empty") from None

    placeholder = OPTIONAL_PLACEHOLDERS.get(spec.name, "empty: default")
    return LineField(parse, format_pair, placeholder, incomplete=lambda t: pair_incomplete(t)
                     and bool(t.strip()))


class PaddingField(ParamField):
    """valid / same / full in a combo; 'explicit' enables a ph×pw editor beside it."""

    def __init__(self, spec: ParamSpec) -> None:
        super().__init__()
        self.combo = QComboBox()
        for mode in (*PADDING_MODES, EXPLICIT):
            self.combo.addItem(PADDING_LABELS.get(mode, mode), mode)
        self.combo.setPlaceholderText(MIXED_TEXT)
        self._row.addWidget(self.combo, 3)
        pair = ParamSpec(spec.name, "pair", [0, 0], minimum=0, maximum=spec.maximum)
        self.explicit = LineField(pair.coerce, format_pair, "ph×pw", host=self)
        self._row.setStretchFactor(self.explicit.line, 2)
        self._last_explicit: list[int] = [1, 1]
        self.explicit.edited.connect(self._on_explicit)
        self.combo.activated.connect(self._on_mode)

    def set_value(self, value: Any) -> None:
        blocker = QSignalBlocker(self.combo)
        if isinstance(value, list):
            self._last_explicit = list(value)
            self.combo.setCurrentIndex(self.combo.findData(EXPLICIT))
            self.explicit.line.setEnabled(True)
            self.explicit.set_value(value)
        else:
            self.combo.setCurrentIndex(-1 if value is MIXED else self.combo.findData(value))
            self.explicit.line.setEnabled(False)
            self.explicit.line.clear()
            self.clear_error()
        blocker.unblock()

    def _on_explicit(self, value: list[int]) -> None:
        self._last_explicit = list(value)
        self.edited.emit(value)

    def _on_mode(self, index: int) -> None:
        mode = self.combo.itemData(index)
        if mode != EXPLICIT:
            self.explicit.line.setEnabled(False)
            self.explicit.line.clear()
            self.clear_error()
            self.edited.emit(mode)
            return
        self.explicit.line.setEnabled(True)
        self.explicit.set_value(self._last_explicit)
        self.explicit.line.setFocus(Qt.OtherFocusReason)
        self.explicit.line.selectAll()
        self.edited.emit(list(self._last_explicit))


class MatrixField(ParamField):
    """A matrix (a Conv2D's initial kernel from the lab): shown compactly, with Clear."""

    def __init__(self, spec: ParamSpec) -> None:
        super().__init__()
        self.spec = spec
        self.label = QLabel()
        self.clear_button = QPushButton("Clear")
        self._row.addWidget(self.label, 1)
        self._row.addWidget(self.clear_button)
        self.clear_button.clicked.connect(lambda: self.edited.emit(None))

    def set_value(self, value: Any) -> None:
        if value is MIXED:
            text, matrix = MIXED_PLACEHOLDER, ""
        elif value:
            text = f"{len(value)}×{len(value[0])} kernel set"
            matrix = "\n".join("  ".join(format_float(v) for v in row) for row in value)
        else:
            text, matrix = "none (random start)", ""
        self.label.setText(text)
        self.label.setToolTip(f"{self.spec.help}\n\n{matrix}" if matrix else self.spec.help)
        self.clear_button.setEnabled(value is MIXED or bool(value))


def show_unused(field: ParamField, spec: ParamSpec, reason: str) -> None:
    """Grey a field out with the reason why it is unused as its tooltip, or (reason '') enable
    it again with its help; nothing changes when the reason is the one shown already."""
    if reason == field.unused_reason:
        return
    field.unused_reason = reason
    field.widget.setEnabled(not reason)
    for widget in (field.widget, *field.widget.findChildren(QWidget)):
        if widget is not field.error_label:
            widget.setToolTip(reason or spec.help)


def make_field(spec: ParamSpec) -> ParamField:
    """The editor for one declared parameter, with the declaration's help as tooltip."""
    if spec.kind == "int":
        field: ParamField = _int_field(spec)
    elif spec.kind == "float":
        field = _float_field(spec)
    elif spec.kind == "bool":
        field = BoolField()
    elif spec.kind == "choice":
        field = ChoiceField(spec)
    elif spec.kind == "pair":
        field = _pair_field(spec)
    elif spec.kind == "optional_pair":
        field = _optional_pair_field(spec)
    elif spec.kind == "padding":
        field = PaddingField(spec)
    elif spec.kind == "matrix":
        field = MatrixField(spec)
    else:
        field = LineField(spec.coerce, str, incomplete=lambda t: False)
    field.widget.setToolTip(spec.help)
    for child in field.widget.findChildren(QWidget):
        if child is not field.error_label:
            child.setToolTip(spec.help)
    return field
