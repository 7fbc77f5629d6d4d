import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["tests.windows"]  # `config` (autouse) and `make_window`


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """The window runs its GUI thread single-threaded in torch (cnnstudio.ui.torch_threads);
    pytest's main thread also runs the headless tests: each test ends with the thread count
    it started with."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)
    threads = sys.modules.get("cnnstudio.ui.torch_threads")
    if threads is not None:
        threads._local.__dict__.pop("threads", None)
