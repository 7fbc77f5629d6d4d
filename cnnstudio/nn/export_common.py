"""What every export shares: the run as loaded, the report, the normalising wrapper, the
destination rules and the parity check (nn/export.py holds the formats, nn/onnx_export.py ONNX).

Each export is checked before it is kept: the file is written under a temporary name in the
destination folder, reloaded, run against the PyTorch model on sample images, and moved into
place only when the outputs agree. Every failure becomes an ExportError whose message names the
file and says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from cnnstudio import __version__
from cnnstudio.core.files import FileWriteError, output_refusal, staged_write
from cnnstudio.core.outputs import BINARY, LOGITS, PROBABILITIES
from cnnstudio.core.project import Project
from cnnstudio.nn.build import GraphModel
from cnnstudio.nn.probabilities import class_probabilities

PROJECT_FILE = "project.cnnproj"
DATA_FILE = "data.json"
MODEL_FILE = "model.pt"
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
INPUT_RANGE = "0..1"  # what every exported model (the state dict aside) takes as pixel values
CHECK_BATCHES = (1, 7)
BENCHMARK_RUNS = 50  # runs of each runtime at batch 1 for the latency figures (0: none)
# the parity check compares log-probabilities: an absolute tolerance on probabilities of 1e-3
# says little; the floor keeps log(0) finite (e^-69, far below any float32 rounding of note)
LOG_FLOOR = 1e-30
SAMPLE_COUNT = 16

StrPath = str | os.PathLike


class ExportError(Exception):
    """An export that cannot be done; the message names the file and what to do."""


_F = TypeVar("_F", bound=Callable[..., Any])


def guarded(action: str) -> Callable[[_F], _F]:
    """Turn an unforeseen exception into an ExportError (the cause stays chained for a report)."""

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except ExportError:
                raise
            except MemoryError:
                raise ExportError(f"{action}: out of memory; close other programs and try "
                                  "again") from None
            except Exception as err:
                raise ExportError(f"{action} failed unexpectedly ({type(err).__name__}: "
                                  f"{_first_line(err)}); please report this with the run "
                                  "folder") from err

        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass
class LoadedRun:
    """A training run folder, read and checked: the model is in eval mode with its weights.

    `run_dir` is None for a project exported without a run (project_run)."""

    run_dir: Path | None
    project: Project
    model: GraphModel
    classes: list[str]
    mean: list[float]  # one value per input channel
    std: list[float]
    input_shape: tuple[int, int, int]
    dataset: str = ""
    output_kind: str = LOGITS  # what the network's main output gives (core.outputs)


@dataclass
class ExportReport:
    path: Path
    format: str
    size_bytes: int
    seconds: float
    max_abs_diff: float | None = None  # largest |log p exported - log p PyTorch| (all batches)
    batch_sizes: tuple[int, ...] = ()
    ort_ms: float | None = None  # median latency at batch 1 (ONNX Runtime, then PyTorch)
    torch_ms: float | None = None
    input_note: str = ""  # what the exported model takes and gives (pixel range above all)
    notes: tuple[str, ...] = ()  # what else a user should know (a fall-back exporter)
    tolerance: float | None = None  # the limit max_abs_diff was checked against

    def summary(self) -> str:
        """A few lines for the command line."""
        size = f"{self.size_bytes / 1e6:.2f} MB"
        lines = [f"wrote {self.path} ({self.format}, {size}) in {self.seconds:.1f} s"]
        if self.input_note:
            lines.append(self.input_note)
        if self.max_abs_diff is not None:
            batches = ", ".join(map(str, self.batch_sizes))
            lines.append(f"checked against PyTorch at batch sizes {batches}: "
                         f"max abs difference of log-probabilities {self.max_abs_diff:.2e}")
        if self.ort_ms is not None and self.torch_ms is not None:
            lines.append(f"latency at batch 1: ONNX Runtime {self.ort_ms:.3f} ms, "
                         f"PyTorch {self.torch_ms:.3f} ms")
        return "\n".join([*lines, *self.notes])


class NormalizedModel(nn.Module):
    """Images in [0, 1] -> class probabilities: normalise, run the network, then softmax unless
    the network ends in one (`kind`, see core.outputs: softmax is applied exactly once)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float],
                 kind: str = LOGITS) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        self.register_buffer("mean", torch.tensor([float(v) for v in mean]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(v) for v in std]).view(1, -1, 1, 1))

    @classmethod
    def for_run(cls, run: LoadedRun) -> NormalizedModel:
        return cls(run.model, run.mean, run.std, run.output_kind).eval()

    def forward(self, image: Tensor) -> Tensor:
        return class_probabilities(self.model((image - self.mean) / self.std), self.kind)


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(v) for v in shape)


