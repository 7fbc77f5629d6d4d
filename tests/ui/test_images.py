"""The one NumPy → QImage conversion the lab, the inspection views and the plots share."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from cnnstudio.ui.images import IMAGE_FILTER, IMAGE_SUFFIXES, image_of, qimage, text_on


def test_grey_and_rgb_arrays_keep_their_pixels_and_own_a_copy():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = qimage(grey)
    assert (image.width(), image.height()) == (4, 3)
    assert QColor(image.pixel(2, 1)).red() == grey[1, 2]
    grey[:] = 0  # the image owns its pixels
    assert QColor(image.pixel(2, 1)).red() == 120
    rgb = np.zeros((2, 5, 3), np.uint8)
    rgb[1, 4] = (10, 200, 30)
    assert QColor(qimage(rgb).pixel(4, 1)).getRgb()[:3] == (10, 200, 30)


def test_a_dataset_image_is_channels_first_and_its_alpha_is_dropped():
    rgba = np.zeros((4, 2, 3), np.uint8)
    rgba[:, 1, 2] = (50, 60, 70, 0)
    image = image_of(rgba)
    assert (image.width(), image.height()) == (3, 2)
    assert QColor(image.pixel(2, 1)).getRgb() == (50, 60, 70, 255)
    assert QColor(image_of(np.full((1, 2, 2), 90, np.uint8)).pixel(0, 0)).red() == 90


def test_the_open_dialog_offers_every_suffix_a_drop_accepts():
    assert all(f"*{suffix}" in IMAGE_FILTER for suffix in IMAGE_SUFFIXES)


def test_text_reads_on_light_and_dark_cells():
    assert text_on(QColor("#ffffff")) == QColor("#111111")
    assert text_on(QColor("#202020")) == QColor("#ffffff")
