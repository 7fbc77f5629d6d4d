"""Loading torch before the first Train press, on a background thread.

The window opens without torch (it shows in about half the time `import torch` alone takes).
Importing torch later is not free for the GUI thread either: loading its shared libraries holds
Python's GIL for up to a quarter of a second at a time, and the first training run would pay
that while the live plots are drawing. So once the window has painted, `start()` imports torch
and the training modules on a plain thread, and
creates an optimiser once (its first use imports more of torch); by the time a person presses Train they are loaded.
The thread is not a daemon, so quitting during the import waits for it (a thread killed inside
an import can crash the interpreter's exit).
"""

from __future__ import annotations

import importlib
import threading

MODULES = ("torch", "cnnstudio.nn.build", "cnnstudio.train.engine", "cnnstudio.train.data",
           "cnnstudio.train.inspect")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_error: str | None = None


def _load() -> None:
    global _error
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - reported when training starts, not here
            _error = f"{name}: {err}"
            return
    try:
        from cnnstudio.ui import torch_threads

        torch_threads.single_threaded()  # remembers the default for training first
        _first_use()
    except Exception as err:  # noqa: BLE001
        _error = f"torch: {err}"


def _first_use() -> None:
    """What torch imports lazily the first time a run starts: creating an optimiser imports
    torch._dynamo (about a second, GIL-heavy)."""
    import torch

    weight = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.Adam([weight], lr=0.1)
    (weight * 2).sum().backward()
    optimiser.step()


def start() -> threading.Thread:
    """Start importing (once per process); the thread doing it."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_load, name="cnnstudio-warmup")
            _thread.start()
        return _thread


def wait(timeout_s: float | None = None) -> bool:
    """True when the imports have finished (started here if they had not been)."""
    thread = start()
    thread.join(timeout_s)
    return not thread.is_alive()


def error() -> str | None:
    """What failed to import, if anything (training then reports it in full)."""
    return _error
