"""Block declarations, one module per family."""

from cnnstudio.core.blocks import activation, conv, dense, io, merge, pool, regularisation
from cnnstudio.core.blocks.base import BlockType, RFStep, Shape, ShapeError, format_shape

FAMILIES = (io, conv, activation, pool, regularisation, dense, merge)

__all__ = ["FAMILIES", "BlockType", "RFStep", "Shape", "ShapeError", "format_shape"]
