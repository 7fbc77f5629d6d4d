"""A guided tour of the app, rendered off-screen: screenshots of each step of training the
default project (keras-mnist on mnist-sample), an ONNX export, and the figures in tour.json.

    python -m cnnstudio.tour --out DIR [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

SIZE = (1400, 900)


def _wait(app: Any, done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.005)
    return True


def _settle(app: Any, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()
        app.sendPostedEvents()


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


def open_window(app: Any) -> Any:
    from PySide6.QtCore import Qt

    from cnnstudio.ui.main_window import MainWindow

    window = MainWindow(None, recover=False)
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    window.resize(*SIZE)
    window.show()
    _settle(app)
    return window


def train_in_window(app: Any, window: Any, epochs: int, on_first_progress:
                    Callable[[], None] | None = None, timeout_s: float = 600) -> tuple[Any, GapTimer]:
    """Start training as the Train button does, with the gap timer running; the RunFinished."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    page = window.training_page
    window.show_page("training")
    _settle(app)
    window.document.update_settings("training", {"epochs": epochs})
    _settle(app)
    box: dict[str, Any] = {}
    page.session.finished.connect(lambda result: box.setdefault("result", result))

    def progress(_event: Any) -> None:
        if "progress" not in box:
            box["progress"] = True
            if on_first_progress is not None:
                on_first_progress()

    page.session.progress.connect(progress)
    gaps = GapTimer()
    gaps.start()
    QTest.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    if not page.session.running and "result" not in box:
        page.train()  # the click did not land (off-screen): the button's own slot
    _wait(app, lambda: "result" in box, timeout_s)
    gaps.stop()
    page.session.wait(30_000)
    _settle(app)
    return box.get("result"), gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnstudio.tour", description=__doc__)
    parser.add_argument("--out", required=True, help="folder for the screenshots and tour.json")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from cnnstudio.ui.app import application

    app = application()
    window = open_window(app)

    def shot(name: str) -> None:
        _settle(app)
        if not window.grab().save(str(out / name), "PNG"):
            raise SystemExit(f"cannot write {out / name}")

    window.canvas.initial_view()
    _settle(app)
    shot("01-network.png")

    result, gaps = train_in_window(app, window, args.epochs,
                                   on_first_progress=lambda: shot("02-training.png"))
    if result is None or not result.ok:
        message = "timed out" if result is None else result.message
        print(f"training failed: {message}", file=sys.stderr)
        window.remember_layout = False
        window.close()
        return 1
    if not (out / "02-training.png").exists():
        shot("02-training.png")
    page = window.training_page
    page.views.setCurrentIndex(0)
    shot("03-curves.png")

    from cnnstudio.ui.training.inspect_views import (ConfusionView, FeatureMapView, FilterView,
                                                     PredictView)

    views = [page.views.widget(i) for i in range(page.views.count())]

    def tab(kind: type) -> Any:
        view = next(v for v in views if isinstance(v, kind))
        page.views.setCurrentWidget(view)
        _settle(app)
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

    from cnnstudio.nn.export import export_run

    report = export_run(result.run_dir, "onnx", out / "model.onnx")
    figures = {
        "images_per_s": round(result.images_per_s, 1),
        "val_acc": result.val_acc,
        "gui_stall_ms": gaps.summary(),
        "onnx_max_abs_diff": report.max_abs_diff,
        "epochs": args.epochs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "tour.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for key, value in figures.items():
        print(f"{key}: {value}")
    window.remember_layout = False
    window.close()
    _settle(app)
    from cnnstudio.ui.training.inspect_views import wait_for_background_work

    wait_for_background_work()
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # Qt/torch teardown can hang at interpreter exit off-screen
