"""Export a trained run: ONNX, TorchScript, a standalone Python file or the plain state dict.

Every exported model (the state dict aside) takes images as a person has them, pixel values in
[0, 1] of shape (N, C, H, W), and normalises them itself, so a user never has to know the
training mean and standard deviation. Each export is checked before it is kept: the file is
written under a temporary name in the destination folder, reloaded, run against the PyTorch model
on sample images, and moved into place only when the outputs agree. Every failure becomes an
ExportError whose message names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import statistics
import time
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from cnnstudio import __version__
from cnnstudio.core.adapt import class_mismatches
from cnnstudio.core.analysis import analyze
from cnnstudio.core.files import FileWriteError, is_read_only, replace_refusal, staged_write
from cnnstudio.core.outputs import BINARY, LOGITS, PROBABILITIES, output_kind
from cnnstudio.core.project import Project, ProjectError, load_project
from cnnstudio.nn.build import GraphModel, ModelBuildError, build_model
from cnnstudio.nn.codegen import class_name_for, generate_python
from cnnstudio.nn.probabilities import class_probabilities
from cnnstudio.nn.torch_files import holds_python_objects, torch_file_problem

PROJECT_FILE = "project.cnnproj"
DATA_FILE = "data.json"
MODEL_FILE = "model.pt"
FORMATS = ("onnx", "torchscript", "python", "state_dict")
OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
INPUT_RANGE = "0..1"  # what every exported model (the state dict aside) takes as pixel values
CHECK_BATCHES = (1, 7)
BENCHMARK_RUNS = 50  # runs of each runtime at batch 1 for the latency figures (0: none)
# the parity check compares log-probabilities: an absolute tolerance on probabilities of 1e-3
# says little; the floor keeps log(0) finite (e^-69, far below any float32 rounding of note)
LOG_FLOOR = 1e-30
SAMPLE_COUNT = 16
LISTED_KEYS = 4

StrPath = str | os.PathLike


class ExportError(Exception):
    """An export that cannot be done; the message names the file and what to do."""


_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(action: str) -> Callable[[_F], _F]:
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
        return "\n".join(lines)


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


# -- reading a run folder ------------------------------------------------------------------------


@_guarded("reading the run folder")
def load_run(run_dir: StrPath) -> LoadedRun:
    """Read project.cnnproj, data.json and model.pt of a run folder; raises ExportError."""
    folder = Path(run_dir)
    if not folder.is_dir():
        why = "it is a file" if folder.exists() else "it does not exist"
        raise ExportError(f"cannot export '{folder}': {why}; give the folder of a training run "
                          f"(it holds {PROJECT_FILE}, {DATA_FILE} and {MODEL_FILE})")
    try:
        project = load_project(folder / PROJECT_FILE)
    except ProjectError as err:
        raise ExportError(f"{err}\nThe run folder '{folder}' is incomplete or damaged: "
                          "export another run, or train the project again.") from None
    data = _read_data(folder / DATA_FILE)
    try:
        model = build_model(project.graph)
    except ModelBuildError as err:
        raise ExportError(f"{folder / PROJECT_FILE}: {err}") from None
    input_shape = tuple(int(v) for v in data["input_shape"])
    analysis = analyze(project.graph)
    network_input = analysis.blocks[model.input_id].output_shape
    if input_shape != network_input:
        raise ExportError(
            f"{folder / DATA_FILE} says the images are {_shape(input_shape)} but the network in "
            f"{PROJECT_FILE} takes {_shape(network_input)}: the files come from different runs; "
            "train the project again"
        )
    channels = input_shape[0]
    mean, std = (_per_channel(folder / DATA_FILE, name, data[name], channels)
                 for name in ("mean", "std"))
    if any(v <= 0 for v in std):
        raise ExportError(f"{folder / DATA_FILE}: 'std' must be positive, got {std}; "
                          "train the project again to recreate it")
    state = _read_weights(folder / MODEL_FILE)
    _check_weights(model, state, folder)
    model.load_state_dict(state)
    model.eval()
    mismatches = [m for m in class_mismatches(project.graph, len(data["classes"]),
                                              str(data.get("spec") or ""), analysis)
                  if not m.auxiliary]  # the exported model gives the main output only
    if mismatches:
        wrong = mismatches[0]
        raise ExportError(
            f"{folder / DATA_FILE} lists {wrong.classes} classes but the network gives "
            f"{wrong.units} scores: in {PROJECT_FILE}, {wrong.message}, and train the project "
            "again (training refuses such a network, so these files were edited or come from "
            "different runs)"
        )
    return LoadedRun(folder, project, model, list(data["classes"]), mean, std,
                     input_shape,  # type: ignore[arg-type]
                     str(data.get("name") or data.get("spec") or ""),
                     output_kind(project.graph, model.main_output_id, analysis).kind)


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(v) for v in shape)


def _read_data(path: Path) -> dict[str, Any]:
    fix = "train the project again to recreate it"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path} is missing: is '{path.parent}' a finished training run? "
                          f"If it is, {fix}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ExportError(f"cannot read {path}: {err}; {fix}") from None
    problems = []
    if not isinstance(data, dict):
        raise ExportError(f"{path} is damaged: expected a JSON object; {fix}")
    classes = data.get("classes")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        problems.append("'classes' must be a non-empty list of names")
    shape = data.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        problems.append("'input_shape' must be three positive integers [C, H, W]")
    for name in ("mean", "std"):
        values = data.get(name)
        if not (isinstance(values, list) and values and all(_is_number(v) for v in values)):
            problems.append(f"'{name}' must be a non-empty list of numbers")
    if problems:
        raise ExportError(f"{path} is damaged: {'; '.join(problems)}; {fix}")
    return data


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _per_channel(path: Path, name: str, values: list[float], channels: int) -> list[float]:
    if len(values) == 1:
        return [float(values[0])] * channels
    if len(values) != channels:
        raise ExportError(f"{path}: '{name}' has {len(values)} values for {channels} channels; "
                          "train the project again to recreate it")
    return [float(v) for v in values]


def _read_weights(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise ExportError(f"{path} is missing: the run has no trained weights yet; let the "
                          "training finish, then export again")
    damaged = (f"{path} is damaged and cannot be read as PyTorch weights; train the project "
               "again (or export another run)")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises many kinds for a damaged or foreign file
        if holds_python_objects(err):  # never PyTorch's advice to load it unsafely
            raise ExportError(f"cannot read {path}: {torch_file_problem(err)}; train the "
                              "project again (or export another run)") from None
        raise ExportError(damaged) from None
    if not (isinstance(state, Mapping)
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items())):
        raise ExportError(f"{damaged}: it holds no state dict of tensors")
    return dict(state)


def _check_weights(model: GraphModel, state: Mapping[str, Tensor], folder: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k}: {_shape(state[k].shape)} in the file, {_shape(v.shape)} in the network"
                for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    for keys, what in ((missing, "the network needs but the file lacks"),
                       (unexpected, "the file holds but the network has no place for"),
                       (reshaped, "have another shape")):
        if keys:
            listed = ", ".join(keys[:LISTED_KEYS]) + (", ..." if len(keys) > LISTED_KEYS else "")
            problems.append(f"{len(keys)} {'tensor' if len(keys) == 1 else 'tensors'} {what} "
                            f"({listed})")
    if problems:
        raise ExportError(
            f"{folder / MODEL_FILE} does not match the network in {folder / PROJECT_FILE}: "
            + "; ".join(problems) + ". The weights come from another network: export the run "
            "folder they were trained in, or train this project again"
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ExportError(f"{folder / MODEL_FILE} holds NaN or infinite weights ({bad[0]}): the "
                          "training diverged; train again with a lower learning rate")


# -- writing -------------------------------------------------------------------------------------


def _destination(out_path: StrPath, run: LoadedRun, overwrite: bool) -> Path:
    """The output path, refused early when it cannot or must not be written.

    Refused whatever `overwrite` says: a special file or a folder (core/files.py), a read-only
    file (by its mode bits: root may write anything) and any path inside the run folder, whose
    files must stay as training wrote them. An existing file is replaced only with `overwrite`.
    """
    target = Path(out_path).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ExportError(f"cannot write '{target}': it is a folder; give a file name")
    refusal = replace_refusal(target)
    if refusal is not None:
        raise ExportError(f"cannot write '{target}': {refusal}")
    if not parent.is_dir():
        why = "is a file" if parent.exists() else "does not exist"
        raise ExportError(f"cannot write '{target}': the folder '{parent}' {why}; create it "
                          "or choose another output file")
    run_folder = run.run_dir.resolve() if run.run_dir is not None else None
    if run_folder is not None and (target.resolve() == run_folder
                                   or run_folder in target.resolve().parents):
        raise ExportError(f"cannot write '{target}': it is inside the run folder '{run.run_dir}', "
                          "whose files must stay as training wrote them; export to a file "
                          "outside the run folder")
    if is_read_only(target):
        raise ExportError(f"cannot write '{target}': the file is read-only; choose another file "
                          "name (or make the file writable first)")
    if target.exists() and not overwrite:
        raise ExportError(f"'{target}' already exists; choose another file name, or allow "
                          "replacing it (--force on the command line)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write '{target}': permission denied in '{parent}'; choose "
                          "a folder you can write to")
    return target


def _weights_bytes(run: LoadedRun) -> int:
    """About the size of a file holding the run's weights (ONNX, TorchScript, state dict)."""
    return sum(t.numel() * t.element_size() for t in run.model.state_dict().values()) + (1 << 16)


