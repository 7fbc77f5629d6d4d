"""Issue 14's rough edges on the Training page, driven as a person does (tab clicks, buttons,
F5/F6, Ctrl+S, Ctrl+Z): the dataset's "Set Input" fix refits a template the way File → New
builds it, the page never says "Ready to train." while the network has errors, Resume says
that it trains again, and a network saved as course.cnnproj trains runs named "course"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabWidget

from cnnstudio.core.project import DEFAULT_NAME, load_project
from cnnstudio.core.templates import new_project
from cnnstudio.ui.document import Document
from cnnstudio.ui.main_window import MainWindow
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.training_pages import LONG, click, settle, tiny_project

CTRL = Qt.KeyboardModifier.ControlModifier
PAUSED = "Paused. Resume continues with the next batch."


def click_tab(qtbot, tabs: QTabWidget, title: str) -> None:
    bar = tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == title)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert tabs.currentIndex() == index


def training_page_with_preview(qtbot, window: MainWindow):
    click_tab(qtbot, window.pages, "Training")
    page = window.training_page
    panel = page.dataset_panel
    qtbot.waitUntil(lambda: panel.preview is not None and not panel.loading, timeout=LONG)
    return page


def test_set_input_refits_lenet5_as_file_new_does(make_window, qtbot, tiny_npz):
    project = new_project("lenet5", dataset={"spec": tiny_npz})  # 1×32×32; the digits: 28×28
    window = make_window(Document(project), recover=False)
    page = training_page_with_preview(qtbot, window)
    fix = page.dataset_panel.fix_input
    assert fix.text() == "Set Input to 1×28×28"
    click(qtbot, fix)
    graph, analysis = window.document.graph, window.document.analysis
    assert graph.input_block().params["height"] == 28
    assert graph.block("c1").params["padding"] == "same"  # as File → New builds it at 28×28
    assert analysis.errors == [] and analysis.total_params == 61_706
    assert page.status.text() == "Ready to train."
    assert not fix.isVisible()

    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)  # one undo step puts both back
    assert graph.input_block().params["height"] == 32
    assert graph.block("c1").params["padding"] == "valid"


def test_never_ready_to_train_while_the_network_has_errors(make_window, qtbot, tiny_npz):
    project = new_project("lenet5", dataset={"spec": tiny_npz})
    project.template = None  # the same layers, built by hand: nothing to refit them from
    window = make_window(Document(project), recover=False)
    page = training_page_with_preview(qtbot, window)
    assert page.status.text() == "Ready to train."
    click(qtbot, page.dataset_panel.fix_input)
    errors = window.document.analysis.errors
    assert errors and "does not fit the 4×4 input" in errors[0].message
    status = page.status.text()
    assert status.startswith("Not ready to train.") and "Network page" in status
    assert "does not fit the 4×4 input" in status

    click(qtbot, page.train_button)  # and Train says the same, starting nothing
    assert page.session.state == "idle" and "Network page" in page.error.text()

    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert window.document.analysis.errors == []
    assert page.status.text() == "Ready to train."


def test_resume_after_pause_says_it_trains_again(make_window, qtbot, tiny_npz):
    window = make_window(Document(tiny_project(tiny_npz, epochs=500)), recover=False)
    page = training_page_with_preview(qtbot, window)
    session = page.session
    try:
        qtbot.keyClick(window, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda: session.state == "running" and "Training on" in
                        page.status.text(), timeout=LONG)
        training = page.status.text()
        qtbot.keyClick(window, Qt.Key.Key_F6)
        qtbot.waitUntil(lambda: session.state == "paused", timeout=LONG)
        assert page.status.text() == PAUSED and page.pause_button.text() == "Resume"
        qtbot.keyClick(window, Qt.Key.Key_F6)
        qtbot.waitUntil(lambda: session.state == "running", timeout=LONG)
        assert page.status.text() == training and page.pause_button.text() == "Pause"
    finally:
        settle(page)


def test_a_network_saved_as_course_trains_runs_named_course(make_window, qtbot, tiny_npz,
                                                           tmp_path, monkeypatch):
    project = tiny_project(tiny_npz, epochs=1)
    project.name = DEFAULT_NAME  # nobody named it
    window = make_window(Document(project), recover=False)
    path = tmp_path / "course.cnnproj"
    monkeypatch.setattr(window, "ask_save_path", lambda: str(path))  # the dialog's answer
    qtbot.keyClick(window, Qt.Key.Key_S, CTRL)  # no file yet: Save As
    assert window.document.path == path.resolve()
    assert window.document.project.name == "course"
    assert load_project(path).name == "course"

    page = training_page_with_preview(qtbot, window)
    with qtbot.waitSignal(page.session.finished, timeout=LONG) as finished:
        click(qtbot, page.train_button)
    run_dir = Path(finished.args[0].run_dir)
    assert run_dir.parent == tmp_path / "runs"
    assert load_project(run_dir / "project.cnnproj").name == "course"  # ONNX metadata's name
    item = page.runs.item_for(run_dir)
    assert item is not None and item.text(1) == "course"
    settle(page)


def test_opening_an_older_file_saved_as_untitled_names_it_after_the_file(make_window, tmp_path,
                                                                        monkeypatch, qtbot):
    from cnnstudio.core.graph import Graph
    from cnnstudio.core.project import Project, save_project

    path = tmp_path / "week3.cnnproj"
    save_project(Project.new(Graph()), path)  # as the window saved it before
    assert load_project(path).name == DEFAULT_NAME
    window = make_window(recover=False)
    monkeypatch.setattr(window, "ask_open_path", lambda: str(path))
    qtbot.keyClick(window, Qt.Key.Key_O, CTRL)
    assert window.document.path == path.resolve()
    assert window.document.project.name == "week3"
