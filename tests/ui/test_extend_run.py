"""'Extend by N epochs' on the Training page (a running run) and 'Extend…' in the runs list (a
finished run), with real clicks on real short training runs."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QInputDialog

from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.training_pages import LONG, click, tiny_project


def test_extend_a_running_run_then_a_finished_one(make_page, qtbot, tiny_npz, monkeypatch):
    project = tiny_project(tiny_npz, epochs=1)
    project.training["schedule"] = "cosine"
    page = make_page(project)
    session, control = page.session, page.extend_control
    assert not control.isEnabled()  # nothing trains yet
    extended, epochs = [], []
    session.extended.connect(extended.append)
    shown = []

    def look(_event) -> None:  # what the status says when the engine took the epochs
        shown.append(page.status.text())
        page.grab().save("/tmp/extend_run_extended.png")

    session.extended.connect(look)
    session.epoch_ended.connect(epochs.append)

    with qtbot.waitSignal(session.finished, timeout=LONG) as finished:
        click(qtbot, page.train_button)
        assert control.isEnabled()  # from the moment the run is going
        control.epochs.setValue(2)
        click(qtbot, control.button)  # taken after epoch 1, the last one planned
        assert page.status.text() == ("2 more epochs asked for: they are added after the "
                                      "current epoch …")

    result = finished.args[0]
    assert result.status == "completed", result.message
    assert result.epochs_completed == 3 and [e.epoch for e in epochs] == [1, 2, 3]
    [event] = extended
    assert (event.after_epoch, event.added, event.epochs) == (1, 2, 3)
    assert "the cosine schedule now ends at epoch 3 instead of 1" in event.message
    assert shown == [f"Extended after epoch 1 to 3 epochs (2 more epochs); the cosine "
                     f"schedule now ends at epoch 3 instead of 1: it continues from "
                     f"{event.message.split('continues from ')[1]}."]
    assert session.project.training["epochs"] == 3
    assert page.epoch_bar.format() == "Epoch 3 of 3: %p %"
    assert page.overall_bar.value() == page.overall_bar.maximum()
    run_dir = Path(result.run_dir)
    assert json.loads((run_dir / "final.json").read_text())["extended"][0]["to_epoch"] == 3
    assert not control.isEnabled()

    run = page.runs.run_for(run_dir)
    assert run.status == "completed" and run.extendable and not run.resumable
    page.runs.item_for(run_dir).setSelected(True)
    asked = []

    def answer(parent, title, label, value, low, high):
        asked.append((title, value))
        return 2, True

    monkeypatch.setattr(QInputDialog, "getInt", answer)
    started = []
    session.started.connect(started.append)
    with qtbot.waitSignal(session.finished, timeout=LONG) as finished:
        click(qtbot, page.runs.extend_button)
        assert not page.runs.extend_button.isEnabled()  # one run at a time
    assert asked == [("Extend the run", 2)]
    assert finished.args[0].status == "completed", finished.args[0].message
    assert finished.args[0].epochs_completed == 5
    assert (started[0].start_epoch, started[0].epochs) == (4, 5)
    assert any("extended after epoch 3 to 5 epochs" in note for note in started[0].notes)
    metrics = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1, 2, 3, 4, 5]
    assert page.epoch_bar.format() == "Epoch 5 of 5: %p %"
    page.grab().save("/tmp/extend_run_training_page.png")
