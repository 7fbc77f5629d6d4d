"""Training from the window against headless training: keras-mnist on mnist-sample.

(a) the real main window off-screen (Training page, plots on, Feature maps tab showing) with a
10 ms QTimer recording the GUI thread's tick gaps; (b) cnnstudio.train.engine.train on the same
project and settings. Goals: images/s ratio >= 0.9, gaps p99 <= 50 ms and max <= 150 ms.

    python bench/gui_training.py [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CNNSTUDIO_CONFIG_DIR", tempfile.mkdtemp(prefix="cnnstudio-bench-"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    from cnnstudio.tour import _settle, open_window, train_in_window
    from cnnstudio.ui.app import application
    from cnnstudio.ui.training.inspect_views import FeatureMapView

    app = application()
    window = open_window(app)
    window.show_page("training")
    _settle(app)
    page = window.training_page
    page._ensure_context()
    for i in range(page.views.count()):
        if isinstance(page.views.widget(i), FeatureMapView):
            page.views.setCurrentIndex(i)
    _settle(app)
    result, gaps = train_in_window(app, window, args.epochs)
    if result is None or not result.ok:
        print(f"GUI training failed: {getattr(result, 'message', 'timed out')}")
        return 1
    project = window.session_project = page.session.project  # the snapshot the run trained

    from cnnstudio.core.adapt import input_block_id
    from cnnstudio.core.analysis import analyze
    from cnnstudio.train.data import load_dataset
    from cnnstudio.train.engine import TrainOptions, train

    settings = project.dataset
    shape = analyze(project.graph).blocks[input_block_id(project.graph)].output_shape
    data = load_dataset(settings.get("spec", "mnist-sample"), shape,
                        validation_fraction=settings.get("validation_fraction", 0.2),
                        split_seed=settings.get("split_seed", 0))
    headless = train(project, data, None, options=TrainOptions.from_settings(project.training))
    stall = gaps.summary()
    ratio = result.images_per_s / max(headless.images_per_s, 1e-9)
    print(f"window:   {result.images_per_s:,.0f} images/s (val acc {result.val_acc:.3f})")
    print(f"headless: {headless.images_per_s:,.0f} images/s (val acc {headless.val_acc:.3f})")
    print(f"ratio:    {ratio:.2f} (goal >= 0.9) {'ok' if ratio >= 0.9 else 'MISSED'}")
    ok = stall["p99"] <= 50 and stall["max"] <= 150
    print(f"GUI gaps: p99 {stall['p99']} ms, max {stall['max']} ms over {len(gaps.gaps)} ticks "
          f"(goal p99 <= 50, max <= 150) {'ok' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)
