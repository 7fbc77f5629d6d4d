import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.config_guard import leak_report, listing, new_entries, real_config_dir

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The whole session's configuration folder, set before any test or import of the window: the
# `config` fixture (tests/windows.py) gives each test its own on top, and whatever undoes that
# fixture's monkeypatching falls back to this folder, never the user's.
REAL_CONFIG_DIR = real_config_dir()
_REAL_CONFIG_BEFORE = listing(REAL_CONFIG_DIR)
SESSION_CONFIG_HOME = Path(tempfile.mkdtemp(prefix="cnnstudio-tests-config-"))
os.environ["CNNSTUDIO_CONFIG_DIR"] = str(SESSION_CONFIG_HOME / "cnnstudio")
os.environ["XDG_CONFIG_HOME"] = str(SESSION_CONFIG_HOME / "xdg")

pytest_plugins = ["tests.windows"]  # `config` (autouse) and `make_window`


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any test wrote into the user's configuration folder."""
    shutil.rmtree(SESSION_CONFIG_HOME, ignore_errors=True)
    leaked = new_entries(REAL_CONFIG_DIR, _REAL_CONFIG_BEFORE)
    if not leaked:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = leak_report(REAL_CONFIG_DIR, leaked)
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "configuration folder written", red=True)
        reporter.write_line(message)
    else:
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
