"""One training run per run folder: a lock file with the owner's process id, taken for the
whole run, released on every way a run ends, and taken over from a process that has died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cnnstudio.core.locks import FolderLock, LockHeld, process_start
from cnnstudio.train import run_folder as rf
from cnnstudio.train.engine import Trainer, train
from cnnstudio.train.events import StepProgress, TrainingControl
from tests.train.conftest import (  # noqa: F401 (fixtures used by name)
    mnist_sample,
    mnist_slice,
    one_torch_thread,
    options,
    small_data,
    tiny_graph,
    tiny_project,
)

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from cnnstudio.train.run_folder import RunFolder
lock = RunFolder(sys.argv[1]).lock()
print("locked", flush=True)
time.sleep(120)
"""


def python(*args: str, **kwargs: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return line
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"no '{text}' from the process: {process.communicate()[1][-2000:]}")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_is_refused_at_once_with_the_first_ones_pid(tmp_path, small_data):
    folder = tmp_path / "run"
    holder = python("-c", HOLDER, str(folder))
    try:
        wait_for_line(holder, "locked")
        started = time.monotonic()
        finished = train(tiny_project(), small_data, folder, options=options())
        assert time.monotonic() - started < 10  # refused before any training
        assert finished.status == "failed"
        assert f"in use by another training run (process {holder.pid})" in finished.message
        assert sorted(p.name for p in folder.iterdir()) == [rf.LOCK]  # nothing written
        assert (folder / rf.LOCK).read_text().split()[0] == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_two_trainings_from_the_command_line(tmp_path):
    """The first CLI run trains (for ever), the second is refused with its pid and changes
    nothing; Ctrl-C stops the first, which releases the folder."""
    folder = tmp_path / "run"
    first = python("-m", "cnnstudio", "train", "--template", "lenet5", "--dataset",
                   "mnist-sample", "--epochs", "1000", "--out", str(folder))
    try:
        wait_for_line(first, "Training on")
        project, data = (folder / rf.PROJECT).read_bytes(), (folder / rf.DATA).read_bytes()
        second = python("-m", "cnnstudio", "train", "--template", "keras-mnist", "--dataset",
                        "mnist-sample", "--epochs", "1", "--out", str(folder))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 1, err
        assert f"process {first.pid}" in err and "choose another folder" in err
        assert (folder / rf.PROJECT).read_bytes() == project
        assert (folder / rf.DATA).read_bytes() == data
        first.send_signal(signal.SIGINT)  # Ctrl-C: stop after this batch, keep the weights
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert "stopped" in out.lower() and not (folder / rf.LOCK).exists()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.parametrize("stale", ["dead process", "reused pid"])
def test_a_stale_lock_is_taken_over(tmp_path, small_data, stale):
    folder = tmp_path / "run"
    folder.mkdir()
    if stale == "dead process":
        text = f"{dead_pid()} -\n"
    else:  # this process's id with another start time: the id of a process that died since
        text = f"{os.getpid()} {int(process_start(os.getpid()) or 0) + 1}\n"
    (folder / rf.LOCK).write_text(text)
    finished = train(tiny_project(), small_data, folder, options=options())
    assert finished.status == "completed", finished.message
    assert not (folder / rf.LOCK).exists()
    assert not [p for p in folder.iterdir() if ".stale-" in p.name]


def test_a_live_lock_is_never_removed_as_stale(tmp_path):
    folder = tmp_path / "run"
    first = FolderLock(folder, rf.LOCK).acquire()
    with pytest.raises(LockHeld) as caught:
        FolderLock(folder, rf.LOCK).acquire()
    assert caught.value.pid == os.getpid()
    first.release()
    assert not folder.exists()  # made by the lock, and empty again
    with FolderLock(folder, rf.LOCK) as again:
        assert again.held and (folder / rf.LOCK).exists()


class Boom(Exception):
    pass


def _raise(kind: type[BaseException]):
    def evaluate(self: Trainer) -> Any:
        raise kind("raised during the epoch")

    return evaluate


@pytest.mark.parametrize("ending", ["completed", "stopped", "failed set-up", "error",
                                    "keyboard interrupt", "closed by the consumer"])
def test_the_lock_is_released_on_every_exit_path(tmp_path, small_data, monkeypatch, ending):
    folder = tmp_path / "run"
    project, control = tiny_project(), TrainingControl()
    if ending == "failed set-up":
        project = tiny_project(tiny_graph(units=3))  # 3 outputs for 10 classes
    elif ending == "error":
        monkeypatch.setattr(Trainer, "evaluate", _raise(Boom))
    elif ending == "keyboard interrupt":
        monkeypatch.setattr(Trainer, "evaluate", _raise(KeyboardInterrupt))
    events = Trainer(project, small_data, folder, options=options(epochs=3),
                     control=control).run()
    try:
        for event in events:
            assert (folder / rf.LOCK).exists()  # held while the run goes
            if isinstance(event, StepProgress):
                if ending == "stopped":
                    control.stop()
                elif ending == "closed by the consumer":
                    events.close()
                    break
    except (Boom, KeyboardInterrupt):
        assert ending in ("error", "keyboard interrupt")
    assert not (folder / rf.LOCK).exists()
    if ending == "failed set-up":
        assert not folder.exists()  # the run made the folder and wrote nothing into it


def test_a_second_trainer_in_the_same_process_fails_cleanly(tmp_path, small_data):
    """Two Trainers in one process (two windows): the second fails cleanly with the pid."""
    folder = tmp_path / "run"
    first = Trainer(tiny_project(), small_data, folder, options=options(epochs=2)).run()
    next(first)  # RunStarted: the folder is locked
    second = train(tiny_project(), small_data, folder, options=options())
    assert second.status == "failed"
    assert f"process {os.getpid()}, this program" in second.message
    first.close()
    assert not (folder / rf.LOCK).exists()
