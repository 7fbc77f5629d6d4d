"""The network canvas: blocks and wires drawn from the document's graph, edited by gestures.

`CanvasView(document)` is the widget; `BLOCK_MIME` is the drag format the palette uses
(UTF-8 JSON {"type": "Conv2D", "params": {...}}).
"""

from cnnstudio.ui.canvas.view import BLOCK_MIME, CanvasView

__all__ = ["BLOCK_MIME", "CanvasView"]
