"""Images in the window: NumPy arrays as QImages, image files dropped or opened, and the text
colour that reads on a painted cell.

One place for what the lab, the inspection views and the training plots all draw: each QImage
owns a copy of its pixels, so the array may change or go once the image exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"


def image_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    """Local image files dragged onto a widget."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls()
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES)]


def qimage(array: np.ndarray) -> QImage:
    """A QImage owning a copy of a uint8 H×W (grey) or H×W×3 (RGB) array."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    height, width = data.shape[:2]
    if data.ndim == 2:
        image = QImage(data.data, width, height, width, QImage.Format.Format_Grayscale8)
    else:
        image = QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()


def image_of(chw: np.ndarray) -> QImage:
    """A dataset image (uint8 C×H×W: grey, RGB or RGBA, alpha dropped) as a QImage."""
    if chw.shape[0] == 1:
        return qimage(chw[0])
    return qimage(np.moveaxis(chw[:3], 0, -1))


def text_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on the background."""
    luma = 0.299 * background.redF() + 0.587 * background.greenF() + 0.114 * background.blueF()
    return QColor("#111111") if luma > 0.55 else QColor("#ffffff")
