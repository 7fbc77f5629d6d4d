"""Small, real training runs for the fault tests of the command line (test_failures,
test_resume, test_terminal): a few hundred MNIST-sample images in an .npz file and a tiny
network in a project file, so that one epoch through `cnnstudio train` takes about a second."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnstudio.cli import main
from cnnstudio.core.project import save_project
from tests.train.conftest import tiny_project

EXECUTABLE = Path(sys.executable).with_name("cnnstudio")


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run the real command line in this process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_npz(path: Path, start: int = 0, count: int = 384) -> Path:
    """`count` images of the bundled MNIST sample (from `start`) as npz:FILE data."""
    from cnnstudio.train.data import load_dataset

    sample = load_dataset("mnist-sample", (1, 28, 28))
    x = sample.train_x[start:start + count, 0]
    y = sample.train_y[start:start + count]
    np.savez(path, x=x, y=y)
    return path


def write_tiny_project(path: Path) -> Path:
    """Input 1×28×28 → Conv2D 4 → pooling → Flatten → Dense 10 → Output, as a project file."""
    save_project(tiny_project(), path)
    return path


@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> dict[str, Path]:
    """data.npz, other.npz (other images, same classes) and tiny.cnnproj."""
    folder = tmp_path_factory.mktemp("small")
    return {"data": write_npz(folder / "data.npz"),
            "other": write_npz(folder / "other.npz", start=1000),
            "project": write_tiny_project(folder / "tiny.cnnproj")}


@pytest.fixture(scope="module")
def trained_run(small_files, tmp_path_factory) -> Path:
    """A run folder after one finished epoch (copy it before changing it: see `run_copy`)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    code = main(["train", str(small_files["project"]), "--dataset",
                 f"npz:{small_files['data']}", "--epochs", "1", "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def temporary_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def run_cnnstudio(*args, **kwargs) -> subprocess.CompletedProcess:
    """The installed `cnnstudio` in a process of its own."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([str(EXECUTABLE), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, **kwargs)
