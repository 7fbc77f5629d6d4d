"""Never clobber a user's files: special files are never replaced, a folder of the user's own
files is never trained into, an export never replaces what it must not, and a full disk is a
plain message that leaves the previous file and no temporary file behind.

Special files are made under tmp_path (a FIFO, a socket, a folder, a link to the FIFO and, where
the system allows it, a character device); no real system path is touched.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnstudio.cli import main
from cnnstudio.core import files
from cnnstudio.core.project import ProjectError, save_project
from cnnstudio.core.templates import new_project
from cnnstudio.nn.export import ExportError, export_run, load_run
from cnnstudio.train import run_folder as rf
from cnnstudio.train.engine import TrainOptions, train
from cnnstudio.train.run_folder import RunFolder, RunFolderError
from tests.train.conftest import (  # noqa: F401 (fixtures used by name)
    mnist_sample,
    mnist_slice,
    one_torch_thread,
    options,
    small_data,
    tiny_project,
)

KINDS = ("fifo", "socket", "folder", "link", "device")
KIND_WORDS = {"fifo": "named pipe", "socket": "socket", "folder": "folder",
              "link": "a link to a named pipe", "device": "device"}


def _make_special(folder: Path, kind: str, name: str) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes, sockets and device nodes are POSIX files")
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(str(path))
        except OSError as err:  # the path is longer than a socket address allows
            pytest.skip(f"cannot bind a socket at {path}: {err}")
        server.close()  # the socket file stays
    elif kind == "folder":
        path.mkdir()
    elif kind == "link":
        os.mkfifo(folder / f"{name}.target")
        path.symlink_to(folder / f"{name}.target")
    else:  # a character device like /dev/null (1, 3), made under tmp_path
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except OSError as err:
            pytest.skip(f"cannot make a device node here: {err}")
    return path


def identity(path: Path) -> tuple[int, int, bool]:
    """What must not change: the file type, the inode, and whether it is a link."""
    info = os.lstat(path)
    return stat.S_IFMT(info.st_mode), info.st_ino, path.is_symlink()


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.fixture(params=KINDS)
def special(request, tmp_path) -> Path:
    return _make_special(tmp_path, request.param, f"target.{request.param}")


# -- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_safe_target_rule_names_what_the_file_is(tmp_path, kind):
    path = _make_special(tmp_path, kind, "x")
    reason = files.replace_refusal(path)
    assert reason is not None and KIND_WORDS[kind] in reason
    assert "not a regular file" in reason
    regular = tmp_path / "plain.cnnproj"
    regular.write_text("{}")
    (tmp_path / "to-plain").symlink_to(regular)
    assert files.replace_refusal(regular) is None
    assert files.replace_refusal(tmp_path / "to-plain") is None
    assert files.replace_refusal(tmp_path / "missing") is None


def test_a_read_only_file_is_read_only_by_its_mode_bits_even_for_root(tmp_path):
    path = tmp_path / "kept.onnx"
    path.write_bytes(b"x")
    assert not files.is_read_only(path)
    path.chmod(0o444)
    assert files.is_read_only(path)  # os.access would say writable when run as root


# -- project files ---------------------------------------------------------------------------


def test_saving_a_project_onto_a_special_file_is_refused(special, tmp_path):
    before = identity(special)
    kind = special.suffix[1:]
    with pytest.raises(ProjectError) as caught:
        save_project(new_project("lenet5"), special)
    assert KIND_WORDS[kind] in str(caught.value) and "not a regular file" in str(caught.value)
    assert identity(special) == before and temp_files(tmp_path) == []


def test_cnnstudio_new_refuses_a_special_file_even_with_force(special, tmp_path, capsys):
    before = identity(special)
    code = main(["new", "--template", "lenet5", "-o", str(special), "--force"])
    err = capsys.readouterr().err
    assert code == 2 and "not a regular file" in err and "Traceback" not in err
    assert identity(special) == before and temp_files(tmp_path) == []


def test_cnnstudio_new_still_overwrites_a_plain_file_with_force(tmp_path, capsys):
    path = tmp_path / "net.cnnproj"
    path.write_text("old")
    assert main(["new", "--template", "lenet5", "-o", str(path)]) == 2
    assert path.read_text() == "old"
    assert main(["new", "--template", "lenet5", "-o", str(path), "--force"]) == 0
    assert json.loads(path.read_text())["format"] == "cnnstudio-project"


# -- run folders -----------------------------------------------------------------------------


def test_run_folder_writers_refuse_special_files(tmp_path):
    folder = RunFolder(tmp_path)
    fifo = _make_special(tmp_path, "fifo", rf.DATA)
    sock = _make_special(tmp_path, "socket", rf.MODEL)
    before = identity(fifo), identity(sock)
    with pytest.raises(RunFolderError, match="named pipe"):
        folder.write_json(rf.DATA, {"classes": []})
    with pytest.raises(RunFolderError, match="socket"):
        folder.save_tensors(rf.MODEL, {"w": torch.zeros(3)})
    assert (identity(fifo), identity(sock)) == before and temp_files(tmp_path) == []


def user_folder(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A folder of the user's own files that happen to have the names a run writes."""
    folder = tmp_path / "mine"
    folder.mkdir()
    save_project(new_project("lenet5"), folder / rf.PROJECT)
    torch.save({"mine": torch.ones(2)}, folder / rf.MODEL)
    (folder / rf.DATA).write_text('{"my": "notes"}\n')
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def test_training_refuses_a_folder_of_the_users_own_files(tmp_path, small_data):
    folder, before = user_folder(tmp_path)
    finished = train(tiny_project(), small_data, folder, options=options())
    assert finished.status == "failed"
    assert "is not empty" in finished.message and "pick an empty or new folder" in finished.message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no lock, no marker


