"""How many CPU threads torch uses on each thread of the window's process.

Torch runs its CPU kernels in OpenMP thread teams: one team for each Python thread that calls
them, living as long as that thread. When the teams' threads outnumber the cores, OpenMP stops
spinning between parallel regions and every convolution waits for its helpers to wake up.
Measured on a 2-core machine: training on the worker thread ran about 25 % slower as soon as
the GUI thread had run a single multi-threaded op (loading weights into the inspection model),
and stayed slower for good (a team does not go away when its thread later asks for fewer
threads). So the training worker uses the machine's default number of threads and every other
thread of the window that touches torch uses one; each calls the function here before its first
torch operation. Only the window does this: `cnnstudio train` and the engine are untouched.
"""

from __future__ import annotations

import sys
import threading

_lock = threading.Lock()
_default: int | None = None
_local = threading.local()


def default_threads() -> int:
    """Torch's intra-op thread count before anything here changed it (OMP_NUM_THREADS, or
    the number of cores)."""
    global _default
    with _lock:
        if _default is None:
            import torch

            _default = torch.get_num_threads()
        return _default


def for_training() -> int:
    """The calling thread (a training worker) computes with the default number of threads."""
    import torch

    threads = default_threads()
    torch.set_num_threads(threads)
    _local.threads = threads
    return threads


def single_threaded() -> None:
    """The calling thread computes on one thread (cheap to call again)."""
    if getattr(_local, "threads", None) == 1:
        return
    import torch

    default_threads()  # remembered before the first change
    torch.set_num_threads(1)
    _local.threads = 1


def helper_thread() -> None:
    """For a background job of the window: one thread, if torch is loaded (a job that loads
    torch itself is rare: the warm-up loads it soon after the window opens)."""
    if "torch" in sys.modules:
        single_threaded()
