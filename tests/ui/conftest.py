"""Fixtures for the Training page tests (tests/ui/training_pages.py has their helpers): a small
npz dataset made once per module, and `make_page`, which shows a page and settles it after the
test. Neither is autouse, so a module that does not ask for them is not touched."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from cnnstudio.core.project import Project
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.page import TrainingPage
from tests.ui.training_pages import LONG, settle


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> str:
    from cnnstudio.train.data import load_dataset

    data = load_dataset("mnist-sample", (1, 28, 28))
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=data.train_x[:640, 0], y=data.train_y[:640])
    return f"npz:{path}"


@pytest.fixture
def make_page(qtbot) -> Iterator[Callable[..., TrainingPage]]:
    pages: list[TrainingPage] = []

    def make(project: Project) -> TrainingPage:
        page = TrainingPage(Document(project))
        qtbot.addWidget(page)
        page.resize(1200, 800)
        page.show()
        qtbot.waitExposed(page)
        panel = page.dataset_panel
        qtbot.waitUntil(lambda: not panel.loading, timeout=LONG)
        pages.append(page)
        return page

    yield make
    for page in pages:
        settle(page)