@contextlib.contextmanager
def _staged(target: Path, needed_bytes: int = 0) -> Iterator[Path]:
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


def _median_ms(run_once: Callable[[], object], runs: int) -> float | None:
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


@_guarded("the ONNX export")
def export_onnx(run: LoadedRun, out_path: StrPath, *, samples: Tensor | None = None,
                tolerance: float = 1e-4, benchmark_runs: int = BENCHMARK_RUNS,
                overwrite: bool = False) -> ExportReport:
    """ONNX (opset 17, dynamic batch), checked by onnx.checker and against onnxruntime."""
    import onnx
    import onnxruntime as ort

    started = time.perf_counter()
    target = _destination(out_path, run, overwrite)
    wrapper = NormalizedModel.for_run(run)
    batches = _sample_batches(run, samples)
    with _staged(target, _weights_bytes(run)) as temp:
        try:
            with _quiet_torch(), torch.no_grad():
                torch.onnx.export(
                    wrapper, (batches[0][:2],), str(temp), dynamo=False, opset_version=OPSET,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                )
        except Exception as err:
            raise ExportError(f"PyTorch cannot convert this network to ONNX "
                              f"({type(err).__name__}: {_first_line(err)}); export it as "
                              "TorchScript or Python instead") from None
        proto = onnx.load(str(temp))
        proto.producer_name, proto.producer_version = "CNN Studio", __version__
        proto.doc_string = (f"{run.project.name}: images (N, C, H, W) with pixel values in "
                            "[0, 1] -> class probabilities")
        props = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                 for k, v in _metadata(run).items()}
        props["input_shape"] = ",".join(map(str, run.input_shape))
        onnx.helper.set_model_props(proto, props)
        try:
            onnx.checker.check_model(proto, full_check=True)
        except Exception as err:
            raise ExportError(f"the ONNX model fails onnx.checker ({_first_line(err)}), so "
                              f"'{target.name}' was not written; please report this network") \
                from None
        onnx.save(proto, str(temp))
        # PyTorch runs before onnxruntime starts: the threads of an onnxruntime session spin
        # for a while after each run and, on a machine with few cores, slow PyTorch down.
        expected = _references(wrapper, batches)
        one = batches[0][:1]
        torch_ms = _median_ms(lambda: _torch_outputs(wrapper, one), benchmark_runs)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # from the bytes as written, so that no handle keeps the file open while it moves
        session = ort.InferenceSession(temp.read_bytes(), options,
                                       providers=["CPUExecutionProvider"])

        def run_ort(batch: Tensor) -> np.ndarray:
            return session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0]

        diff = _compare(target, "ONNX", batches, expected, run_ort, tolerance)
        ort_ms = _median_ms(lambda: run_ort(one), benchmark_runs)
    return _report(target, "onnx", started, diff, batches, ort_ms, torch_ms, run=run)