# -- writing -------------------------------------------------------------------------------------


def checked_destination(out_path: StrPath, run: LoadedRun, overwrite: bool) -> Path:
    """The output path, refused early when it cannot or must not be written.

    Refused whatever `overwrite` says: a special file or a folder (core/files.py), a read-only
    file (by its mode bits: root may write anything) and any path inside the run folder, whose
    files must stay as training wrote them. An existing file is replaced only with `overwrite`.
    """
    target = Path(out_path).expanduser()
    refusal = output_refusal(target, overwrite=overwrite, protected=run.run_dir)
    if refusal is not None:
        raise ExportError(refusal)
    return target


def _weights_bytes(run: LoadedRun) -> int:
    """About the size of a file holding the run's weights (ONNX, TorchScript, state dict)."""
    return sum(t.numel() * t.element_size() for t in run.model.state_dict().values()) + (1 << 16)


@contextlib.contextmanager
def staged(target: Path, needed_bytes: int = 0) -> Iterator[Path]:
    """A temporary file beside the target, moved onto it only if the block succeeds; removed
    on every failure path. A disk without room for `needed_bytes` is refused before writing
    (TorchScript's writer aborts the whole process on a full disk)."""
    try:
        with staged_write(target, needed_bytes=needed_bytes, mode=0o644) as name:
            yield Path(name)
    except FileWriteError as err:
        raise ExportError(f"cannot write '{target}': {err}") from None
    except OSError as err:
        raise ExportError(f"cannot write '{target}': {err.strerror or err}; check the free "
                          "disk space and the permissions of the folder") from None


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence the deprecation and tracer warnings of the TorchScript machinery.

    torch.jit and the TorchScript-based ONNX exporter warn on every call that they are
    deprecated, and tracing warns about branches it freezes (LocalResponseNorm's empty-input
    check). Every export is checked against PyTorch afterwards, so those warnings tell the user
    nothing; other warnings pass.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        for pattern in (r".*torch\.jit\.\w+` is deprecated", r".*legacy TorchScript-based ONNX",
                        r"The feature will be removed", r"Constant folding"):
            warnings.filterwarnings("ignore", message=pattern)
        yield


def _sample_batches(run: LoadedRun, samples: Tensor | None) -> list[Tensor]:
    """The batches to check: the samples (or 16 seeded random images), batches of 1 and 7."""
    if samples is None:
        generator = torch.Generator().manual_seed(0)
        samples = torch.rand(SAMPLE_COUNT, *run.input_shape, generator=generator)
    elif not isinstance(samples, Tensor) or tuple(samples.shape[1:]) != run.input_shape \
            or samples.dim() != 4 or samples.shape[0] == 0:
        got = tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
        shape = ", ".join(map(str, run.input_shape))
        raise ExportError(f"sample images must have shape (N, {shape}) with pixel values in "
                          f"[0, 1], got {got}")
    samples = samples.detach().to("cpu", torch.float32)
    extra = torch.rand(max(CHECK_BATCHES), *run.input_shape,
                       generator=torch.Generator().manual_seed(1))
    pool = torch.cat([samples, extra])
    return [samples] + [pool[:n] for n in CHECK_BATCHES if n != len(samples)]


def _torch_outputs(model: nn.Module, batch: Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(batch).numpy()


def _references(model: nn.Module, batches: Sequence[Tensor]) -> list[np.ndarray]:
    return [_torch_outputs(model, batch) for batch in batches]


def _compare(path: Path, fmt: str, batches: Sequence[Tensor], expected: Sequence[np.ndarray],
             exported: Callable[[Tensor], np.ndarray], tolerance: float) -> float:
    """Max |log exported - log expected| (log-probabilities) over the batches; ExportError
    above the tolerance."""
    worst = 0.0
    for batch, want in zip(batches, expected, strict=True):
        try:
            got = np.asarray(exported(batch))
        except Exception as err:
            raise ExportError(f"the exported {fmt} model fails at batch size {len(batch)} "
                              f"({type(err).__name__}: {_first_line(err)}); please report this "
                              "network") from None
        if got.shape != want.shape:
            raise ExportError(f"the exported {fmt} model returns shape {got.shape} for a batch "
                              f"of {len(batch)}, PyTorch {want.shape}; please report this")
        diff = float(np.max(np.abs(_log(got) - _log(want)))) if got.size else 0.0
        if not diff <= tolerance:  # NaN fails too
            raise ExportError(
                f"the exported {fmt} model disagrees with PyTorch: its log-probabilities differ "
                f"by up to {diff:.3g} (tolerance {tolerance:g}) at batch size {len(batch)}, so "
                f"'{path.name}' was not written; please report this network"
            )
        worst = max(worst, diff)
    return worst


def _log(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probabilities.astype(np.float64), LOG_FLOOR))


