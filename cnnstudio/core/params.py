"""Typed block parameters: declaration, validation and normalisation.

Values are kept JSON-friendly: pairs are two-item lists, padding is a mode string or a pair, a
matrix is null or a list of equally long rows of numbers (for a matrix, `maximum` bounds the
number of rows and columns, not the values).
Every check returns a message that names what was expected and what was given, so the same
text can appear in the inspector, in a diagnostic and in a project-file error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

PARAM_KINDS = (
    "int", "float", "bool", "choice", "pair", "padding", "optional_pair", "text", "matrix",
)
PADDING_MODES = ("valid", "same", "full")


class ParamError(ValueError):
    """A parameter value that does not fit its declaration."""


def _describe(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _json_like(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_like(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_json_like(v) for v in value) + "]"
    return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_PAIR_SEPARATORS = re.compile(r"\s*(?:[x×X*,]|\s)\s*")


def _parse_pair_text(text: str) -> list[int] | None:
    parts = _PAIR_SEPARATORS.split(text.strip())
    if not 1 <= len(parts) <= 2 or not all(p.isascii() and p.isdigit() and len(p) <= 9
                                            for p in parts):
        return None
    numbers = [int(p) for p in parts]
    return numbers * 2 if len(numbers) == 1 else numbers


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a block type: its kind, default, bounds or choices, and help text."""

    name: str
    kind: str
    default: Any
    label: str = ""
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        if self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} of {self.name} is not a choice")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def coerce(self, value: Any) -> Any:
        """Return the normalised value, or raise ParamError saying what is wrong."""
        return getattr(self, f"_coerce_{self.kind}")(value)

    # -- one checker per kind -------------------------------------------------------------

    def _bounds_text(self) -> str:
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return f" from {_fmt_num(lo)} to {_fmt_num(hi)}"
        if lo is not None:
            return f" of at least {_fmt_num(lo)}"
        if hi is not None:
            return f" of at most {_fmt_num(hi)}"
        return ""

    def _in_bounds(self, number: float) -> bool:
        return (self.minimum is None or number >= self.minimum) and (
            self.maximum is None or number <= self.maximum
        )

    def _coerce_int(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        if not _is_int(value) or not self._in_bounds(value):
            raise ParamError(f"expected an integer{self._bounds_text()}, got {_describe(value)}")
        return value

    def _coerce_float(self, value: Any) -> float:
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
        if not ok or not self._in_bounds(value):
            raise ParamError(f"expected a number{self._bounds_text()}, got {_describe(value)}")
        return float(value)

    def _coerce_bool(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ParamError(f"expected true or false, got {_describe(value)}")
        return value

    def _coerce_choice(self, value: Any) -> str:
        if value not in self.choices:
            options = ", ".join(repr(c) for c in self.choices)
            raise ParamError(f"expected one of {options}, got {_describe(value)}")
        return value

    def _coerce_text(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > 200:
            raise ParamError(f"expected a text of at most 200 characters, got {_describe(value)}")
        return value

    def _coerce_matrix(self, value: Any) -> list[list[float]] | None:
        if value is None:
            return None
        side = int(self.maximum) if self.maximum is not None else None
        if not _is_matrix(value, side):
            bound = f" (at most {side}×{side})" if side is not None else ""
            raise ParamError(
                f"expected null or a matrix{bound}: a list of rows of numbers, every row as "
                f"long, got {_describe(value)}"
            )
        return [[float(v) for v in row] for row in value]

    def _pair_error(self, value: Any) -> ParamError:
        lo = 0 if self.minimum == 0 else 1
        what = "non-negative" if lo == 0 else "positive"
        bound = f" (at most {_fmt_num(self.maximum)})" if self.maximum is not None else ""
        return ParamError(f"expected two {what} integers{bound}, got {_describe(value)}")

    def _coerce_pair(self, value: Any) -> list[int]:
        if isinstance(value, str):
            parsed = _parse_pair_text(value)
            if parsed is None:
                raise self._pair_error(value)
            value = parsed
        elif _is_int(value):
            value = [value, value]
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(_is_int(v) and self._in_bounds(v) for v in value)
        ):
            raise self._pair_error(value)
        return [int(value[0]), int(value[1])]

    def _coerce_optional_pair(self, value: Any) -> list[int] | None:
        if value is None:
            return None
        try:
            return self._coerce_pair(value)
        except ParamError as err:
            raise ParamError(f"{err} or null") from None

    def _coerce_padding(self, value: Any) -> str | list[int]:
        if isinstance(value, str) and value.strip().lower() in PADDING_MODES:
            return value.strip().lower()
        explicit = ParamSpec(self.name, "pair", [0, 0], minimum=0, maximum=self.maximum)
        try:
            return explicit.coerce(value)
        except ParamError:
            raise ParamError(
                "expected 'valid', 'same', 'full' or two non-negative integers (ph, pw), "
                f"got {_describe(value)}"
            ) from None


def _is_matrix(value: Any, side: int | None) -> bool:
    """A non-empty list of equally long, non-empty rows of finite numbers, within side×side."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    if not all(isinstance(row, (list, tuple)) and row for row in value):
        return False
    if len({len(row) for row in value}) != 1:
        return False
    if side is not None and (len(value) > side or len(value[0]) > side):
        return False
    return all((_is_int(v) or isinstance(v, float)) and math.isfinite(v)
               for row in value for v in row)


def _fmt_num(number: float) -> str:
    if float(number).is_integer():
        return f"{int(number):,}"
    return f"{number:g}"


def format_value(value: Any) -> str:
    """Short human text for a parameter value, as shown on a block: 3×3, same, 0.5."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return f"{len(value)}×{len(value[0])} matrix"
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]}×{value[1]}"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
