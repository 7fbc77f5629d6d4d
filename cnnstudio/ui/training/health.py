"""Per-block training health on the canvas: how large each block's gradients were in the last
epoch, relative to the other blocks.

The engine reports, per block with trainable parameters, the L2 norm of its parameter gradients
averaged over the epoch (EpochEnded.grad_norms). The canvas tints each such block by how many
decades its norm lies from the median block's: blue for much smaller (a block that barely
learns: vanishing gradients, dead ReLUs before it), green near the median, red for much larger
(the block that dominates, or exploding gradients). Blocks without parameters stay untinted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from PySide6.QtGui import QColor

from cnnstudio.ui import theme

DECADES = 2.0  # this many decades from the median reach the end colours
LOW, MIDDLE, HIGH = QColor("#1e88e5"), QColor("#43a047"), QColor("#e53935")
WARN = 1.5  # decades from the median that earn a word in the tooltip


def scale_colour(decades: float) -> QColor:
    """The colour for a norm `decades` (log10) from the median, clipped to ±DECADES."""
    return theme.mix(MIDDLE, HIGH if decades >= 0 else LOW, abs(decades) / DECADES)


def health_marks(norms: Mapping[str, float], epoch: int) -> dict[str, tuple[QColor, str]]:
    """block id -> (tint, tooltip line) for the blocks with a gradient norm."""
    finite = {k: v for k, v in norms.items() if math.isfinite(v) and v >= 0}
    positive = [v for v in finite.values() if v > 0]
    if not positive:
        return {k: (LOW, f"No gradient reached this block in epoch {epoch}")
                for k in finite}
    median = statistics.median(positive)
    marks: dict[str, tuple[QColor, str]] = {}
    for block_id, norm in finite.items():
        if norm == 0:
            marks[block_id] = (LOW, f"No gradient reached this block in epoch {epoch}: it "
                                    "does not learn (dead units before it?)")
            continue
        decades = math.log10(norm / median)
        text = (f"Gradient norm {norm:.3g} in epoch {epoch}, {norm / median:.2g}× the median "
                "block")
        if decades <= -WARN:
            text += ": it barely learns (vanishing gradient?)"
        elif decades >= WARN:
            text += ": far larger than the others (exploding gradient?)"
        marks[block_id] = (scale_colour(decades), text)
    return marks