@_guarded("the TorchScript export")
def export_torchscript(run: LoadedRun, out_path: StrPath, samples: Tensor | None = None, *,
                       tolerance: float = 1e-5, overwrite: bool = False) -> ExportReport:
    """A traced TorchScript module (torch.jit.load), with the run's metadata as an extra file.

    Only the blocks of the main output are traced: tracing keeps every submodule of the model it
    records, so auxiliary heads would otherwise travel in the file, unused (GoogLeNet's 6.4 M)."""
    started = time.perf_counter()
    target = _destination(out_path, run, overwrite)
    wrapper = NormalizedModel.for_run(run)
    deployed = NormalizedModel(main_path_model(run.model), run.mean, run.std,
                               run.output_kind).eval()
    batches = _sample_batches(run, samples)
    with _staged(target, _weights_bytes(run)) as temp, _quiet_torch():
        try:
            with torch.no_grad():
                traced = torch.jit.trace(deployed, (batches[0][:2],), check_trace=False)
            extra = {"cnnstudio.json": json.dumps(_metadata(run), ensure_ascii=False)}
            torch.jit.save(traced, str(temp), _extra_files=extra)
            loaded = torch.jit.load(str(temp), map_location="cpu")
        except OSError:
            raise  # a write failure (a full disk): _staged says so
        except Exception as err:
            raise ExportError(f"PyTorch cannot save this network as TorchScript "
                              f"({type(err).__name__}: {_first_line(err)}); export it as ONNX "
                              "or Python instead") from None
        diff = _compare(target, "TorchScript", batches, _references(wrapper, batches),
                        lambda batch: _torch_outputs(loaded, batch), tolerance)
    return _report(target, "torchscript", started, diff, batches, run=run)


