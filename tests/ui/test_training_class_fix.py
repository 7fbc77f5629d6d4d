"""The Training page refuses a network whose outputs do not fit the dataset's classes, names the
block, and its one-click fix sets that Dense's units in one undo step (real clicks). It also
refuses BatchNorm with a batch size of 1 before a run folder is made."""

from __future__ import annotations

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.ui.training.page import DATASET_TAB, SETTINGS_TAB, TrainingPage
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.ui.training_pages import click, tiny_project


def dense_of(page: TrainingPage, name: str = "fc1"):
    return next(b for b in page.document.graph.blocks if b.name == name)


def with_auxiliary_output(project: Project, units: int) -> Project:
    """An auxiliary Output fed by its own Dense from the Flatten block."""
    graph = project.graph
    flatten = next(b for b in graph.blocks if b.type == "Flatten")
    graph.chain([("Dense", {"units": units}, "aux_fc"),
                 ("Output", {"auxiliary": True, "loss_weight": 0.3}, "aux_output")],
                after=flatten.id)
    return project


def test_train_is_refused_and_the_fix_sets_the_units_in_one_undo_step(make_page, qtbot,
                                                                      tiny_npz, config):
    page = make_page(tiny_project(tiny_npz, classes=1000))
    panel, doc = page.dataset_panel, page.document
    assert panel.preview is not None and panel.fit_box.isVisible()
    text = panel.fit_text.text()
    assert "Dense block 'fc1' (id dense_1)" in text and "1000 class scores" in text
    assert "10 classes" in text and "set its units to 10" in text
    assert panel.fix_classes.text() == "Set classes to 10" and not panel.fix_input.isVisible()
    assert "dense_1" in panel.fix_classes.toolTip()

    page.side_tabs.setCurrentIndex(1)
    click(qtbot, page.train_button)
    assert not page.session.running and page.error.isVisible()
    assert "Training cannot start" in page.error.text() and "(id dense_1)" in page.error.text()
    assert "1000" in page.error.text() and "10 classes" in page.error.text()
    assert page.side_tabs.currentIndex() == DATASET_TAB  # where the fix is
    assert not (config / "runs").exists() or not any((config / "runs").iterdir())

    count = doc.undo_stack.count()
    click(qtbot, panel.fix_classes)
    assert dense_of(page).params["units"] == 10
    assert doc.undo_stack.count() == count + 1 and doc.is_dirty
    assert not panel.fit_box.isVisible()
    doc.undo_stack.undo()
    assert dense_of(page).params["units"] == 1000 and panel.fit_box.isVisible()
    doc.undo_stack.redo()
    assert dense_of(page).params["units"] == 10 and page.setup_problem()[0] == ""


def test_an_auxiliary_output_is_shown_and_fixed_with_the_main_one(make_page, qtbot, tiny_npz):
    page = make_page(with_auxiliary_output(tiny_project(tiny_npz, classes=1000), 4))
    panel, doc = page.dataset_panel, page.document
    text = panel.fit_text.text()
    assert "(id dense_1)" in text and "auxiliary output 'aux_output'" in text
    assert "Dense block 'aux_fc'" in text and "4 class scores" in text
    count = doc.undo_stack.count()
    click(qtbot, panel.fix_classes)
    assert dense_of(page).params["units"] == 10 and dense_of(page, "aux_fc").params["units"] == 10
    assert doc.undo_stack.count() == count + 1 and not panel.fit_box.isVisible()
    doc.undo_stack.undo()
    assert dense_of(page).params["units"] == 1000 and dense_of(page, "aux_fc").params["units"] == 4


def test_only_the_auxiliary_output_mismatching_refuses_training(make_page, qtbot, tiny_npz):
    page = make_page(with_auxiliary_output(tiny_project(tiny_npz), 3))
    panel = page.dataset_panel
    assert panel.fit_box.isVisible() and "(id dense_1)" not in panel.fit_text.text()
    click(qtbot, page.train_button)
    assert not page.session.running and "Dense block 'aux_fc'" in page.error.text()
    click(qtbot, panel.fix_classes)
    assert dense_of(page, "aux_fc").params["units"] == 10 and dense_of(page).params["units"] == 10


def test_batchnorm_with_batch_size_1_is_refused_before_a_run_folder(make_page, qtbot, tiny_npz,
                                                                    config):
    graph = Graph()
    graph.chain([("Input", {"channels": 1, "height": 28, "width": 28}),
                 ("Conv2D", {"filters": 4, "kernel": 3}), ("BatchNorm", {}), ("Flatten", {}),
                 ("Dense", {"units": 10}), ("Output", {})])
    page = make_page(Project.new(graph, dataset={"spec": tiny_npz},
                                 training={"batch_size": 1}))
    click(qtbot, page.train_button)
    assert not page.session.running
    assert "BatchNorm needs batches of at least 2" in page.error.text()
    assert "set the batch size to 2 or more" in page.error.text()
    assert page.side_tabs.currentIndex() == SETTINGS_TAB
    assert not (config / "runs").exists() or not any((config / "runs").iterdir())
    page.document.update_settings("training", {"batch_size": 2})
    assert page.setup_problem()[0] == ""


def test_the_status_line_says_train_would_not_start_until_the_classes_match(make_page, qtbot,
                                                                           tiny_npz):
    page = make_page(tiny_project(tiny_npz, classes=1000))
    assert page.status.text() == "Not ready to train: see the Dataset tab."
    click(qtbot, page.dataset_panel.fix_classes)
    assert page.status.text() == "Ready to train."
    page.document.undo_stack.undo()
    assert page.status.text() == "Not ready to train: see the Dataset tab."
