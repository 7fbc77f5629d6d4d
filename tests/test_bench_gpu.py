"""bench/gpu_throughput.py runs end to end (a CPU smoke test with tiny sizes) and prints what
the issue asks of it: one line per case, then the two smallest ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_throughput.py"


@pytest.mark.slow  # about 12 s on a busy 2-core machine
def test_the_benchmark_runs_on_the_cpu_and_prints_its_ratios() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--device", "cpu", "--quick"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("# CPU, torch ")
    cases = lines[1:-2]
    assert [line.split(":")[0] for line in cases] == ["Keras-book b64", "LeNet-5 b64"]
    for line in cases:
        assert re.search(r"engine [\d,]+ img/s, ceiling [\d,]+ \(\d+\.\d\dx\), DataLoader "
                         r"[\d,]+ with 0 workers \(\d+\.\d\dx\); augmented: ", line), line
    smallest = [float(line.rsplit(" ", 1)[1]) for line in lines[-2:]]
    assert lines[-2].startswith("ratio over eager ceiling, smallest: ")
    assert lines[-1].startswith("ratio over DataLoader, smallest: ")
    assert all(ratio > 0 for ratio in smallest)


def test_asking_for_cuda_without_a_gpu_says_what_to_do() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    done = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert "no CUDA GPU here: run it on a CUDA machine, or --device cpu --quick" in done.stderr
    assert "Traceback" not in done.stderr
