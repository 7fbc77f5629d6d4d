"""The run folder: everything a training run leaves behind, written atomically.

    project.cnnproj   the project as it was trained
    data.json         dataset name, classes, per-channel mean/std, input shape, counts, notes
    model.pt          the model's state dict (load with torch.load(weights_only=True))
    checkpoint.pt     model + optimiser + schedule + epoch (+ float16 loss scale), to resume
    metrics.jsonl     one JSON object per epoch
    final.json        how the run ended, on which device, in which precision
                      ({"requested": "auto", "resolved": "bfloat16"}: train/precision.py)
    .cnnstudio-run    the marker: {"format": "cnnstudio-run", "version": 1}; a folder without
                      it is a run folder only in the older layout (project.cnnproj and
                      data.json with checkpoint.pt, final.json or metrics.jsonl)
    .cnnstudio-run.lock  while a run writes the folder: its process id (core/locks.py)
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from cnnstudio.core.files import FULL_ERRNOS, FileWriteError, disk_full_error, staged_write
from cnnstudio.core.locks import FolderLock, LockHeld
from cnnstudio.nn.torch_files import torch_file_problem
from cnnstudio.train.data import DatasetError, DatasetSpec, parse_spec
from cnnstudio.core.project import Project, ProjectError, load_project, save_project

PROJECT = "project.cnnproj"
DATA = "data.json"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
FINAL = "final.json"
MARKER = ".cnnstudio-run"
LOCK = ".cnnstudio-run.lock"
MARKER_FORMAT = "cnnstudio-run"
MARKER_VERSION = 1
# files only a training run writes: with project.cnnproj and data.json, they mark a run folder
# of the versions before the marker
RUN_ONLY = (CHECKPOINT, FINAL, METRICS)
LISTED_ENTRIES = 4


_DENIED = "permission denied; make it writable or choose another folder (--out)"
_UNWRITABLE = {errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
               errno.EACCES: _DENIED, errno.EPERM: _DENIED}


def _unwritable_reason(err: OSError, folder: Path) -> str:
    """Why a write in `folder` failed and what to do, for the run folder's messages."""
    if err.errno in FULL_ERRNOS:
        return str(disk_full_error(folder, 0))
    return _UNWRITABLE.get(err.errno or -1,
                           f"{err.strerror or err}; choose a folder you can write to (--out)")


class RunFolderError(Exception):
    """A run folder that cannot be written or read; the message names the file."""


