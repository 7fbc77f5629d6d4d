"""The Dataset tab builds its source list and path rows from core.sources: choosing each source
in the combo shows the rows, dialogs and boxes its declaration asks for, and the paths typed
there become the project's spec (real widgets, off-screen)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.core.sources import SOURCE_IDS, SOURCES, SourceSpec, format_spec, source
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.dataset_panel import DatasetPanel


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "config"
    monkeypatch.setenv("CNNSTUDIO_CONFIG_DIR", str(directory))
    return directory


@pytest.fixture
def make_panel(qtbot) -> Callable[[str], DatasetPanel]:
    def make(spec: str) -> DatasetPanel:
        graph = Graph()
        graph.chain([("Input", {"channels": 1, "height": 28, "width": 28}), ("Flatten", {}),
                     ("Dense", {"units": 10}), ("Output", {})])
        panel = DatasetPanel(Document(Project.new(graph, dataset={"spec": spec})))
        qtbot.addWidget(panel)
        panel.show()
        qtbot.waitExposed(panel)
        return panel

    return make


def choose(panel: DatasetPanel, kind_id: str) -> None:
    """Pick a source in the combo as a user does (activated follows a user's choice only)."""
    combo = panel.sources.combo
    index = combo.findData(kind_id)
    assert index >= 0, kind_id
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def shown_rows(panel: DatasetPanel) -> list[tuple[str, str]]:
    """(label, placeholder) of every path row the user sees."""
    rows = zip(panel.sources.labels, panel.sources.rows)
    return [(label.text(), row.line.placeholderText()) for label, row in rows
            if row.isVisibleTo(panel) and label.isVisibleTo(panel)]


def type_path(qtbot, row, text: str) -> None:
    row.line.clear()
    qtbot.keyClicks(row.line, text)
    qtbot.keyClick(row.line, Qt.Key_Return)


def test_the_combo_lists_every_declared_source_in_order(make_panel):
    combo = make_panel("mnist-sample").sources.combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(SOURCE_IDS)
    assert [combo.itemText(i) for i in range(combo.count())] == [k.label for k in SOURCES]
    assert [combo.itemData(i, Qt.ToolTipRole) for i in range(combo.count())] == [
        k.help for k in SOURCES]


@pytest.mark.parametrize("kind_id", SOURCE_IDS)
def test_choosing_a_source_shows_the_widgets_its_declaration_asks_for(make_panel, qtbot,
                                                                      tmp_path, kind_id):
    kind = source(kind_id)
    start = "mnist-sample" if kind.arguments else f"npz:{tmp_path / 'start.npz'}"
    panel = make_panel(start)
    document = panel.document
    asked: list[tuple[str, str]] = []
    panel.sources.ask_folder = lambda title, _start: asked.append(("folder", title)) or None
    panel.sources.ask_file = lambda title, _start, filters: asked.append(
        ("file", title, filters)) or None

    choose(panel, kind_id)

    assert shown_rows(panel) == [(a.label, a.noun) for a in kind.arguments]
    assert panel.sources.download.isVisibleTo(panel) == kind.can_download
    assert all(f.widget.isEnabled() != kind.fixed_split for f in panel.fields.values())
    if not kind.arguments:
        assert document.project.dataset["spec"] == kind_id
        return
    assert document.project.dataset["spec"] == start  # nothing chosen yet: the project keeps it
    assert panel.status.text() == (f"Choose {panel.sources.missing_text()} of this dataset; "
                                   f"until then the project keeps {start}.")
    for argument, row in zip(kind.arguments, panel.sources.rows):
        qtbot.mouseClick(row.button, Qt.LeftButton)  # Browse… opens the declared dialog
        assert asked[-1] == (("folder", argument.title) if argument.is_folder
                             else ("file", argument.title, argument.filters))
    paths = tuple(str(tmp_path / f"{a.name.lower()} data") for a in kind.arguments)
    for path, row in zip(paths, panel.sources.rows):
        type_path(qtbot, row, path)
    assert document.project.dataset["spec"] == format_spec(SourceSpec(kind_id, paths))
    assert not panel.error.isVisible()


def test_sources_with_as_many_paths_share_them_and_idx_keeps_its_own(make_panel, qtbot,
                                                                     tmp_path):
    folder = str(tmp_path / "pets")
    panel = make_panel(f"folder:{folder}")
    document, rows = panel.document, panel.sources.rows
    choose(panel, "idx")
    assert [row.text for row in rows] == ["", ""]
    images, labels = str(tmp_path / "i.gz"), str(tmp_path / "l.gz")
    type_path(qtbot, rows[0], images)
    type_path(qtbot, rows[1], labels)
    assert document.project.dataset["spec"] == f"idx:{images},{labels}"
    choose(panel, "cifar10")  # one path again: the folder typed before
    assert rows[0].text == folder and document.project.dataset["spec"] == f"cifar10:{folder}"
    choose(panel, "idx")  # two paths again: the IDX files typed before
    assert [row.text for row in rows] == [images, labels]
    assert document.project.dataset["spec"] == f"idx:{images},{labels}"
    document.undo_stack.undo()  # edits of the spec merge into one step: back to the folder
    assert panel.sources.combo.currentData() == "folder" and rows[0].text == folder
    assert shown_rows(panel) == [("Folder", "folder")]


def test_a_path_no_spec_can_hold_is_refused_with_a_message(make_panel, qtbot, tmp_path):
    panel = make_panel("mnist-sample")
    choose(panel, "idx")
    type_path(qtbot, panel.sources.rows[0], "a,b.gz")
    type_path(qtbot, panel.sources.rows[1], "labels.gz")
    assert panel.document.project.dataset["spec"] == "mnist-sample"
    assert panel.error.isVisible() and "none may contain one: 'a,b.gz'" in panel.error.text()
