"""The window keeps the same promises about files: Save As never replaces a special file, two
training sessions never write one run folder, and a full disk during autosave is said once and
keeps the previous recovery copy."""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project, load_project, project_to_dict
from cnnstudio.train import run_folder as rf
from cnnstudio.ui.recovery import write_atomic
from cnnstudio.ui.training.session import TrainingSession

Button = QMessageBox.StandardButton


def special_file(folder: Path, kind: str) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes and sockets are POSIX files")
    path = folder / f"target-{kind}.cnnproj"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.close()
    elif kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(folder / "pipe")
        path.symlink_to(folder / "pipe")
    return path


def identity(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return stat.S_IFMT(info.st_mode), info.st_ino


def answer_next_message_box(texts: list[str]) -> None:
    """Record the texts of the next modal message box and press OK on it."""
    tries = [0]

    def act() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            tries[0] += 1
            if tries[0] < 200:
                QTimer.singleShot(20, act)
            return
        texts.append("\n".join((box.text(), box.informativeText(), box.detailedText())))
        box.button(Button.Ok).click()

    QTimer.singleShot(0, act)


@pytest.mark.parametrize("kind", ["fifo", "socket", "folder", "link"])
def test_save_as_onto_a_special_file_is_refused_with_a_message_box(make_window, tmp_path,
                                                                   monkeypatch, kind):
    window = make_window(recover=False)
    target = special_file(tmp_path, kind)
    before = identity(target)
    monkeypatch.setattr(window, "ask_save_path", lambda: str(target))
    window.document.edit("Add Dropout", lambda g: g.add_block("Dropout"))
    texts: list[str] = []
    answer_next_message_box(texts)
    assert not window.save_as()
    assert len(texts) == 1 and "cannot save" in texts[0]
    assert "not a regular file" in texts[0] or "it is a folder" in texts[0]
    assert identity(target) == before
    assert window.document.is_dirty and window.document.path is None
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_recovery_writer_refuses_a_special_file(tmp_path):
    fifo = special_file(tmp_path, "fifo")
    with pytest.raises(OSError, match="named pipe"):
        write_atomic(fifo, "{}")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_full_disk_during_autosave_is_said_once_and_keeps_the_previous_copy(make_window,
                                                                              qtbot):
    window = make_window(recover=False, autosave_interval_ms=50)
    saver = window.autosaver
    window.document.edit("Add Dropout", lambda g: g.add_block("Dropout"))
    qtbot.waitUntil(saver.project_file.exists, timeout=5000)
    previous = saver.project_file.read_bytes()
    messages: list[str] = []
    saver.failed.connect(messages.append)
    attempts = []

    def full_disk(fd: int) -> None:
        attempts.append(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", full_disk)
        window.document.edit("Add Flatten", lambda g: g.add_block("Flatten"))
        qtbot.waitUntil(lambda: len(attempts) >= 5, timeout=5000)  # five autosave ticks
    assert len(messages) == 1, messages
    assert "Autosave failed" in messages[0] and "the disk is full: 0.1 MB needed at" in messages[0]
    assert "The previous recovery copy is kept" in messages[0]
    assert window.statusBar().currentMessage() == messages[0]
    assert saver.project_file.read_bytes() == previous
    assert not [p for p in saver.folder.iterdir() if p.name.endswith(".tmp")]
    # with room on the disk again the next tick catches up
    qtbot.waitUntil(lambda: saver.project_file.read_bytes() != previous, timeout=5000)
    assert project_to_dict(load_project(saver.project_file)) == project_to_dict(
        window.document.project)
    with pytest.MonkeyPatch.context() as patch:  # a new spell of failures is said again, once
        patch.setattr(os, "fsync", full_disk)
        attempts.clear()
        window.document.edit("Add Dropout", lambda g: g.add_block("Dropout"))
        qtbot.waitUntil(lambda: len(attempts) >= 3, timeout=5000)
    assert len(messages) == 2


@pytest.fixture
def tiny_npz(tmp_path) -> str:
    from cnnstudio.train.data import load_dataset

    data = load_dataset("mnist-sample", (1, 28, 28))
    path = tmp_path / "tiny.npz"
    np.savez(path, x=data.train_x[:640, 0], y=data.train_y[:640])
    return f"npz:{path}"


def tiny_project(spec: str, epochs: int) -> Project:
    graph = Graph()
    graph.chain([("Input", {"channels": 1, "height": 28, "width": 28}),
                 ("Conv2D", {"filters": 4, "kernel": 3, "activation": "relu"}),
                 ("Pooling", {}), ("Flatten", {}), ("Dense", {"units": 10}), ("Output", {})])
    return Project.new(graph, dataset={"spec": spec},
                       training={"epochs": epochs, "batch_size": 32})


def test_two_training_sessions_cannot_write_one_run_folder(qtbot, tmp_path, tiny_npz):
    folder = tmp_path / "run"
    first, second = TrainingSession(), TrainingSession()
    first.start(tiny_project(tiny_npz, epochs=500), folder)
    qtbot.waitUntil(lambda: first.state == "running", timeout=60_000)
    project = (folder / rf.PROJECT).read_bytes()
    with qtbot.waitSignal(second.finished, timeout=60_000) as refused:
        second.start(tiny_project(tiny_npz, epochs=1), folder)
    result = refused.args[0]
    assert result.status == "failed"
    assert f"in use by another training run (process {os.getpid()}" in result.message
    assert first.state == "running" and (folder / rf.PROJECT).read_bytes() == project
    with qtbot.waitSignal(first.finished, timeout=60_000) as stopped:
        first.stop()
    assert stopped.args[0].status == "stopped"
    first.wait()
    second.wait()
    assert not (folder / rf.LOCK).exists()


def test_exporting_the_diagram_onto_a_pipe_is_refused_not_hung(make_window, tmp_path,
                                                               monkeypatch):
    window = make_window(recover=False)
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes are POSIX files")
    target = tmp_path / "diagram.png"
    os.mkfifo(target)  # writing an image into it would block the window for ever
    monkeypatch.setattr(window, "ask_export_path", lambda suffix: str(target))
    texts: list[str] = []
    answer_next_message_box(texts)
    assert not window.export_diagram(".png")
    assert len(texts) == 1 and "named pipe" in texts[0]
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