def test_cnnstudio_train_refuses_the_users_folder(tmp_path, capsys):
    folder, before = user_folder(tmp_path)
    code = main(["train", "--template", "lenet5", "--dataset", "mnist-sample", "--epochs", "1",
                 "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 1 and "pick an empty or new folder" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_run_folder_carries_a_marker_and_a_finished_one_refuses_a_fresh_run(tmp_path,
                                                                             small_data):
    folder = tmp_path / "empty"
    folder.mkdir()  # an empty existing folder is fine
    assert train(tiny_project(), small_data, folder, options=options()).status == "completed"
    marker = json.loads((folder / rf.MARKER).read_text())
    assert marker == {"format": "cnnstudio-run", "version": rf.MARKER_VERSION}
    assert not (folder / rf.LOCK).exists()
    weights = (folder / rf.MODEL).read_bytes()
    again = train(tiny_project(), small_data, folder, options=options())
    assert again.status == "failed" and "already holds a training run" in again.message
    assert (folder / rf.MODEL).read_bytes() == weights


def test_an_older_run_folder_without_a_marker_is_resumed_and_gets_one(tmp_path, small_data):
    folder = tmp_path / "old"
    assert train(tiny_project(), small_data, folder, options=options()).status == "completed"
    (folder / rf.MARKER).unlink()  # as the versions before the marker wrote it
    assert RunFolder(folder).is_run_folder()
    resumed = train(tiny_project(), small_data, folder, options=options(epochs=2), resume=True)
    assert resumed.status == "completed" and resumed.epochs_completed == 2
    assert (folder / rf.MARKER).is_file()


def test_a_run_folder_of_a_newer_version_is_refused(tmp_path, small_data):
    folder = tmp_path / "new"
    assert train(tiny_project(), small_data, folder, options=options()).status == "completed"
    (folder / rf.MARKER).write_text('{"format": "cnnstudio-run", "version": 99}')
    resumed = train(tiny_project(), small_data, folder, options=options(epochs=2), resume=True)
    assert resumed.status == "failed" and "newer CNN Studio" in resumed.message


def test_resuming_a_folder_that_is_no_run_is_refused(tmp_path, small_data):
    folder, before = user_folder(tmp_path)
    finished = train(tiny_project(), small_data, folder, options=options(), resume=True)
    assert finished.status == "failed"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# -- exports ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_data) -> Path:
    folder = tmp_path_factory.mktemp("trained") / "run"
    finished = train(new_project("keras-mnist"), small_data, folder,
                     options=TrainOptions(epochs=1, batch_size=64, seed=0))
    assert finished.status == "completed", finished.message
    return folder


def run_files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir()}


def export_cli(capsys, *args: Any) -> tuple[int, str]:
    code = main(["export", *map(str, args)])
    return code, capsys.readouterr().err


def test_export_refuses_a_special_file_even_with_force(special, run_dir, tmp_path):
    before = identity(special)
    with pytest.raises(ExportError, match="not a regular file|it is a folder"):
        export_run(run_dir, "state_dict", special, overwrite=True)
    assert identity(special) == before and temp_files(tmp_path) == []


def test_export_replaces_an_existing_file_only_with_force(run_dir, tmp_path, capsys):
    out = tmp_path / "weights.pt"
    out.write_bytes(b"my own file")
    code, err = export_cli(capsys, run_dir, "--format", "state_dict", "--out", out)
    assert code == 1 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"my own file"
    code, err = export_cli(capsys, run_dir, "--format", "state_dict", "--out", out, "--force")
    assert code == 0, err
    assert set(torch.load(out, weights_only=True)) == set(load_run(run_dir).model.state_dict())


