"""Photographs for the lab: the bundled samples and any image file, as H×W×3 uint8 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QImageReader

from cnnstudio.resources import MissingResource, resource_path

SAMPLES = ("astronaut", "camera", "chelsea", "coffee")
MAX_SIDE = 640  # bigger photos are reduced so every control answers at once


class LabImageError(ValueError):
    """An image file that cannot be read; the message names it."""


def sample_path(name: str) -> Path:
    return resource_path("samples", f"{name}.png")


def available_samples() -> list[str]:
    names = []
    for name in SAMPLES:
        try:
            sample_path(name)
        except MissingResource:
            continue
        names.append(name)
    return names


def to_array(image: QImage) -> np.ndarray:
    """An H×W×3 uint8 copy of a QImage (any format)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width = rgb.height(), rgb.width()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.sizeInBytes())
    rows = buffer.reshape(height, rgb.bytesPerLine())[:, :3 * width]
    return rows.reshape(height, width, 3).copy()


def load_image(path: str | Path) -> tuple[np.ndarray, str]:
    """(H×W×3 uint8 pixels, a note such as 'reduced from 4000×3000'); LabImageError if not an
    image. Photos larger than MAX_SIDE on a side are reduced, keeping the aspect ratio."""
    path = Path(path)
    reader = QImageReader(str(path))
    image = reader.read()
    if image.isNull():
        raise LabImageError(f"cannot open '{path.name}' as an image: {reader.errorString()}")
    note = ""
    if max(image.width(), image.height()) > MAX_SIDE:
        note = f"reduced from {image.width()}×{image.height()}"
        image = image.scaled(MAX_SIDE, MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return to_array(image), note
