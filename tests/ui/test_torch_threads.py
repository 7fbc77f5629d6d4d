"""Torch thread counts in the window's process: the training worker keeps torch's default,
the GUI thread and background jobs use one thread (see cnnstudio.ui.torch_threads)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import threading
    import torch
    default = torch.get_num_threads()
    from cnnstudio.ui import torch_threads
    torch_threads.single_threaded()
    assert torch.get_num_threads() == 1
    assert torch_threads.default_threads() == default
    seen = {}
    def worker():
        seen["training"] = torch_threads.for_training()
        seen["training_now"] = torch.get_num_threads()
    def helper():
        torch_threads.helper_thread()
        seen["helper"] = torch.get_num_threads()
    for target in (worker, helper):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert torch.get_num_threads() == 1  # the GUI thread keeps its one thread
    print(default, seen["training"], seen["training_now"], seen["helper"])
""")


def test_the_worker_gets_the_default_and_the_others_one_thread():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    default, training, training_now, helper = map(int, done.stdout.split())
    assert training == training_now == default >= 1
    assert helper == 1


def test_the_warmup_loads_torch_and_the_training_modules_on_its_thread():
    script = textwrap.dedent("""
        import sys
        assert "torch" not in sys.modules
        from cnnstudio.ui import warmup
        thread = warmup.start()
        assert warmup.start() is thread  # once per process
        assert warmup.wait(120) and warmup.error() is None
        assert thread.name == "cnnstudio-warmup" and not thread.daemon
        for name in warmup.MODULES:
            assert name in sys.modules, name
        assert "torch._dynamo" in sys.modules  # the first optimiser's import, done here
        import torch
        print(torch.get_num_threads())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1"]  # the main thread's first op will run on one thread