def test_export_refuses_a_read_only_file_even_with_force(run_dir, tmp_path, capsys):
    out = tmp_path / "kept.py"
    out.write_text("# mine\n")
    out.chmod(0o444)
    code, err = export_cli(capsys, run_dir, "--format", "python", "--out", out, "--force")
    assert code == 1 and "read-only" in err
    assert out.read_text() == "# mine\n" and temp_files(tmp_path) == []


def test_export_refuses_any_path_inside_the_run_folder(run_dir, tmp_path, capsys):
    before = run_files(run_dir)
    alias = tmp_path / "alias"
    alias.symlink_to(run_dir, target_is_directory=True)
    sneaky = tmp_path / "sneaky.onnx"
    sneaky.symlink_to(run_dir / "model.onnx")  # a link to a new file inside the run
    for out in (run_dir / rf.PROJECT, run_dir / "model.onnx", alias / rf.MODEL, sneaky):
        code, err = export_cli(capsys, run_dir, "--format", "onnx", "--out", out, "--force")
        assert code == 1 and "inside the run folder" in err, (out, err)
    assert run_files(run_dir) == before


def full_disk(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def write_half_then_fill_the_disk(data: Any, path: Any, *args: Any, **kwargs: Any) -> None:
    Path(path).write_bytes(b"half a file")
    full_disk()


@pytest.mark.parametrize("fmt, target, replacement", [
    ("state_dict", "torch.save", write_half_then_fill_the_disk),
    ("onnx", "onnx.save", lambda proto, path: write_half_then_fill_the_disk(None, path)),
    ("python", "pathlib.Path.write_text", full_disk),
])
def test_a_full_disk_during_an_export_is_a_plain_message(run_dir, tmp_path, monkeypatch, fmt,
                                                         target, replacement):
    out = tmp_path / f"previous.{fmt}"
    out.write_bytes(b"previous export")
    monkeypatch.setattr(target, replacement)
    with pytest.raises(ExportError) as caught:
        export_run(run_dir, fmt, out, overwrite=True)
    monkeypatch.undo()
    assert "the disk is full: " in str(caught.value) and f"MB needed at {out}" in str(caught.value)
    assert out.read_bytes() == b"previous export" and temp_files(tmp_path) == []


def test_torchscript_is_not_started_on_a_disk_without_room(run_dir, tmp_path, monkeypatch):
    """torch.jit.save aborts the whole process (SIGABRT) when the disk fills up half-way, so a
    disk with less room than the weights need is refused before it writes anything."""
    weights = sum(t.numel() * t.element_size()
                  for t in load_run(run_dir).model.state_dict().values())
    monkeypatch.setattr(files, "LARGE_FILE_BYTES", 1)  # this small network counts as large
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: real(path)._replace(free=weights // 2))
    monkeypatch.setattr(torch.jit, "save", lambda *a, **k: pytest.fail("torch.jit.save ran"))
    out = tmp_path / "model.ts"
    with pytest.raises(ExportError, match=r"the disk is full: \d+\.\d MB needed at "
                                          r".*model\.ts \(\d+\.\d MB free\)"):
        export_run(run_dir, "torchscript", out)
    assert not out.exists() and temp_files(tmp_path) == []


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    folder.save_tensors(rf.CHECKPOINT, {"epoch": torch.tensor(1)})
    before = (tmp_path / rf.CHECKPOINT).read_bytes()
    monkeypatch.setattr(torch, "save", write_half_then_fill_the_disk)
    with pytest.raises(RunFolderError, match=r"the disk is full: \d+\.\d MB needed at "):
        folder.save_tensors(rf.CHECKPOINT, {"epoch": torch.tensor(2)})
    assert (tmp_path / rf.CHECKPOINT).read_bytes() == before and temp_files(tmp_path) == []


def test_a_full_disk_while_saving_a_project_says_how_much_room_it_needed(tmp_path, monkeypatch):
    path = tmp_path / "net.cnnproj"
    save_project(new_project("lenet5"), path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ProjectError, match=rf"the disk is full: 0\.1 MB needed at {path}"):
        save_project(new_project("vgg11"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and temp_files(tmp_path) == []


class _CodeInPickle:
    """Unpickling this runs code: it touches `path` (harmless proof that it ran)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_weights_holding_code_are_refused_and_the_code_never_runs(run_dir, tmp_path):
    run = tmp_path / "copied-run"
    shutil.copytree(run_dir, run)
    proof = tmp_path / "code-ran"
    torch.save({"weights": _CodeInPickle(proof)}, run / rf.MODEL)
    torch.save({"model": _CodeInPickle(proof)}, run / rf.CHECKPOINT)
    with pytest.raises(ExportError, match="model.pt"):
        load_run(run)
    with pytest.raises(RunFolderError, match="checkpoint.pt"):
        RunFolder(run).load_tensors(rf.CHECKPOINT)
    assert not proof.exists()
