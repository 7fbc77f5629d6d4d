"""How fast the canvas follows an edit, and how smoothly it repaints a dragged block.

Goals (canvas issue): a parameter edit updates every shape and badge in under 16 ms, and
dragging a block repaints at 60 frames per second, on the full GoogLeNet template and on a
500-block chain with residual connections, each with its modules (core/modules.py) collapsed
(one card each) and expanded (their blocks in a frame): GoogLeNet's template has its Inception
modules; the chain's residual units are grouped into modules sharing one definition. Edits are
timed at the first view (cards) and again after Fit (F), where every block on screen is a chip
or a bar (detail.py) and most of them repaint; an edit inside a collapsed module updates its
card's totals. Off-screen (QT_QPA_PLATFORM=offscreen) the painting goes to an image, as a
software-rendered window's would.

    QT_QPA_PLATFORM=offscreen python bench/canvas_speed.py [--edits 100] [--frames 120]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis_speed import generated_graph  # noqa: E402
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cnnstudio.core.graph import Graph  # noqa: E402
from cnnstudio.core.layout import layered_layout  # noqa: E402
from cnnstudio.core.modules import make_module, set_module_collapsed  # noqa: E402
from cnnstudio.core.project import Project  # noqa: E402
from cnnstudio.core.templates import build_template  # noqa: E402
from cnnstudio.ui.canvas import CanvasView  # noqa: E402
from cnnstudio.ui.document import Document  # noqa: E402


def laid_out(graph: Graph) -> Graph:
    for block_id, (x, y) in layered_layout(graph).items():
        graph.move(block_id, x, y)
    return graph


def residual_modules(graph: Graph) -> Graph:
    """Each residual unit of `generated_graph` (conv, bn, act, conv, add) becomes a module; the
    units are alike, so they share one definition."""
    blocks = graph.blocks
    adds = [i for i, b in enumerate(blocks) if b.type == "Add"]
    for number, end in enumerate(adds, start=1):
        ids = [b.id for b in blocks[end - 4:end + 1]]
        make_module(graph, ids, f"unit {number}", collapsed=True, share=True)
    return graph


def expanded(graph: Graph) -> Graph:
    for module in graph.modules:
        set_module_collapsed(graph, module.id, False)
    return graph


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class PaintCounter(QObject):
    """Counts the viewport's paint events, to make sure a measured frame did paint."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Paint:
            self.count += 1
        return False


def settle(app: QApplication) -> None:
    """Deliver the posted updates and paint them (the view batches its dirty region in a
    posted call, whose paint request is posted in turn)."""
    for _ in range(3):
        app.processEvents()


def edit_times(app: QApplication, doc: Document, view: CanvasView, edits: int) -> list[float]:
    """document.edit of one Conv2D's filters + the canvas update it causes, the repaint of
    what changed on screen included."""
    convs = [b.id for b in doc.graph.blocks if b.type == "Conv2D"]
    target = convs[len(convs) // 3]
    view.select_blocks([target])
    app.processEvents()
    timings = []
    for i in range(edits):
        filters = 16 + (i % 2) * 8
        start = time.perf_counter()
        doc.edit("filters", lambda g: g.set_params(target, {"filters": filters}))
        settle(app)
        timings.append((time.perf_counter() - start) * 1000)
    shape = view.item_for(target).shape_text()
    assert shape.endswith(f"{filters})"), shape
    return timings


def drag_fps(app: QApplication, doc: Document, view: CanvasView, frames: int,
             full: bool) -> float:
    """Frames per second while dragging a block with real mouse events: each move is followed
    by the repaint of what changed (or, with `full`, of the whole viewport)."""
    view.reset_zoom()
    block = next(b for b in doc.graph.blocks if b.type == "Conv2D")
    view.centerOn(QPointF(block.x, block.y + 30))
    settle(app)
    item = view.item_for(block.id)
    viewport = view.viewport()
    counter = PaintCounter()
    viewport.installEventFilter(counter)
    start = view.mapFromScene(item.mapToScene(QPointF(-40, 12)))
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, start)
    times = []
    for i in range(frames):
        offset = QPoint(20 + (i * 10) % 240, (i * 10) % 120)  # a new grid spot each frame
        t0 = time.perf_counter()
        QTest.mouseMove(viewport, start + offset)
        settle(app)
        if full:
            viewport.repaint()
        times.append(time.perf_counter() - t0)
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, start + QPoint(40, 0))
    settle(app)
    viewport.removeEventFilter(counter)
    assert counter.count >= frames, counter.count
    doc.undo_stack.undo()
    return 1.0 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    graphs = {
        "googlenet (template), modules collapsed": build_template("googlenet"),
        "googlenet, modules expanded": expanded(build_template("googlenet")),
        "500-block residual chain": laid_out(generated_graph(500)),
        "500-block chain, units as collapsed modules":
            residual_modules(laid_out(generated_graph(500))),
        "500-block chain, units as expanded modules":
            expanded(residual_modules(laid_out(generated_graph(500)))),
    }
    for label, graph in graphs.items():
        doc = Document(Project.new(graph))
        view = CanvasView(doc)
        view.resize(1280, 800)
        view.show()
        app.processEvents()
        edit_times(app, doc, view, 10)  # warm up
        timings = edit_times(app, doc, view, args.edits)
        view.fit_all()  # as much of the network as fits: small chips or bars, most repaint
        settle(app)
        across, down = view.scales()
        edit_times(app, doc, view, 10)
        fitted = edit_times(app, doc, view, args.edits)
        fps = drag_fps(app, doc, view, args.frames, full=False)
        full_fps = drag_fps(app, doc, view, args.frames, full=True)
        print(
            f"{label}, {len(graph)} blocks, {len(graph.modules)} modules\n"
            f"  edit + update: median {statistics.median(timings):5.2f} ms, "
            f"p95 {percentile(timings, 0.95):5.2f} ms, max {max(timings):5.2f} ms "
            f"(goal < 16 ms)\n"
            f"  ... fitted:    median {statistics.median(fitted):5.2f} ms, "
            f"p95 {percentile(fitted, 0.95):5.2f} ms, max {max(fitted):5.2f} ms "
            f"(Fit: {across:.3f} across, {down:.3f} down)\n"
            f"  drag a block:  {fps:4.0f} fps repainting what changed, {full_fps:4.0f} fps "
            f"repainting the whole viewport every frame (goal 60 fps)"
        )
        view.close()


if __name__ == "__main__":
    main()