def median_ms(run_once: Callable[[], object], runs: int) -> float | None:
    if runs <= 0:
        return None
    for _ in range(min(3, runs)):
        run_once()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run_once()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


_GIVES = {LOGITS: "class scores (logits; softmax gives the class probabilities)",
          PROBABILITIES: "class probabilities (the network ends in a softmax)",
          BINARY: "the probability of the second class (one sigmoid unit)"}


def input_note(run: LoadedRun, fmt: str) -> str:
    """What an export of this run takes and gives, above all the pixel range: a model fed
    0..255 pixels instead of 0..1 still runs, and silently loses its accuracy."""
    shape = ", ".join(map(str, run.input_shape))
    if fmt == "state_dict":
        mean, std = (", ".join(f"{v:.4g}" for v in values) for values in (run.mean, run.std))
        return (f"The weights alone, for the network of {PROJECT_FILE}: it takes normalised "
                f"images (N, {shape}), (pixel / 255 - mean) / std with the mean ({mean}) and "
                f"std ({std}) of {DATA_FILE}, and gives {_GIVES[run.output_kind]}.")
    takes = "model(images) and predict(model, images) take" if fmt == "python" else "It takes"
    gives = "predict() returns" if fmt == "python" else "It returns"
    return (f"{takes} float32 images (N, {shape}) with pixel values in [0, 1]: divide 8-bit "
            "pixels by 255 (0..255 input gives wrong predictions without an error); the "
            f"normalisation is inside the model. {gives} class probabilities (each row sums "
            "to 1).")


def _metadata(run: LoadedRun) -> dict[str, Any]:
    """What a user of the exported file needs to know; ONNX stores each value as text."""
    return {
        "classes": run.classes,
        "input_shape": list(run.input_shape),
        "input_range": INPUT_RANGE,
        "input_note": input_note(run, "onnx"),
        "mean": run.mean,
        "std": run.std,
        "producer": f"CNN Studio {__version__}",
        "name": run.project.name,
        "dataset": run.dataset,
    }


def main_path_model(model: GraphModel) -> GraphModel:
    """The model cut to the blocks its main output needs (GraphModel.main_path), sharing their
    modules: what a deployment export holds, without the auxiliary heads of training."""
    kept = model.main_path
    return GraphModel({k: model.blocks[k] for k in kept},
                      {k: model.sources[k] for k in kept}, model.input_id,
                      model.main_output_id, [model.main_output_id], {},
                      model.output_kind).eval()


@dataclass
class DeploymentExport:
    """What each deployment export (ONNX, ExportedProgram, TorchScript) starts from."""

    started: float  # time.perf_counter() when the export began, for the report
    target: Path  # the checked destination
    reference: NormalizedModel  # the whole model: the outputs the written file must give
    deployed: NormalizedModel  # the main output's blocks only: what the file holds
    batches: list[Tensor]  # the sample batches it is checked on


def _deployment_export(run: LoadedRun, out_path: StrPath, samples: Tensor | None,
                       overwrite: bool) -> DeploymentExport:
    started = time.perf_counter()
    target = checked_destination(out_path, run, overwrite)
    deployed = NormalizedModel(main_path_model(run.model), run.mean, run.std,
                               run.output_kind).eval()
    return DeploymentExport(started, target, NormalizedModel.for_run(run), deployed,
                            _sample_batches(run, samples))


def _report(target: Path, fmt: str, started: float, diff: float | None = None,
            batches: Sequence[Tensor] = (), ort_ms: float | None = None,
            torch_ms: float | None = None, *, run: LoadedRun,
            tolerance: float | None = None) -> ExportReport:
    return ExportReport(target, fmt, target.stat().st_size, time.perf_counter() - started, diff,
                        tuple(len(b) for b in batches), ort_ms, torch_ms, input_note(run, fmt),
                        tolerance=tolerance if diff is not None else None)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
