"""Training and loading that fail cleanly (issue 11, items 7, 8 and 11): a full disk, too little
memory, a diverging loss, a read-only run folder, and project files with missing parameters or
ports that do not exist. Each goes through the real command line and real files."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from cnnstudio.core import locks
from cnnstudio.core.analysis import analyze
from cnnstudio.core.project import load_project, project_to_dict
from cnnstudio.train import guards
from cnnstudio.train import run_folder as rf
from cnnstudio.train.engine import Trainer
from tests.faults.small_runs import (  # noqa: F401 (fixtures used by name)
    cli,
    run_copy,
    small_files,
    temporary_files,
    trained_run,
)


def train_args(files: dict[str, Path], out: Path, *more) -> list:
    return ["train", files["project"], "--dataset", f"npz:{files['data']}", "--out", out, *more]


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in (rf.MODEL, rf.CHECKPOINT)}


# -- 7. a full disk ----------------------------------------------------------------------------


def partial_write_then(error: BaseException):
    """A torch.save that writes part of the file and then fails as a full disk makes it."""
    def save(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04" + b"\0" * 512)
        raise error
    return save


def test_a_full_disk_at_a_checkpoint_names_the_file_and_keeps_the_last_one(
        capsys, run_copy, monkeypatch):
    before = file_bytes(run_copy)
    monkeypatch.setattr(torch, "save", partial_write_then(OSError(errno.ENOSPC, "No space")))
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", run_copy)
    assert code == 1, err
    assert re.search(r"the disk is full: [\d.]+ MB needed at \S*model\.pt", err), err
    assert "internal error" not in err
    assert file_bytes(run_copy) == before  # the epoch-1 checkpoint and weights, untouched
    assert temporary_files(run_copy) == []


def test_pytorchs_own_report_of_a_full_disk_becomes_the_same_message(capsys, run_copy,
                                                                     monkeypatch):
    before = file_bytes(run_copy)
    enforce = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    monkeypatch.setattr(torch, "save", partial_write_then(enforce))
    full = shutil.disk_usage(run_copy)._replace(free=4096)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: full)
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", run_copy)
    assert code == 1
    assert re.search(r"the disk is full: [\d.]+ MB needed at \S*model\.pt", err), err
    assert "enforce fail" not in err and "internal error" not in err
    assert file_bytes(run_copy) == before
    assert temporary_files(run_copy) == []


def test_a_failed_write_on_a_disk_with_room_is_not_called_a_full_disk(capsys, run_copy,
                                                                     monkeypatch):
    monkeypatch.setattr(torch, "save", partial_write_then(RuntimeError("file write failed")))
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", run_copy)
    assert code == 1
    assert "disk is full" not in err and "could not write" in err
    assert temporary_files(run_copy) == []


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m"):
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with mount privileges)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_really_full_file_system(capsys, trained_run, tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        run = disk / "run"
        shutil.copytree(trained_run, run)
        before = file_bytes(run)
        room = shutil.disk_usage(disk).free - 8 * 1024  # the checkpoint's weights need more
        with open(disk / "filler", "wb") as filler:
            filler.write(b"\0" * room)
        code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", run)
        assert code == 1
        assert re.search(rf"the disk is full: [\d.]+ MB needed at {re.escape(str(run))}", err), err
        assert "internal error" not in err and "enforce fail" not in err
        assert file_bytes(run) == before
        assert temporary_files(run) == []


# -- 8. memory ---------------------------------------------------------------------------------


def need_of(files: dict[str, Path]) -> guards.MemoryNeed:
    """What the engine estimates for the tiny project on the small npz data (Adam)."""
    analysis = analyze(load_project(files["project"]).graph)
    dataset = 384 * 28 * 28  # the copy of the uint8 images a run keeps
    return guards.MemoryNeed.of(lambda b: analysis.memory(b, "adam"), dataset)


def test_a_run_the_memory_cannot_hold_is_refused_with_a_batch_size_that_fits(
        capsys, small_files, tmp_path, monkeypatch):
    need = need_of(small_files)
    available = need.at(10)
    monkeypatch.setattr(guards, "available_memory", lambda: available)
    code, out, err = cli(capsys, *train_args(small_files, tmp_path / "run", "--epochs", "1",
                                             "--batch-size", "64"))
    assert code == 1
    found = re.search(r"training at batch size 64 needs about .* of memory, and .* is "
                      r"available: use a smaller batch size \(for example (\d+)\)", err)
    assert found, err
    assert re.search(r"needs about [\d,.]+ (B|KiB|MiB|GiB) of memory", err), err
    suggested = int(found.group(1))
    assert 1 <= suggested <= 10 and need.at(suggested) <= available
    assert "epoch 1" not in out and not (tmp_path / "run" / rf.METRICS).exists()

    code, out, err = cli(capsys, *train_args(small_files, tmp_path / "run", "--epochs", "1",
                                             "--batch-size", suggested))
    assert code == 0, err
    assert "epoch 1:" in out


def test_a_network_too_large_even_for_one_image(capsys, small_files, tmp_path, monkeypatch):
    monkeypatch.setattr(guards, "available_memory", lambda: 1000)
    code, _, err = cli(capsys, *train_args(small_files, tmp_path / "run"))
    assert code == 1
    assert "even one image at a time" in err and "smaller" in err


def fail_on_second_step(monkeypatch, error: BaseException) -> None:
    original = Trainer._backward_and_step
    calls = []

    def step(self, loss):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return original(self, loss)

    monkeypatch.setattr(Trainer, "_backward_and_step", step)


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 21474836480 bytes. Error code 12 (Cannot "
                 "allocate memory)"),
], ids=["MemoryError", "allocator"])
def test_running_out_of_memory_while_training_ends_with_advice(capsys, small_files, tmp_path,
                                                               monkeypatch, error):
    fail_on_second_step(monkeypatch, error)
    out_dir = tmp_path / "run"
    code, _, err = cli(capsys, *train_args(small_files, out_dir, "--batch-size", "64"))
    assert code == 1
    assert ("training failed: the computer ran out of memory at batch size 64: use a smaller "
            "batch size (for example 32)") in err
    assert "internal error" not in err and "DefaultCPUAllocator" not in err
    assert json.loads((out_dir / rf.FINAL).read_text())["status"] == "failed"


def test_an_unrelated_runtime_error_is_still_reported_as_a_bug(capsys, small_files, tmp_path,
                                                              monkeypatch):
    fail_on_second_step(monkeypatch, RuntimeError("shape mismatch"))
    code, _, err = cli(capsys, *train_args(small_files, tmp_path / "run"))
    assert code == 2 and "internal error" in err and "out of memory" not in err


def test_the_suggested_batch_halves_and_respects_what_fits():
    assert guards.suggested_batch(64) == 32
    assert guards.suggested_batch(100) == 32  # a power of two, below half of 100
    assert guards.suggested_batch(64, fits=10) == 8
    assert guards.suggested_batch(64, fits=1000) == 32  # it did not fit: never the same size
    assert guards.suggested_batch(2) == 1


# -- 11. a diverging loss, a read-only folder ---------------------------------------------------


def test_a_learning_rate_that_makes_the_loss_explode_stops_the_run(capsys, small_files,
                                                                    tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = cli(capsys, *train_args(small_files, out_dir, "--lr", "10",
                                             "--optimizer", "adam", "--epochs", "2"))
    assert code == 1, out
    found = re.search(r"the loss grew to (\S+) at step \d+ \(epoch 1\), over 100 times its "
                      r"first value (\S+): training is diverging; lower the learning rate "
                      r"\(now 10\), for example to 1", err)
    assert found, err
    assert float(found.group(1)) > 100 * float(found.group(2))
    assert json.loads((out_dir / rf.FINAL).read_text())["status"] == "failed"


def test_a_normal_learning_rate_trains_on(capsys, small_files, tmp_path):
    code, _, err = cli(capsys, *train_args(small_files, tmp_path / "run", "--epochs", "1"))
    assert code == 0, err
    assert "warning" not in err


def test_a_run_that_learned_nothing_ends_with_a_warning(capsys, small_files, tmp_path):
    # a softmax before the Output caps the loss at -ln(1e-12) ≈ 27.6: a learning rate of 10
    # wrecks the network without the 100-fold growth that stops a run
    from cnnstudio.core.project import Project, save_project
    from tests.train.test_probabilities import course_network

    project = tmp_path / "course-softmax.cnnproj"
    save_project(Project.new(course_network(softmax=True), name="course"), project)
    out_dir = tmp_path / "run"
    code, out, err = cli(capsys, "train", project, "--dataset", f"npz:{small_files['data']}",
                         "--out", out_dir, "--lr", "10", "--epochs", "1")
    assert code == 0, err
    assert "warning: the network did not learn" in err and "try 1" in err, err
    final = json.loads((out_dir / rf.FINAL).read_text())
    assert final["warnings"] and "did not learn" in final["warnings"][0]


def test_the_did_not_learn_warning_needs_chance_accuracy_and_no_lower_loss():
    from types import SimpleNamespace as Epoch

    stuck = [Epoch(train_loss=24.6, val_acc=0.099)]
    (warning,) = guards.learning_warnings(stuck, first_loss=2.3, classes=10, learning_rate=10)
    assert "9.9%" in warning and "grew from 2.3 to 24.6" in warning and "try 1" in warning
    learned = [Epoch(train_loss=0.3, val_acc=0.95)]
    assert guards.learning_warnings(learned, 2.3, 10, 0.001) == []
    slow_start = [Epoch(train_loss=1.9, val_acc=0.11)]  # the loss fell: still learning
    assert guards.learning_warnings(slow_start, 2.3, 10, 0.001) == []
    assert guards.learning_warnings([], 2.3, 10, 0.001) == []


def test_the_growth_check_ignores_noise_near_zero():
    assert guards.diverged_at([0.001, 0.5, 30.0], first_loss=0.001) is None  # limit 100 × 1.0
    assert guards.diverged_at([2.3, 2.0, 231.0], first_loss=2.3) == 2
    assert guards.diverged_at([2.3, float("nan")], first_loss=None) == 1


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_run_folder_is_found_before_training(capsys, small_files, tmp_path,
                                                         monkeypatch, code):
    """Tests run as root, for whom mode bits do not stop a write: the probe fails instead."""
    def refuse(folder):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(rf, "_write_probe", refuse)
    out_dir = tmp_path / "run"
    code_, out, err = cli(capsys, *train_args(small_files, out_dir, "--epochs", "1"))
    assert code_ == 1
    assert f"cannot write in the run folder {out_dir}: {UNWRITABLE[code]}" in err
    assert "epoch 1" not in out and "Training on" not in out
    assert not (out_dir / rf.METRICS).exists() and not (out_dir / rf.CHECKPOINT).exists()


UNWRITABLE = {
    errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
    errno.EACCES: "permission denied; make it writable or choose another folder (--out)",
}


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_an_existing_run_folder_whose_lock_cannot_be_written(capsys, small_files, tmp_path,
                                                             monkeypatch, code):
    """The run-folder lock is the first file a run creates: on a read-only disk the folder
    exists and cannot be written, which is what the message says (not 'cannot create')."""
    def refuse(path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(locks, "create_lock_file", refuse)
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    code_, out, err = cli(capsys, *train_args(small_files, out_dir, "--epochs", "1"))
    assert code_ == 1 and "internal error" not in err
    assert (f"training failed: cannot write in the run folder {out_dir}: "
            f"{UNWRITABLE[code]}") in err, err
    assert "cannot create" not in err and os.strerror(code) not in err
    assert "epoch 1" not in out and list(out_dir.iterdir()) == []


def test_a_really_read_only_file_system(capsys, small_files, tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        (disk / "run").mkdir()
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if remounted.returncode != 0:
            pytest.skip("cannot remount the tmpfs read-only here")
        code, out, err = cli(capsys, *train_args(small_files, disk / "run", "--epochs", "1"))
        assert code == 1
        assert "internal error" not in err
        assert (f"cannot write in the run folder {disk / 'run'}: "
                f"{UNWRITABLE[errno.EROFS]}") in err, err
        assert "epoch 1" not in out


def test_the_probe_leaves_nothing_behind(tmp_path):
    rf.RunFolder(tmp_path).check_writable()
    assert list(tmp_path.iterdir()) == []


# -- 11. project files -------------------------------------------------------------------------


def edited_project(files: dict[str, Path], tmp_path: Path, edit) -> Path:
    data = project_to_dict(load_project(files["project"]))
    edit(data)
    path = tmp_path / "edited.cnnproj"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def conv_entry(data: dict) -> dict:
    return next(b for b in data["blocks"] if b["type"] == "Conv2D")


def test_a_missing_parameter_is_filled_in_and_said(capsys, small_files, tmp_path):
    def drop_filters(data):
        del conv_entry(data)["params"]["filters"]

    path = edited_project(small_files, tmp_path, drop_filters)
    project = load_project(path)
    assert project.load_notes == ["conv: 'filters' was missing; using 32"]
    assert load_project(small_files["project"]).load_notes == []
    code, out, err = cli(capsys, "summary", path)
    assert code == 0
    assert "note: conv: 'filters' was missing; using 32" in err
    assert "note:" not in out  # stdout stays the table alone (and --json stays JSON)


def test_several_missing_parameters_make_one_note_per_block(small_files, tmp_path):
    def drop(data):
        params = conv_entry(data)["params"]
        del params["filters"], params["kernel"], params["stride"]

    project = load_project(edited_project(small_files, tmp_path, drop))
    assert project.load_notes == [
        "conv: 'kernel', 'stride' and 'filters' were missing; using [3, 3], [1, 1] and 32"
    ] or project.load_notes == [
        "conv: 'filters', 'kernel' and 'stride' were missing; using 32, [3, 3] and [1, 1]"]


def test_the_window_shows_the_filled_in_defaults(qtbot, small_files, tmp_path, monkeypatch):
    from cnnstudio.ui.main_window import MainWindow

    monkeypatch.setenv("CNNSTUDIO_CONFIG_DIR", str(tmp_path / "config"))

    def drop_filters(data):
        del conv_entry(data)["params"]["filters"]

    path = edited_project(small_files, tmp_path, drop_filters)
    window = MainWindow(recover=False)
    qtbot.addWidget(window)
    window.remember_layout = False
    assert window.open_file(path)
    assert not window.banner.isHidden()
    assert "conv: 'filters' was missing; using 32" in window.banner.label.text()


def test_a_port_a_block_does_not_have_is_refused_with_its_place(capsys, small_files, tmp_path):
    def bad_port(data):
        data["connections"][1]["port"] = 99

    path = edited_project(small_files, tmp_path, bad_port)
    code, _, err = cli(capsys, "summary", path)
    assert code == 2
    assert ("connections[1].port: Pooling 'pool' takes one input, so the port must be 0, "
            "got 99") in err


def test_a_merge_keeps_any_port_its_inputs_are_ordered_by(tmp_path):
    from cnnstudio.core.graph import Graph
    from cnnstudio.core.project import Project, project_from_dict

    graph = Graph()
    source, a, cat = graph.chain([("Input", {"channels": 1, "height": 8, "width": 8}, "in"),
                                  ("Conv2D", {"filters": 2}, "a"), ("Concatenate", {}, "cat")])
    (b,) = graph.chain([("Conv2D", {"filters": 2}, "b")], after=source.id)
    graph.connect(b.id, cat.id, 5)  # a gap, as deleting wires leaves
    loaded = project_from_dict(project_to_dict(Project.new(graph)))
    assert sorted((e.src, e.port) for e in loaded.graph.edges if e.dst == cat.id) == [
        (a.id, 0), (b.id, 5)]


# -- 11. ~ in paths ----------------------------------------------------------------------------


def test_a_tilde_is_expanded_in_every_path_argument(capsys, small_files, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, _, err = cli(capsys, "new", "--template", "lenet5", "-o", "~/net.cnnproj")
    assert code == 0, err
    assert (tmp_path / "net.cnnproj").is_file() and not Path("~").exists()
    code, out, _ = cli(capsys, "summary", "~/net.cnnproj")
    assert code == 0 and "LeNet-5" in out
    shutil.copy(small_files["project"], tmp_path / "tiny.cnnproj")
    shutil.copy(small_files["data"], tmp_path / "data.npz")
    code, _, err = cli(capsys, "train", "~/tiny.cnnproj", "--dataset", "npz:~/data.npz",
                       "--epochs", "1", "--out", "~/run")
    assert code == 0, err
    assert (tmp_path / "run" / rf.CHECKPOINT).is_file()
    code, _, err = cli(capsys, "export", "~/run", "--format", "state_dict", "--out", "~/w.pt")
    assert code == 0, err
    assert (tmp_path / "w.pt").is_file()


@pytest.mark.parametrize("log", [False, True], ids=["plain", "tensorboard"])
def test_a_bug_in_the_first_epoch_takes_back_the_fresh_run_folder(capsys, small_files, tmp_path,
                                                                  monkeypatch, log):
    """Before its first checkpoint such a folder would neither resume nor export; with the
    TensorBoard log on, its event files went unremoved and kept the folder."""
    fail_on_second_step(monkeypatch, RuntimeError("shape mismatch"))
    out_dir = tmp_path / "run"
    code, _, err = cli(capsys, *train_args(small_files, out_dir,
                                           *(["--tensorboard"] if log else [])))
    assert code == 2 and "internal error" in err
    assert not out_dir.exists()