def main_path_model(model: GraphModel) -> GraphModel:
    """The model cut to the blocks its main output needs (GraphModel.main_path), sharing their
    modules: what a deployment export holds, without the auxiliary heads of training."""
    kept = model.main_path
    return GraphModel({k: model.blocks[k] for k in kept},
                      {k: model.sources[k] for k in kept}, model.input_id,
                      model.main_output_id, [model.main_output_id], {},
                      model.output_kind).eval()


@_guarded("the state dict export")
def export_state_dict(run: LoadedRun, out_path: StrPath, *,
                      overwrite: bool = False) -> ExportReport:
    """The GraphModel state dict alone (keys blocks.<id>...), loadable with weights_only=True."""
    started = time.perf_counter()
    target = _destination(out_path, run, overwrite)
    state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    with _staged(target, _weights_bytes(run)) as temp:
        torch.save(state, temp)
        loaded = torch.load(temp, weights_only=True, map_location="cpu")
        if loaded.keys() != state.keys() or not all(torch.equal(loaded[k], v)
                                                    for k, v in state.items()):
            raise ExportError(f"'{target}' did not read back as written; check the disk")
    return _report(target, "state_dict", started, run=run)


@_guarded("the Python export")
def export_python(run: LoadedRun, out_path: StrPath, samples: Tensor | None = None, *,
                  tolerance: float = 1e-4, overwrite: bool = False) -> ExportReport:
    """A standalone PyTorch file; its network is run here on the weights and checked."""
    started = time.perf_counter()
    target = _destination(out_path, run, overwrite)
    try:
        source = generate_python(run.project, classes=run.classes, mean=run.mean, std=run.std,
                                 input_shape=run.input_shape)
        code = compile(source, str(target), "exec")
    except (ValueError, SyntaxError) as err:
        raise ExportError(f"cannot generate Python code for this network ({err}); please report "
                          "this network") from None
    module = types.ModuleType("cnnstudio_generated")
    exec(code, module.__dict__)  # our own generated code, which imports only torch
    generated = getattr(module, class_name_for(run.project.name))().eval()
    generated.load_state_dict(module.convert_cnnstudio_state_dict(run.model.state_dict()))
    reference = NormalizedModel.for_run(run)

    def predict(batch: Tensor) -> np.ndarray:  # the file's documented entry point
        return module.predict(generated, batch).numpy()

    batches = _sample_batches(run, samples)
    with _staged(target, len(source.encode("utf-8"))) as temp:
        temp.write_text(source, encoding="utf-8")
        diff = _compare(target, "Python", batches, _references(reference, batches),
                        predict, tolerance)
    return _report(target, "python", started, diff, batches, run=run)