def _atomic_write(path: Path, write: Callable[[Path], None], needed_bytes: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged_write(path, needed_bytes=needed_bytes) as temp:
        write(Path(temp))


def recorded_spec(spec: str) -> str:
    """A dataset spec as a run records it: '~' expanded and every path absolute, so that
    resuming from another working folder finds the same files. DatasetError if malformed."""
    parsed = parse_spec(spec)
    return str(DatasetSpec(parsed.kind, tuple(Path(os.path.abspath(p)) for p in parsed.paths)))


def same_dataset(a: str, b: str) -> bool:
    try:
        return recorded_spec(a) == recorded_spec(b)
    except DatasetError:
        return a.strip() == b.strip()


def _out_of_space(path: Path, needed: int) -> bool:
    """After a failed write of `path`: does the disk lack room for what was still to come?
    (PyTorch reports a full disk only as "unexpected pos 576 vs 534".)"""
    try:
        written = path.stat().st_size if path.exists() else 0
        return shutil.disk_usage(path.parent).free < max(needed - written, 1)
    except OSError:
        return False


def _write_probe(folder: Path) -> None:
    """Create, write and remove a small file in `folder`: what a checkpoint will need."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=".cnnstudio-write-test.")
    try:
        os.write(handle, b"probe")
    finally:
        os.close(handle)
        os.unlink(name)


def _tensor_bytes(data: Any) -> int:
    """The bytes of the tensors in a (nested) state dict: about the size of its file."""
    if isinstance(data, torch.Tensor):
        return data.numel() * data.element_size()
    if isinstance(data, dict):
        return sum(_tensor_bytes(v) for v in data.values())
    if isinstance(data, (list, tuple)):
        return sum(_tensor_bytes(v) for v in data)
    return 0


class RunFolder:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def lock(self) -> FolderLock:
        """Take the folder (created if missing) for this process for the whole run; a
        RunFolderError naming the process id when another run holds it. See core/locks.py."""
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} is a file, not a folder; choose a folder for the "
                                 "run (--out)")
        lock = FolderLock(self.path, LOCK)
        try:
            return lock.acquire()
        except LockHeld as err:
            who = f"process {err.pid}" + (", this program" if err.pid == os.getpid() else "")
            raise RunFolderError(
                f"{self.path} is in use by another training run ({who}); wait for it to finish "
                "or stop it, or choose another folder"
            ) from None
        except OSError as err:  # the folder could not be created, or the lock file in it
            action = "write in" if self.path.is_dir() else "create"
            raise RunFolderError(f"cannot {action} the run folder {self.path}: "
                                 f"{_unwritable_reason(err, self.path)}") from None

    def unlock(self, lock: FolderLock) -> None:
        """Release the lock; a folder the lock created goes again if the run left nothing but
        its marker there (a run refused or failed at set-up)."""
        if lock.created_folder and self._entries() <= {MARKER}:
            self.file(MARKER).unlink(missing_ok=True)
        lock.release()

    def _entries(self) -> set[str]:
        """What the folder holds, besides this run's lock."""
        try:
            return {name for name in os.listdir(self.path)
                    if name != LOCK and not name.startswith(f"{LOCK}.stale-")}
        except OSError:
            return set()

    def is_run_folder(self) -> bool:
        """Written by the training engine: the marker, or the layout of older versions."""
        if self.file(MARKER).is_file():
            return True
        return (self.file(PROJECT).is_file() and self.file(DATA).is_file()
                and any(self.file(name).is_file() for name in RUN_ONLY))

    def prepare(self, fresh: bool, create: bool = True) -> None:
        """Check the folder before a run writes it (`create` off: a process that only reads).

        A fresh run takes an empty or new folder, or a run folder that holds no finished or
        resumable run; any other folder is refused, so a user's own files are never
        overwritten. Resuming takes a run folder only; a folder of the older layout gets its
        marker then.
        """
        try:
            if create:
                self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"cannot create the run folder {self.path}: "
                                 f"{_unwritable_reason(err, self.path)}") from None
        if create:
            self.check_writable()
        self._check_marker_version()
        is_run = self.is_run_folder()
        if fresh:
            entries = self._entries() if create else set()  # the writer decides (rank 0)
            if entries and not is_run:
                listed = ", ".join(sorted(entries)[:LISTED_ENTRIES])
                more = ", ..." if len(entries) > LISTED_ENTRIES else ""
                raise RunFolderError(
                    f"{self.path} is not empty ({listed}{more}) and is not a training run "
                    "folder: a run would overwrite the files there; pick an empty or new "
                    "folder for the run (--out)"
                )
            if self.file(CHECKPOINT).exists() or self.file(FINAL).exists():
                raise RunFolderError(
                    f"{self.path} already holds a training run; choose another --out folder, "
                    "or add --resume to continue it"
                )
        elif not is_run:
            raise RunFolderError(f"{self.path} is not a training run folder (it has no "
                                 f"{MARKER} marker or run files): nothing to resume there")
        if create and not self.file(MARKER).is_file():
            self.write_json(MARKER, {"format": MARKER_FORMAT, "version": MARKER_VERSION})

    def check_writable(self) -> None:
        """A real write into the folder before training, so that a read-only folder or disk is
        found now rather than at the first checkpoint, an epoch later. A real write, as the
        mode bits say nothing when running as root."""
        try:
            _write_probe(self.path)
        except OSError as err:
            raise RunFolderError(f"cannot write in the run folder {self.path}: "
                                 f"{_unwritable_reason(err, self.path)}") from None

    def _check_marker_version(self) -> None:
        try:
            marker = json.loads(self.file(MARKER).read_text(encoding="utf-8"))
            version = int(marker.get("version", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            return  # no marker, or a damaged one: the files themselves are checked as read
        if version > MARKER_VERSION:
            raise RunFolderError(f"{self.path} was written by a newer CNN Studio (run folder "
                                 f"version {version}); update CNN Studio to use it")

    def write_json(self, name: str, data: Any) -> None:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        self._guard(name, lambda: _atomic_write(self.file(name),
                                                lambda p: p.write_text(text, encoding="utf-8")))

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunFolderError(f"{self.file(name)} is missing: is {self.path} a run folder?") from None
        except (OSError, ValueError) as err:
            raise RunFolderError(f"cannot read {self.file(name)}: {err}") from None

    def append_metrics(self, record: dict[str, Any]) -> None:
        def write() -> None:
            with self.file(METRICS).open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(record) + "\n")

        self._guard(METRICS, write)

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.file(METRICS)
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
        return records

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the first `epochs` records (resuming after a crash mid-write)."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epochs]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        self._guard(METRICS, lambda: _atomic_write(self.file(METRICS),
                                                   lambda p: p.write_text(text, encoding="utf-8")))

    def save_tensors(self, name: str, data: Any) -> None:
        needed = _tensor_bytes(data) + 64 * 1024  # the archive's own records

        def write(path: Path) -> None:
            try:
                torch.save(data, path)
            except RuntimeError as err:  # how torch's archive writer reports a failed write
                if _out_of_space(path, needed):  # "[enforce fail at inline_container.cc…]"
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
                raise OSError(errno.EIO, f"PyTorch could not write the file ({err})") from None

        self._guard(name, lambda: _atomic_write(self.file(name), write, needed))

    def load_tensors(self, name: str) -> Any:
        path = self.file(name)
        if not path.exists():
            raise RunFolderError(f"{path} is missing: is {self.path} a run folder?")
        try:
            with warnings.catch_warnings():  # torch's notes on old pickle protocols
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many kinds for a damaged file
            raise RunFolderError(f"cannot read {path}: {torch_file_problem(err)}") from None

    def save_project(self, project: Project) -> None:
        try:
            save_project(project, self.file(PROJECT))
        except ProjectError as err:
            raise RunFolderError(str(err)) from None

    def load_project(self) -> Project:
        try:
            return load_project(self.file(PROJECT))
        except ProjectError as err:
            raise RunFolderError(str(err)) from None

    def _guard(self, name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except FileWriteError as err:
            raise RunFolderError(f"cannot write {self.file(name)}: {err}") from None
        except OSError as err:
            if err.errno in FULL_ERRNOS:
                raise RunFolderError(f"cannot write {self.file(name)}: "
                                     f"{disk_full_error(self.file(name), 0)}") from None
            raise RunFolderError(
                f"cannot write {self.file(name)}: {err.strerror or err}; check the disk space "
                "and permissions of the run folder"
            ) from None
