"""A guided tour of the app, rendered off-screen: screenshots of each step of training the
default project (keras-mnist on mnist-sample), an ONNX export, and the figures in tour.json.

    python -m cnnstudio.tour --out DIR [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from cnnstudio.ui.app import settle  # Qt starts with the application, after --out is read

SIZE = (1400, 900)


def _wait(app: Any, done: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop (as the application does, not a polling loop) until `done()` or the
    timeout; whether it is done."""
    from PySide6.QtCore import QEventLoop, QTimer

    if done():
        return True
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(20)
    check.timeout.connect(lambda: (done() or time.monotonic() > deadline) and loop.quit())
    check.start()
    loop.exec()
    check.stop()
    return done()


class GapTimer:
    """A 10 ms QTimer on the GUI thread recording the gaps between its ticks (ms)."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.gaps: list[float] = []
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append((now - self._last) * 1000)
        self._last = now

    def start(self) -> None:
        self._last = None
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def summary(self) -> dict[str, float]:
        if not self.gaps:
            return {"p99": 0.0, "max": 0.0}
        ordered = sorted(self.gaps)
        p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
        return {"p99": round(p99, 1), "max": round(ordered[-1], 1)}


def open_window(app: Any) -> tuple[Any, GapTimer]:
    """The main window on the default project, shown off-screen, and the GUI gaps while torch
    loads in the background as it does after `cnnstudio` starts (see cnnstudio.ui.warmup)."""
    from PySide6.QtCore import Qt

    from cnnstudio.ui import warmup
    from cnnstudio.ui.main_window import MainWindow

    window = MainWindow(None, recover=False)
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    window.resize(*SIZE)
    window.show()
    settle(app)
    gaps = GapTimer()
    gaps.start()
    thread = warmup.start()
    _wait(app, lambda: not thread.is_alive(), 120)
    gaps.stop()
    return window, gaps


def train_in_window(app: Any, window: Any, epochs: int,
                    midway: Callable[[], None] | None = None,
                    timeout_s: float = 600) -> tuple[Any, GapTimer]:
    """Start training as the Train button does, with the gap timer running; the RunFinished
    and the gaps. `midway` runs once, half-way through the first epoch (the tour's screenshot),
    with the gap timer paused: the tour's own work is not the window's stall."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    page = window.training_page
    window.show_page("training")
    settle(app)
    window.document.update_settings("training", {"epochs": epochs})
    settle(app)
    box: dict[str, Any] = {}
    gaps = GapTimer()

    def finished(result: Any) -> None:
        box.setdefault("result", result)

    def progress(event: Any) -> None:
        if midway is None or "midway" in box or event.epoch_step * 2 < event.steps_per_epoch:
            return
        box["midway"] = True
        gaps.stop()
        page.plots.flush()
        midway()
        gaps.start()

    page.session.finished.connect(finished)
    page.session.progress.connect(progress)
    gaps.start()
    QTest.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    if not page.session.running and "result" not in box:
        page.train()  # the click did not land (off-screen): the button's own slot
    _wait(app, lambda: "result" in box, timeout_s)
    gaps.stop()
    page.session.wait(30_000)
    page.session.finished.disconnect(finished)
    page.session.progress.disconnect(progress)
    settle(app)
    return box.get("result"), gaps


def _close(app: Any, window: Any) -> None:
    """Close as a person who does not keep the tour's changes would."""
    from PySide6.QtWidgets import QMessageBox

    window.remember_layout = False
    window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
    window.close()
    settle(app)
    from cnnstudio.ui.training.inspect.views import wait_for_background_work

    wait_for_background_work()


def export_onnx(app: Any, window: Any, path: Path, timeout_s: float = 120) -> Any:
    """File → Export Trained Model…, ONNX, Export: the open dialog and its ExportReport."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window.actions["export_model"].trigger()
    settle(app)
    from cnnstudio.ui.training.export_dialog import ExportDialog

    dialog = next(w for w in window.findChildren(ExportDialog) if w.isVisible())
    dialog.set_format("onnx")
    dialog.out_edit.setText(str(path))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    _wait(app, lambda: dialog.report is not None or bool(dialog.error), timeout_s)
    settle(app)
    return dialog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnstudio.tour", description=__doc__)
    parser.add_argument("--out", required=True, help="folder for the screenshots and tour.json")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # the tour's runs, recent files and window layout stay out of the person's own settings
    os.environ.setdefault("CNNSTUDIO_CONFIG_DIR", tempfile.mkdtemp(prefix="cnnstudio-tour-"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from cnnstudio.ui.app import application

    app = application()
    window, warmup_gaps = open_window(app)

    def shot(name: str, widget: Any = None) -> None:
        settle(app)
        target = out / name
        if not (widget or window).grab().save(str(target), "PNG"):
            raise SystemExit(f"cannot write {target}")

    window.canvas.initial_view()
    settle(app)
    shot("01-network.png")

    result, gaps = train_in_window(app, window, args.epochs,
                                   midway=lambda: shot("02-training.png"))
    if result is None or not result.ok:
        message = "timed out" if result is None else result.message
        print(f"training failed: {message}", file=sys.stderr)
        _close(app, window)
        return 1
    if not (out / "02-training.png").exists():
        shot("02-training.png")
    page = window.training_page
    page.views.setCurrentIndex(0)
    shot("03-curves.png")

    from cnnstudio.ui.training.inspect.views import (ConfusionView, FeatureMapView, FilterView,
                                                     PredictView)

    views = [page.views.widget(i) for i in range(page.views.count())]

    def tab(kind: type) -> Any:
        view = next(v for v in views if isinstance(v, kind))
        page.views.setCurrentWidget(view)
        settle(app)
        return view

    maps = tab(FeatureMapView)
    maps.show_block("conv1")
    _wait(app, lambda: False, 1.0)
    shot("04-feature-maps.png")
    tab(FilterView)
    _wait(app, lambda: False, 0.5)
    shot("05-filters.png")
    confusion = tab(ConfusionView)
    _wait(app, lambda: confusion.matrix is not None and not confusion.busy, 120)
    shot("06-confusion.png")
    tab(PredictView)
    _wait(app, lambda: False, 1.0)
    shot("07-predict.png")

    window.actions["training_health"].trigger()  # View → Training Health on the Canvas
    window.show_page("network")
    window.canvas.initial_view()
    shot("09-training-health.png")

    dialog = export_onnx(app, window, out / "model.onnx")
    shot("08-export-onnx.png", dialog)
    report = dialog.report
    dialog.close()
    if report is None:
        print(f"export failed: {dialog.error or 'timed out'}", file=sys.stderr)
        _close(app, window)
        return 1
    figures = {
        "images_per_s": round(result.images_per_s, 1),
        "val_acc": result.val_acc,
        "gui_stall_ms": gaps.summary(),
        "gui_stall_while_torch_loads_ms": warmup_gaps.summary(),
        "onnx_max_abs_diff": report.max_abs_diff,
        "epochs": args.epochs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "tour.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for key, value in figures.items():
        print(f"{key}: {value}")
    _close(app, window)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # skip Qt's and torch's teardown of what the tour left behind
