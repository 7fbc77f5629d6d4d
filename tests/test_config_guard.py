"""The test suite never writes into the user's ~/.config/cnnstudio (issue 14: a new user found a
training run called "tiny" there, left by a test that undid its monkeypatching)."""

from __future__ import annotations

from pathlib import Path

from tests.config_guard import leak_report, listing, new_entries, real_config_dir
from tests.conftest import REAL_CONFIG_DIR, SESSION_CONFIG_HOME


def test_undoing_every_monkeypatch_still_leaves_the_user_folder_alone(monkeypatch):
    from cnnstudio.ui.settings_store import config_dir

    assert config_dir() != REAL_CONFIG_DIR  # the `config` fixture's folder
    monkeypatch.undo()  # what test_a_nan_run... once did: the fixture's folder is gone
    folder = config_dir()
    assert folder != REAL_CONFIG_DIR
    assert SESSION_CONFIG_HOME in folder.parents
    monkeypatch.delenv("CNNSTUDIO_CONFIG_DIR")  # no override at all: Qt's own location
    folder = config_dir()
    assert folder != REAL_CONFIG_DIR
    assert SESSION_CONFIG_HOME in folder.parents


def test_runs_of_an_unsaved_project_go_to_the_session_folder(monkeypatch, qtbot):
    from cnnstudio.core.templates import new_project
    from cnnstudio.ui.document import Document
    from cnnstudio.ui.training.page import TrainingPage

    page = TrainingPage(Document(new_project("keras-mnist")))
    qtbot.addWidget(page)
    monkeypatch.undo()
    root = page.runs_root()
    assert SESSION_CONFIG_HOME in root.parents and REAL_CONFIG_DIR not in root.parents


def test_the_real_folder_is_where_qt_would_put_it():
    assert real_config_dir({"XDG_CONFIG_HOME": "/x/conf"}) == Path("/x/conf/cnnstudio")
    assert real_config_dir({}) == Path.home() / ".config" / "cnnstudio"


def test_the_session_check_names_what_appeared(tmp_path):
    folder = tmp_path / "cnnstudio"
    (folder / "runs" / "old").mkdir(parents=True)
    before = listing(folder)
    assert new_entries(folder, before) == []
    (folder / "runs" / "2026-12-04_20-32-56").mkdir()
    (folder / "runs" / "2026-12-04_20-32-56" / "final.json").write_text("{}")
    leaked = new_entries(folder, before)
    assert leaked == ["runs/2026-12-04_20-32-56", "runs/2026-12-04_20-32-56/final.json"]
    report = leak_report(folder, leaked)
    assert "wrote 2 file(s)" in report and str(folder / leaked[1]) in report
    assert "CNNSTUDIO_CONFIG_DIR" in report
    assert listing(tmp_path / "absent") == set()

