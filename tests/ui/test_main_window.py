"""The main window: default project, start page, undo keys, files, dialogs, screenshots, themes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from cnnstudio import cli
from cnnstudio.core.project import Project, load_project, project_to_dict, save_project
from cnnstudio.core.templates import TEMPLATES, new_project
from cnnstudio.ui import theme
from cnnstudio.ui.app import open_window
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow
from cnnstudio.ui.settings_store import SettingsStore, config_dir
from cnnstudio.ui.start_page import EMPTY, StartPage

Button = QMessageBox.StandardButton


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def snapshot(window: MainWindow) -> dict:
    return project_to_dict(window.document.project)


def add_dropout(window: MainWindow) -> str:
    return window.document.edit("Add Dropout", lambda g: g.add_block("Dropout")).id


def answer_next_dialog(button: Button, record: list | None = None,
                       kind: type[QWidget] = QMessageBox) -> None:
    """Click `button` on the next modal dialog of `kind`; record its texts."""
    tries = [0]

    def act() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, kind):
            tries[0] += 1
            if tries[0] < 100:
                QTimer.singleShot(20, act)
            return
        if record is not None:
            record.append("\n".join((box.text(), box.informativeText(), box.detailedText())))
        box.button(button).click()

    QTimer.singleShot(0, act)


def test_opens_on_the_default_project(window):
    analysis = window.document.analysis
    assert analysis.diagnostics == []
    assert window.document.project.template == "keras-mnist"
    assert window.document.project.dataset["spec"] == "mnist-sample"
    assert "93,322" in window.params_label.text()
    assert "valid network" in window.validity_label.text()
    assert window.memory_label.text().startswith("Training memory")
    assert window.windowTitle() == "Keras MNIST CNN[*] — CNN Studio"
    assert not window.isWindowModified()
    assert window.bottom_tabs.tabText(1) == "Problems"


def test_every_template_opens_from_the_start_page_without_diagnostics(window, monkeypatch):
    page = StartPage(window)
    ids = page.template_ids()
    assert ids[0] == EMPTY and set(ids[1:]) == set(TEMPLATES)
    for template_id in ids[1:]:
        page.select(template_id)
        project = page.project()
        monkeypatch.setattr(window, "ask_new_project", lambda project=project: project)
        window.actions["new"].trigger()
        assert window.document.project.template == template_id
        assert window.document.analysis.diagnostics == [], template_id
        assert window.windowTitle().startswith(TEMPLATES[template_id].title)
    page.select(EMPTY)
    page.set_input((3, 64, 48))
    empty = page.project()
    assert [b.type for b in empty.graph.blocks] == ["Input"]
    assert empty.graph.blocks[0].params["height"] == 64
    page.deleteLater()


def test_ctrl_n_shows_the_start_page_with_its_sizes(window, qtbot):
    chosen = []

    def choose() -> None:
        page = QApplication.activeModalWidget()
        if not isinstance(page, StartPage):
            QTimer.singleShot(20, choose)
            return
        chosen.append(page.current_template())  # the current project's template first
        page.select("course-example")
        assert page.input_shape() == TEMPLATES["course-example"].default_input
        page.set_input((1, 32, 32), 5)
        page.create_button.click()

    QTimer.singleShot(0, choose)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert chosen == ["keras-mnist"]
    graph = window.document.graph
    assert window.document.project.template == "course-example"
    assert graph.blocks[0].params["height"] == 32
    assert window.document.analysis.blocks[graph.blocks[-1].id].output_shape == (5,)


def test_undo_and_redo_keys_go_through_the_menu_actions(window, qtbot):
    before = snapshot(window)
    block_id = add_dropout(window)
    assert window.isWindowModified()
    assert window.actions["undo"].text().replace("&", "") == "Undo Add Dropout"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert block_id not in window.document.graph and snapshot(window) == before
    assert not window.isWindowModified()
    assert window.actions["redo"].text().replace("&", "") == "Redo Add Dropout"
    qtbot.keyClick(window, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert block_id in window.document.graph
    window.actions["undo"].trigger()
    qtbot.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert block_id in window.document.graph


def test_status_bar_and_problems_tab_follow_errors(window, qtbot):
    conv = next(b.id for b in window.document.graph.blocks if b.type == "Conv2D")
    window.document.edit("kernel", lambda g: g.set_params(conv, {"kernel": [40, 40]}))
    qtbot.waitUntil(lambda: "error" in window.validity_label.text(), timeout=2000)
    errors = len(window.document.analysis.errors)
    assert errors >= 1
    assert window.bottom_tabs.tabText(1).startswith("Problems (")
    assert theme.current().error.name() in window.validity_label.styleSheet()
    window.document.undo_stack.undo()
    qtbot.waitUntil(lambda: "valid network" in window.validity_label.text(), timeout=2000)
    assert window.bottom_tabs.tabText(1) == "Problems"


def test_save_then_reopen_gives_the_same_project(window, make_window, qtbot, tmp_path,
                                                 monkeypatch):
    path = tmp_path / "mine.cnnproj"
    monkeypatch.setattr(window, "ask_save_path", lambda: str(path))
    add_dropout(window)
    edited = snapshot(window)
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert path.is_file() and not window.document.is_dirty
    assert window.windowTitle() == "mine.cnnproj[*] — CNN Studio"
    assert project_to_dict(load_project(path)) == edited
    other = make_window(recover=False)
    assert other.open_file(path)
    assert snapshot(other) == edited and other.document.path == path.resolve()
    assert not other.isWindowModified()


def test_save_as_moves_the_document_to_the_new_file(window, qtbot, tmp_path, monkeypatch):
    first, second = tmp_path / "a.cnnproj", tmp_path / "b.cnnproj"
    monkeypatch.setattr(window, "ask_save_path", lambda: str(first))
    assert window.save()
    add_dropout(window)
    monkeypatch.setattr(window, "ask_save_path", lambda: str(second))
    qtbot.keyClick(window, Qt.Key.Key_S,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.document.path == second.resolve() and not window.document.is_dirty
    assert len(load_project(second).graph) == len(load_project(first).graph) + 1
    assert window.settings.recent_files()[:2] == [second.resolve(), first.resolve()]


def test_a_failed_save_shows_the_reason_and_keeps_the_changes(window, tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr(window, "show_error", lambda *args: errors.append(args))
    monkeypatch.setattr(window, "ask_save_path", lambda: str(tmp_path / "no" / "x.cnnproj"))
    add_dropout(window)
    assert not window.save()
    assert "folder does not exist" in errors[0][0]
    assert window.document.is_dirty and window.document.path is None


def test_opening_a_broken_file_lists_the_problem_and_changes_nothing(window, tmp_path):
    data = project_to_dict(new_project("lenet5"))
    data["blocks"][1]["params"]["kernel"] = [0, 3]
    broken = tmp_path / "broken.cnnproj"
    broken.write_text(json.dumps(data), encoding="utf-8")
    before = snapshot(window)
    seen: list[str] = []
    answer_next_dialog(Button.Ok, seen)
    assert not window.open_file(broken)
    assert seen and "blocks[1].params.kernel" in seen[0] and "broken.cnnproj" in seen[0]
    assert snapshot(window) == before and window.document.path is None


def test_closing_with_unsaved_changes_asks_first(window, qtbot):
    add_dropout(window)
    seen: list[str] = []
    answer_next_dialog(Button.Cancel, seen)
    assert not window.close()
    assert window.isVisible() and "Keras MNIST CNN" in seen[0]
    answer_next_dialog(Button.Discard)
    assert window.close()
    assert not window.isVisible()


def test_open_over_unsaved_changes_can_be_cancelled(window, tmp_path, monkeypatch):
    path = tmp_path / "lenet.cnnproj"
    save_project(new_project("lenet5"), path)
    add_dropout(window)
    before = snapshot(window)
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Cancel)
    assert not window.open_file(path)
    assert snapshot(window) == before
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Discard)
    assert window.open_file(path)
    assert window.document.project.template == "lenet5"


def test_recent_files_keep_ten_and_drop_missing_ones(window, tmp_path):
    paths = []
    for n in range(12):
        path = tmp_path / f"p{n}.cnnproj"
        save_project(new_project("lenet5"), path)
        window.settings.add_recent(path)
        paths.append(path.resolve())
    recent = window.settings.recent_files()
    assert recent == list(reversed(paths))[:10]
    window._fill_recent_menu()
    entries = [a for a in window.recent_menu.actions() if a.data()]
    assert len(entries) == 10 and "p11.cnnproj" in entries[0].text()
    paths[11].unlink()
    assert not window.open_recent(paths[11])
    assert paths[11] not in window.settings.recent_files()
    assert window.banner.isVisible() and "p11.cnnproj" in window.banner.label.text()
    assert window.open_recent(paths[10]) and window.document.path == paths[10]
    assert SettingsStore().recent_files()[0] == paths[10]
    assert config_dir() == Path(window.settings.directory)


def test_export_diagram_png_and_svg(window, tmp_path, monkeypatch):
    for suffix in (".png", ".svg"):
        target = tmp_path / f"diagram{suffix}"
        monkeypatch.setattr(window, "ask_export_path", lambda s, t=target: str(t))
        window.actions[f"export_{suffix[1:]}"].trigger()
        assert target.is_file() and target.stat().st_size > 0
    assert QImage(str(tmp_path / "diagram.png")).width() > 0
    assert "<svg" in (tmp_path / "diagram.svg").read_text(encoding="utf-8")


def test_palette_request_puts_the_block_below_the_last_one(window):
    last = window.document.graph.blocks[-1]
    window.palette.block_requested.emit("Dropout", {})
    added = window.document.graph.blocks[-1]
    assert added.type == "Dropout" and added.y > last.y
    assert window.document.is_dirty


def test_theme_switching_is_applied_and_remembered(window):
    window.actions["theme_dark"].trigger()
    assert theme.current().dark and window.settings.theme() == "dark"
    assert QApplication.instance().palette().window().color().lightness() < 100
    assert "#81c784" in window.validity_label.styleSheet()
    window.actions["theme_light"].trigger()
    assert not theme.current().dark and SettingsStore().theme() == "light"
    assert window.actions["theme_light"].isChecked()


def test_every_menu_command_has_a_shortcut(window):
    missing = [key for key, action in window.actions.items() if not action.shortcuts()]
    assert missing == []
    redo = window.actions["redo"].shortcuts()
    assert {s.toString() for s in redo} == {"Ctrl+Shift+Z", "Ctrl+Y"}
    keys = [s.toString() for a in window.actions.values() for s in a.shortcuts()]
    assert len(keys) == len(set(keys))  # no shortcut is ambiguous
    for key, expected in (("new", "Ctrl+N"), ("open", "Ctrl+O"), ("save", "Ctrl+S"),
                          ("quit", "Ctrl+Q"), ("duplicate", "Ctrl+D"), ("select_all", "Ctrl+A"),
                          ("rename", "F2"), ("fit_all", "F"), ("reset_zoom", "Ctrl+0"),
                          ("auto_layout", "Ctrl+Shift+L"), ("zoom_in", "Ctrl+="),
                          ("zoom_out", "Ctrl+-")):
        assert expected in [s.toString() for s in window.actions[key].shortcuts()], key


def test_screenshot_from_the_command_line(tmp_path):
    out = tmp_path / "shot.png"
    assert cli.main(["--screenshot", str(out), "--template", "course-example",
                     "--theme", "light"]) == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1400, 900)
    start = tmp_path / "start.png"
    assert cli.main(["--screenshot", str(start), "--page", "start", "--theme", "light"]) == 0
    assert QImage(str(start)).width() > 600


def test_screenshot_errors_exit_2(tmp_path, capsys):
    assert cli.main(["--screenshot", str(tmp_path / "no" / "x.png")]) == 2
    assert "cannot write the screenshot" in capsys.readouterr().err
    assert cli.main(["--screenshot", str(tmp_path / "x.png"), "--template", "nope"]) == 2
    assert "unknown template" in capsys.readouterr().err


def test_opening_a_project_sets_the_title_and_path(make_window, tmp_path):
    path = tmp_path / "net.cnnproj"
    save_project(Project.new(new_project("lenet5").graph, name="Le"), path)
    window = make_window(Document(load_project(path), path))
    assert window.windowTitle() == "net.cnnproj[*] — CNN Studio"
    add_dropout(window)
    assert window.isWindowModified()


def test_panels_and_canvas_are_wired_together(window, qtbot):
    conv = next(b.id for b in window.document.graph.blocks if b.type == "Conv2D")
    window.canvas.select_blocks([conv])
    assert window.inspector.block_ids == [conv]
    window.summary.block_activated.emit("flatten")
    assert window.canvas.selected_ids() == ["flatten"]
    window.problems.block_activated.emit(conv)
    assert window.canvas.selected_ids() == [conv]
    window.canvas.status_message.emit("Cannot connect: a cycle")
    assert window.statusBar().currentMessage() == "Cannot connect: a cycle"
    assert "93,322" in window.params_label.text()  # the temporary message hides no totals


def test_canvas_keys_and_window_undo_work_together(window, qtbot):
    before = snapshot(window)
    window.canvas.setFocus()
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)
    window.canvas.select_blocks(["flatten"])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert "flatten" not in window.document.graph
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert snapshot(window) == before


def test_the_command_line_opens_the_window_on_a_file(tmp_path, config):
    path = tmp_path / "lenet.cnnproj"
    save_project(new_project("lenet5"), path)
    env = dict(os.environ, CNNSTUDIO_STARTUP_PROBE="1", QT_QPA_PLATFORM="offscreen",
               CNNSTUDIO_CONFIG_DIR=str(config))
    result = subprocess.run([sys.executable, "-m", "cnnstudio", str(path)], env=env, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "window shown after" in result.stdout
    assert result.stdout.strip().endswith("lenet.cnnproj — CNN Studio")


def test_a_broken_file_falls_back_to_the_default_with_a_dialog(tmp_path, qtbot, monkeypatch):
    broken = tmp_path / "broken.cnnproj"
    broken.write_text('{"format": "cnnstudio-project", "schema_version": 1, "blocks": 3}',
                      encoding="utf-8")
    shown = []
    monkeypatch.setattr(MainWindow, "show_error",
                        lambda self, summary, problems, title: shown.append((summary, problems)))
    window = open_window(str(broken))
    try:
        qtbot.waitUntil(lambda: bool(shown), timeout=2000)
        summary, problems = shown[0]
        assert "broken.cnnproj" in summary and any("blocks" in p for p in problems)
        assert window.document.project.template == "keras-mnist"
        assert window.document.path is None and window.isVisible()
    finally:
        window.close()
        window.deleteLater()


def test_switching_pages_keeps_the_editing_docks_as_they_were(window):
    window.resize(1400, 900)
    QApplication.processEvents()
    before = (window.palette_dock.width(), window.inspector_dock.width(),
              window.bottom_dock.height())
    for page in ("training", "lab", "network", "lab", "network"):
        window.show_page(page)
        QApplication.processEvents()
        if page != "network":
            assert not window.inspector_dock.isVisible()
    after = (window.palette_dock.width(), window.inspector_dock.width(),
             window.bottom_dock.height())
    assert window.inspector_dock.isVisible() and after == before
