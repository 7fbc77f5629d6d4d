"""The run folder: everything a training run leaves behind, written atomically.

    project.cnnproj   the project as it was trained
    data.json         dataset name, classes, per-channel mean/std, input shape, counts, notes
    model.pt          the model's state dict (load with torch.load(weights_only=True))
    checkpoint.pt     model + optimiser + schedule + epoch, to resume a stopped run
    metrics.jsonl     one JSON object per epoch
    final.json        how the run ended
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from cnnstudio.core.project import Project, ProjectError, load_project, save_project

PROJECT = "project.cnnproj"
DATA = "data.json"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
FINAL = "final.json"


class RunFolderError(Exception):
    """A run folder that cannot be written or read; the message names the file."""


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temp))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class RunFolder:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def prepare(self, fresh: bool, create: bool = True) -> None:
        """Create the folder (unless `create` is off: a process that only reads it); a fresh
        run refuses a folder that already holds a run."""
        try:
            if create:
                self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"cannot create the run folder {self.path}: {err.strerror}") from None
        if fresh and (self.file(CHECKPOINT).exists() or self.file(FINAL).exists()):
            raise RunFolderError(
                f"{self.path} already holds a training run; choose another --out folder, "
                "or add --resume to continue it"
            )

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
        self._guard(name, lambda: _atomic_write(self.file(name), lambda p: torch.save(data, p)))

    def load_tensors(self, name: str) -> Any:
        path = self.file(name)
        if not path.exists():
            raise RunFolderError(f"{path} is missing: is {self.path} a run folder?")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many kinds for a damaged file
            raise RunFolderError(f"cannot read {path}: the file is damaged ({err})") from None

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
        except OSError as err:
            raise RunFolderError(
                f"cannot write {self.file(name)}: {err.strerror or err}; check the disk space "
                "and permissions of the run folder"
            ) from None
