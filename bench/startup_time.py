"""Time to the first window against the time `import torch` alone takes.

Each measurement is a fresh interpreter, timed from launch to the moment it reports: the
application (CNNSTUDIO_STARTUP_PROBE=1) prints when the main window first paints, then quits;
the baseline is `python -c "import torch"`. The goal is a window faster than importing torch,
which holds as long as nothing in cnnstudio.ui imports torch before the window shows.

    .venv/bin/python bench/startup_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

APP = "import sys; from cnnstudio.cli import main; sys.exit(main([]))"


def time_app(config: str) -> tuple[float, float]:
    """(seconds from launch to the first paint, as the parent sees it; as the app reports)."""
    env = dict(os.environ, CNNSTUDIO_STARTUP_PROBE="1", CNNSTUDIO_CONFIG_DIR=config)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", APP], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline() if child.stdout else ""
    elapsed = time.perf_counter() - started
    child.wait(timeout=60)
    if not line.startswith("window shown after"):
        err = child.stderr.read() if child.stderr else ""
        raise SystemExit(f"the application did not report its window: {line!r}\n{err[-2000:]}")
    return elapsed, float(line.split()[3])


def time_torch() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as config:
        time_app(config)  # warm the file cache for both
        time_torch()
        app_times, inside = [], []
        torch_times = []
        for _ in range(args.runs):
            total, reported = time_app(config)
            app_times.append(total)
            inside.append(reported)
            torch_times.append(time_torch())
    window = statistics.median(app_times)
    torch = statistics.median(torch_times)
    print(f"first window shown (launch to first paint): {window:.3f} s median of {args.runs} "
          f"(run() to first paint {statistics.median(inside):.3f} s)")
    print(f"python -c 'import torch':                    {torch:.3f} s median of {args.runs}")
    print(f"ratio window / torch import: {window / torch:.2f} "
          f"({'faster' if window < torch else 'slower'} than importing torch)")


if __name__ == "__main__":
    main()
