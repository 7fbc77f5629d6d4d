import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """The window runs its GUI thread single-threaded in torch (cnnstudio.ui.torch_threads);
    pytest's main thread also runs the headless tests, which get torch's default back."""
    yield
    threads = sys.modules.get("cnnstudio.ui.torch_threads")
    if threads is not None and threads._default is not None:
        sys.modules["torch"].set_num_threads(threads._default)
        threads._local.__dict__.pop("threads", None)
