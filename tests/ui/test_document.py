"""The Document: edits become undoable commands that change the model only."""

from __future__ import annotations

import pytest

from cnnstudio.core.graph import EventKind, GraphError
from cnnstudio.core.params import ParamError
from cnnstudio.core.project import Project, project_to_dict
from cnnstudio.core.settings import GROUPS
from cnnstudio.core.templates import new_project
from cnnstudio.ui.document import Document


def snapshot(doc: Document) -> dict:
    return project_to_dict(Project.new(doc.graph))


@pytest.fixture
def doc(qapp):
    return Document(new_project("keras-mnist"))


def test_edit_undo_redo_and_dirty_flag(doc):
    before = snapshot(doc)
    seen = []
    doc.graph_event.connect(lambda e: seen.append(e.kind))
    dirty = []
    doc.dirty_changed.connect(dirty.append)
    block = doc.edit("Add Dropout", lambda g: g.add_block("Dropout"))
    assert block.id in doc.graph and doc.is_dirty and dirty == [True]
    doc.undo_stack.undo()
    assert snapshot(doc) == before and not doc.is_dirty
    doc.undo_stack.redo()
    assert block.id in doc.graph
    assert seen == [EventKind.BLOCK_ADDED, EventKind.BLOCK_REMOVED, EventKind.BLOCK_ADDED]


def test_analysis_follows_every_change(doc):
    conv = doc.graph.blocks[1].id
    assert doc.analysis.total_params == 93_322
    doc.edit("filters", lambda g: g.set_params(conv, {"filters": 16}))
    assert doc.analysis.total_params != 93_322
    doc.undo_stack.undo()
    assert doc.analysis.total_params == 93_322


def test_failed_edit_pushes_nothing(doc):
    with pytest.raises(GraphError):
        doc.edit("bad", lambda g: g.connect(g.blocks[-1].id, g.blocks[0].id))
    assert doc.undo_stack.count() == 0


def test_consecutive_edits_with_a_merge_key_undo_as_one(doc):
    before = snapshot(doc)
    conv = doc.graph.blocks[1].id
    for n in (8, 9, 10):
        doc.edit("filters", lambda g, n=n: g.set_params(conv, {"filters": n}), merge_key=f"{conv}.filters")
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert snapshot(doc) == before


def test_set_project_resets_history(doc):
    doc.edit("Add", lambda g: g.add_block("Dropout"))
    replaced = []
    doc.project_replaced.connect(lambda: replaced.append(True))
    doc.set_project(new_project("lenet5"))
    assert replaced and doc.undo_stack.count() == 0 and not doc.is_dirty
    doc.set_project(new_project("lenet5"), dirty=True)
    assert doc.is_dirty


def test_settings_of_every_declared_group_are_one_undo_step_each(doc):
    """The document takes its groups from core.settings.GROUPS: each group's first setting set
    to another valid value is one undoable command; an unknown group names the known ones."""
    for name, group in GROUPS.items():
        settings = getattr(doc.project, name)
        spec = next(p for p in group.params if p.kind in ("int", "float")
                    and p.minimum is not None and settings[p.name] != p.coerce(p.minimum))
        before = settings[spec.name]
        assert doc.update_settings(name, {spec.name: spec.coerce(spec.minimum)})
        assert getattr(doc.project, name)[spec.name] != before
        doc.undo_stack.undo()
        assert getattr(doc.project, name)[spec.name] == before
    with pytest.raises(ParamError, match="use dataset or training"):
        doc.update_settings("display", {})
