"""Issue 14's rough edges in the convolution lab, driven as a student does (keys on the combos and
spin boxes): a Gaussian's weights read in full, a blurred photograph is drawn in grey (its
values have one sign) while edges keep the diverging map, and the step buttons stay put."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from cnnstudio.lab import ops
from tests.ui.test_lab import choose, lab, settle, type_into  # noqa: F401 (fixture by name)


def test_gaussian_weights_show_their_digits(qtbot, lab):
    editor = lab.filters.kernel_editor
    choose(qtbot, editor.library, "Gaussian")
    for size in ("5", "7"):
        type_into(qtbot, editor.size_spin, size)
        table, matrix = editor.table, editor.matrix()
        assert matrix.shape == (int(size), int(size))
        for r in range(table.rowCount()):
            for c in range(table.columnCount()):
                assert table.item(r, c).text() == ops.fmt(matrix[r, c])
        for c in range(table.columnCount()):  # Qt's own measure of what the text needs
            assert table.columnWidth(c) >= table.sizeHintForColumn(c), (size, c)
        assert table.width() <= lab.filters.width() // 3  # still a small matrix


def grey(image, point: QPoint) -> bool:
    colour = image.pixelColor(point)
    return colour.red() == colour.green() == colour.blue()


def test_a_blurred_photo_is_grey_and_edges_keep_the_diverging_map(qtbot, lab):
    filters = lab.filters
    settle(qtbot, filters)
    choose(qtbot, filters.kernel_editor.library, "Gaussian")
    settle(qtbot, filters)
    assert filters.conv_output.min() >= 0  # a blur of a photograph: one sign
    image = filters.output_view.tiles[0].image
    h, w = filters.conv_output.shape
    points = [QPoint(x, y) for x in range(5, w, w // 7) for y in range(5, h, h // 7)]
    assert all(grey(image, p) for p in points)
    brightest = np.unravel_index(np.argmax(filters.conv_output), filters.conv_output.shape)
    darkest = np.unravel_index(np.argmin(filters.conv_output), filters.conv_output.shape)
    assert image.pixelColor(int(brightest[1]), int(brightest[0])).lightness() > 240
    assert image.pixelColor(int(darkest[1]), int(darkest[0])).lightness() < 40
    low, middle, high = filters.output_view.bar_labels()
    assert low == "0" and high.startswith("≥ ") and middle != "0"

    choose(qtbot, filters.kernel_editor.library, "Vertical edges")
    settle(qtbot, filters)
    output = filters.conv_output
    assert output.min() < 0 < output.max()
    image = filters.output_view.tiles[0].image
    row, col = np.unravel_index(np.argmax(output), output.shape)
    red = image.pixelColor(int(col), int(row))
    assert red.red() > red.blue() + 60  # positive: red
    row, col = np.unravel_index(np.argmin(output), output.shape)
    blue = image.pixelColor(int(col), int(row))
    assert blue.blue() > blue.red() + 60  # negative: blue
    assert filters.output_view.bar_labels()[1] == "0"


def test_the_step_buttons_stay_put_whatever_the_example(qtbot, lab):
    lab.show_tab("steps")
    steps = lab.steps
    buttons = (steps.reset_button, steps.previous_button, steps.play_button, steps.next_button)

    def places() -> list[tuple[int, int, int]]:
        qtbot.wait(10)  # the layout settles on the next turn of the event loop
        return [(b.mapTo(steps, QPoint(0, 0)).x(), b.mapTo(steps, QPoint(0, 0)).y(), b.width())
                for b in buttons]

    first = places()
    for index in range(1, steps.example_combo.count()):
        choose(qtbot, steps.example_combo, steps.example_combo.itemText(index))
        assert steps.example.key == steps.example_combo.itemData(index)
        assert places() == first, steps.example_combo.itemText(index)
    type_into(qtbot, steps.rows_spin, "9")  # a bigger input, same place
    assert places() == first
    qtbot.mouseClick(steps.play_button, Qt.MouseButton.LeftButton)
    assert steps.play_button.text() == "Pause" and places() == first
    steps.stop()
