"""'Where the time goes' on the Training page: the panel follows a real run's epochs."""

from __future__ import annotations

from PySide6.QtGui import QColor

from cnnstudio.train.time_shares import PHASES, StepBreakdown
from cnnstudio.ui.training.time_breakdown import PHASE_COLOURS, TimeBreakdownPanel

from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.training_pages import LONG, click, tiny_project


def test_the_panel_shows_each_epochs_shares_after_a_real_run(make_page, qtbot, tiny_npz):
    page = make_page(tiny_project(tiny_npz, epochs=2))
    panel = page.time_breakdown
    assert not panel.isVisible()  # nothing measured yet
    epochs, shown = [], []
    page.session.epoch_ended.connect(epochs.append)
    page.session.started.connect(lambda *_: shown.append((page.status.text(),
                                                          page.status.toolTip())))
    with qtbot.waitSignal(page.session.finished, timeout=LONG) as finished:
        click(qtbot, page.train_button)
    assert finished.args[0].status == "completed", finished.args[0].message
    # how the run is made fast stays out of the status line, a hover away
    ((text, tip),) = shown
    assert text.startswith("Training on cpu: ") and "warm-up" not in text.lower()
    assert "layout" not in text.lower()
    assert "How this run is made fast on cpu" in tip and "warm-up" in tip.lower()
    assert len(epochs) == 2 and panel.isVisible()
    last = epochs[-1].breakdown
    assert panel.breakdown is last  # the last epoch's
    assert abs(sum(panel.bar.shares.values()) - 1) < 1e-9
    assert panel.figures.text().startswith("epoch 2: a step ")
    assert "memory: not measured on the CPU" in panel.figures.text()
    assert "data preparation" in panel.legend.text() and "optimiser" in panel.legend.text()
    image = panel.bar.grab().toImage()  # the widest segment is drawn in its colour
    widest = max(PHASES, key=lambda p: panel.bar.shares[p])
    start = sum(panel.bar.shares[p] for p in PHASES[:PHASES.index(widest)])
    x = int((start + panel.bar.shares[widest] / 2) * image.width())
    assert QColor(image.pixel(x, 2)) == PHASE_COLOURS[widest]
    page.grab().save("/tmp/engine15_training_page.png")

    with qtbot.waitSignal(page.session.started, timeout=LONG):  # a new run starts afresh
        click(qtbot, page.train_button)
    assert not panel.isVisible()


def test_a_dominant_phase_brings_its_hint(qtbot):
    panel = TimeBreakdownPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 120)
    seconds = dict.fromkeys(PHASES, 0.001) | {"data": 0.016}
    panel.show_breakdown(StepBreakdown(seconds, 3, 3000.0, "cpu", augmented=True), 4)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.hint.isVisible()
    assert panel.hint.text() == ("Augmentation takes 80 % of each step: the network waits for "
                                 "its data; fewer augmentations (rotate and scale cost most) "
                                 "train faster.")
    assert panel.figures.text() == ("epoch 4: a step 20.0 ms, 3,000 images/s, memory: not "
                                    "measured on the CPU")
    panel.grab().save("/tmp/engine15_panel.png")
    balanced = dict.fromkeys(PHASES, 0.002)
    panel.show_breakdown(StepBreakdown(balanced, 3, 3000.0, "cpu"), 5)
    assert not panel.hint.isVisible()
    panel.show_breakdown(None, 6)  # an epoch that was not timed changes nothing
    assert panel.figures.text().startswith("epoch 5")
    panel.clear()
    assert not panel.isVisible()