def _report(target: Path, fmt: str, started: float, diff: float | None = None,
            batches: Sequence[Tensor] = (), ort_ms: float | None = None,
            torch_ms: float | None = None, *, run: LoadedRun) -> ExportReport:
    return ExportReport(target, fmt, target.stat().st_size, time.perf_counter() - started, diff,
                        tuple(len(b) for b in batches), ort_ms, torch_ms, input_note(run, fmt))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


@_guarded("reading the project")
def project_run(project: Project) -> LoadedRun:
    """A project as an untrained run, for exporting the graph alone (`cnnstudio export
    --project`): random weights (the caller loads the project's weights file where it has one),
    no normalisation (mean 0, std 1: a project's dataset settings record none) and the classes
    named "0".."N-1"."""
    try:
        model = build_model(project.graph)
    except ModelBuildError as err:
        raise ExportError(f"cannot export the project '{project.name}': {err}") from None
    analysis = analyze(project.graph)
    channels, height, width = analysis.blocks[model.input_id].output_shape
    kind = output_kind(project.graph, model.main_output_id, analysis).kind
    units = int(analysis.blocks[model.main_output_id].output_shape[-1])
    count = 2 if kind == BINARY else units  # one sigmoid unit gives two classes
    return LoadedRun(None, project, model.eval(), [str(i) for i in range(count)],
                     [0.0] * channels, [1.0] * channels, (channels, height, width),
                     str(project.dataset.get("spec") or ""), kind)


@_guarded("the export")
def export_run(run_dir: StrPath, fmt: str, out_path: StrPath, *, overwrite: bool = False,
               benchmark_runs: int = BENCHMARK_RUNS) -> ExportReport:
    """Export a run folder in one of FORMATS (the `cnnstudio export` command); an existing
    file is replaced only with `overwrite` (see _destination for what is refused always)."""
    name = format_name(fmt)
    return export_loaded(load_run(run_dir), name, out_path, overwrite=overwrite,
                         benchmark_runs=benchmark_runs)


def format_name(fmt: str) -> str:
    """One of FORMATS for a format as a user may type it ("State-Dict"); ExportError if none."""
    name = re.sub(r"[\s-]+", "_", str(fmt).strip().lower())
    if name not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return name


@_guarded("the export")
def export_loaded(run: LoadedRun, fmt: str, out_path: StrPath, *, overwrite: bool = False,
                  benchmark_runs: int = BENCHMARK_RUNS) -> ExportReport:
    """Export a loaded run (or project_run) in one of FORMATS; `benchmark_runs` (ONNX only)
    times each runtime that many times at batch 1, 0 for no timing."""
    name = format_name(fmt)
    if name == "onnx":
        return export_onnx(run, out_path, overwrite=overwrite, benchmark_runs=benchmark_runs)
    if name == "torchscript":
        return export_torchscript(run, out_path, overwrite=overwrite)
    if name == "python":
        return export_python(run, out_path, overwrite=overwrite)
    return export_state_dict(run, out_path, overwrite=overwrite)


__all__ = [
    "BENCHMARK_RUNS", "FORMATS", "ExportError", "ExportReport", "LoadedRun", "NormalizedModel",
    "export_loaded", "export_onnx", "export_python", "export_run", "export_state_dict",
    "export_torchscript", "format_name", "load_run", "main_path_model", "project_run",
]
