"""ParamSpec: coercion, bounds and the exact wording of problems."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnstudio.core.params import ParamError, ParamSpec, format_value

KERNEL = ParamSpec("kernel", "pair", [3, 3], minimum=1, maximum=255)
PADDING = ParamSpec("padding", "padding", "valid", maximum=255)
FILTERS = ParamSpec("filters", "int", 32, minimum=1, maximum=65536)
RATE = ParamSpec("rate", "float", 0.5, minimum=0.0, maximum=0.99)


@pytest.mark.parametrize("given_, expected", [
    (3, [3, 3]), ([3, 1], [3, 1]), ((1, 7), [1, 7]), ("3", [3, 3]), ("3x1", [3, 1]),
    ("3×1", [3, 1]), ("1, 7", [1, 7]), (" 5 X 5 ", [5, 5]),
])
def test_pair_accepts_kernel_editor_forms(given_, expected):
    assert KERNEL.coerce(given_) == expected


@pytest.mark.parametrize("bad", [[0, 3], [3], [3, 3, 3], "3x", "a", -1, 2.5, True, None, [1, 256],
                                 "3x²", "٣", "9" * 5000])
def test_pair_rejects(bad):
    with pytest.raises(ParamError, match="expected two positive integers"):
        KERNEL.coerce(bad)


def test_pair_message_names_the_value():
    with pytest.raises(ParamError) as err:
        KERNEL.coerce([0, 3])
    assert str(err.value) == "expected two positive integers (at most 255), got [0, 3]"


@pytest.mark.parametrize("given_, expected", [
    ("same", "same"), ("VALID", "valid"), ("full", "full"), ([1, 2], [1, 2]), (0, [0, 0]),
])
def test_padding(given_, expected):
    assert PADDING.coerce(given_) == expected


def test_padding_rejects_negative():
    with pytest.raises(ParamError, match="'valid', 'same', 'full' or two non-negative"):
        PADDING.coerce([-1, 0])


def test_int_bounds_and_huge_numbers():
    assert FILTERS.coerce(64) == 64
    assert FILTERS.coerce(64.0) == 64
    for bad in (0, 10**30, True, "64", 1.5, float("nan")):
        with pytest.raises(ParamError, match="expected an integer from 1 to 65,536"):
            FILTERS.coerce(bad)


def test_float_rejects_nan_and_infinity():
    assert RATE.coerce(0) == 0.0
    for bad in (math.nan, math.inf, 1.0, -0.1, "0.5"):
        with pytest.raises(ParamError, match="expected a number from 0 to 0.99"):
            RATE.coerce(bad)


def test_choice_and_bool():
    spec = ParamSpec("mode", "choice", "max", choices=("max", "average"))
    assert spec.coerce("average") == "average"
    with pytest.raises(ParamError, match="expected one of 'max', 'average', got 'min'"):
        spec.coerce("min")
    flag = ParamSpec("bias", "bool", True)
    with pytest.raises(ParamError, match="expected true or false, got 1"):
        flag.coerce(1)


def test_format_value():
    assert format_value([3, 1]) == "3×1"
    assert format_value(True) == "on"
    assert format_value(0.5) == "0.5"


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                 st.lists(st.integers()), st.dictionaries(st.text(), st.integers())))
def test_coerce_only_ever_raises_param_error(value):
    for spec in (KERNEL, PADDING, FILTERS, RATE):
        try:
            spec.coerce(value)
        except ParamError:
            pass


MATRIX = ParamSpec("initial_kernel", "matrix", None, maximum=7)


def test_matrix_accepts_null_and_rows_of_numbers():
    assert MATRIX.coerce(None) is None
    assert MATRIX.coerce([[1, 0, -1], [2, 0.5, -2]]) == [[1.0, 0.0, -1.0], [2.0, 0.5, -2.0]]
    assert MATRIX.coerce(((1,),)) == [[1.0]]
    assert format_value([[1.0, 2.0], [3.0, 4.0]]) == "2×2 matrix"


@pytest.mark.parametrize("bad", [[], [[]], [[1], [1, 2]], [[True]], "1 0", 3, [1, 2],
                                 [[float("nan")]], [[1] * 8], [[1]] * 8, [["1"]]])
def test_matrix_rejects(bad):
    with pytest.raises(ParamError) as err:
        MATRIX.coerce(bad)
    assert str(err.value).startswith(
        "expected null or a matrix (at most 7×7): a list of rows of numbers, every row as long, "
        "got ")
