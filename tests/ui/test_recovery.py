"""Autosave and crash recovery: timers, clean save and close, and a really killed process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from cnnstudio.core.project import load_project, project_to_dict, save_project
from cnnstudio.core.templates import new_project
from cnnstudio.ui.document import Document
from cnnstudio.ui.recovery import pending_recoveries, process_start, recovery_dir

Button = QMessageBox.StandardButton

CHILD = r"""
import json, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
from cnnstudio.core.project import load_project, project_to_dict
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow

app = QApplication([])
path = Path(sys.argv[1])
window = MainWindow(Document(load_project(path), path), recover=False)
window.show()

def report(_file):
    print("saved", json.dumps(project_to_dict(window.document.project)), flush=True)

window.autosaver.saved.connect(report)
window.document.edit("Add Dropout", lambda g: g.add_block("Dropout", {"rate": 0.3}))
app.exec()
"""


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def plant_orphan(config: Path, project_dict_source, original: Path | None = None) -> Path:
    folder = recovery_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    save_project(project_dict_source, folder / "orphan.cnnproj")
    meta = {"pid": dead_pid(), "original_path": str(original) if original else None,
            "name": project_dict_source.name, "saved_at": time.time()}
    (folder / "orphan.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder / "orphan.cnnproj"


def test_a_structural_edit_is_autosaved_within_a_second_or_so(make_window, qtbot, tmp_path,
                                                                monkeypatch):
    window = make_window(recover=False)
    saver = window.autosaver
    assert not saver.project_file.exists()
    window.document.edit("Add", lambda g: g.add_block("Dropout"))
    qtbot.waitUntil(saver.project_file.exists, timeout=3000)
    assert project_to_dict(load_project(saver.project_file)) == project_to_dict(
        window.document.project)
    meta = json.loads(saver.meta_file.read_text(encoding="utf-8"))
    assert meta["pid"] == os.getpid() and meta["original_path"] is None
    assert pending_recoveries() == []  # this process is alive: nothing to recover
    monkeypatch.setattr(window, "ask_save_path", lambda: str(tmp_path / "kept.cnnproj"))
    assert window.save()
    assert not saver.project_file.exists() and not saver.meta_file.exists()


def test_the_periodic_timer_saves_other_edits_and_a_normal_close_deletes(make_window, qtbot):
    window = make_window(recover=False, autosave_interval_ms=150)
    saver = window.autosaver
    conv = next(b.id for b in window.document.graph.blocks if b.type == "Conv2D")
    window.document.edit("filters", lambda g: g.set_params(conv, {"filters": 48}))
    qtbot.waitUntil(saver.project_file.exists, timeout=3000)
    assert load_project(saver.project_file).graph.block(conv).params["filters"] == 48
    window.document.undo_stack.undo()  # back to the saved state: nothing to recover
    assert not saver.project_file.exists()
    window.document.undo_stack.redo()
    qtbot.waitUntil(saver.project_file.exists, timeout=3000)
    window.ask_save_changes = lambda: Button.Discard
    assert window.close()
    assert not saver.project_file.exists() and not saver.meta_file.exists()


def test_a_killed_session_is_recovered_at_the_next_start(make_window, config, tmp_path):
    original = tmp_path / "work.cnnproj"
    save_project(new_project("lenet5"), original)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNNSTUDIO_CONFIG_DIR=str(config))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(original)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line.startswith("saved "), child.stderr.read()[-2000:] if not line else line
        edited = json.loads(line[len("saved "):])
        assert process_start(child.pid) is not None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        watchdog.cancel()
        child.kill()
    assert child.returncode == -signal.SIGKILL
    assert len(pending_recoveries()) == 1

    window = make_window()
    assert project_to_dict(window.document.project) == edited
    assert any(b.type == "Dropout" for b in window.document.graph.blocks)
    assert window.document.path == original.resolve() and window.document.is_dirty
    assert window.isWindowModified() and window.windowTitle().startswith("work.cnnproj")
    assert window.banner.isVisible() and "Recovered" in window.banner.label.text()
    assert pending_recoveries() == []  # the old files are gone, the new session owns them
    assert window.autosaver.project_file.exists()
    assert project_to_dict(load_project(original))["blocks"] != edited["blocks"]


def test_with_a_file_given_the_banner_offers_the_recovered_work(make_window, config, tmp_path):
    recovered = new_project("course-example")
    plant_orphan(config, recovered)
    path = tmp_path / "other.cnnproj"
    save_project(new_project("lenet5"), path)
    window = make_window(Document(load_project(path), path))
    assert window.document.project.template == "lenet5"
    assert window.banner.isVisible()
    open_it = next(b for b in window.banner.buttons() if b.text() == "Open It")
    open_it.click()
    assert window.document.project.template == "course-example"
    assert window.document.is_dirty and window.document.path is None
    assert pending_recoveries() == []


def test_a_damaged_recovery_file_is_discarded_with_a_message(make_window, config):
    orphan = plant_orphan(config, new_project("lenet5"))
    orphan.write_text("{ not json", encoding="utf-8")
    window = make_window()
    assert window.document.project.template == "keras-mnist"
    assert "could not be recovered" in window.banner.label.text()
    assert not orphan.exists()
