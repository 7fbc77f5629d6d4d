"""Export a trained run: ONNX, a PyTorch ExportedProgram (.pt2), TorchScript, a standalone
Python file or the plain state dict.

Every exported model (the state dict aside) takes images as a person has them, pixel values in
[0, 1] of shape (N, C, H, W), and normalises them itself, so a user never has to know the
training mean and standard deviation. Each export is checked before it is kept (see
nn/export_common.py); the ONNX export lives in nn/onnx_export.py. Every failure becomes an
ExportError whose message names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import time
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cnnstudio.core.adapt import class_mismatches
from cnnstudio.core.analysis import analyze
from cnnstudio.core.outputs import BINARY, output_kind
from cnnstudio.core.project import Project, ProjectError, load_project
from cnnstudio.nn.build import GraphModel, ModelBuildError, build_model
from cnnstudio.nn.codegen import class_name_for, generate_python
from cnnstudio.nn.export_common import (  # re-exported: callers import them from here
    BENCHMARK_RUNS,
    DATA_FILE,
    INPUT_NAME,
    MODEL_FILE,
    OUTPUT_NAME,
    PROJECT_FILE,
    ExportError,
    ExportReport,
    LoadedRun,
    NormalizedModel,
    StrPath,
    _compare,
    _deployment_export,
    _first_line,
    _metadata,
    _quiet_torch,
    _references,
    _report,
    _sample_batches,
    _shape,
    _torch_outputs,
    _weights_bytes,
    checked_destination,
    guarded,
    input_note,
    main_path_model,
    staged,
)
from cnnstudio.nn.onnx_export import export_onnx
from cnnstudio.nn.torch_files import holds_python_objects, torch_file_problem

FORMATS = ("onnx", "pt2", "torchscript", "python", "state_dict")
LISTED_KEYS = 4


# -- reading a run folder ------------------------------------------------------------------------


@guarded("reading the run folder")
def load_run(run_dir: StrPath) -> LoadedRun:
    """Read project.cnnproj, data.json and model.pt of a run folder; raises ExportError."""
    folder = Path(run_dir)
    if not folder.is_dir():
        why = "it is a file" if folder.exists() else "it does not exist"
        raise ExportError(f"cannot read the run '{folder}': {why}; give the folder of a training "
                          f"run (it holds {PROJECT_FILE}, {DATA_FILE} and {MODEL_FILE})")
    try:
        project = load_project(folder / PROJECT_FILE)
    except ProjectError as err:
        raise ExportError(f"{err}\nThe run folder '{folder}' is incomplete or damaged: "
                          "choose another run, or train the project again.") from None
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


# writes the deployed model, with its extra files, to the given path and loads it back
SaveAndLoad = Callable[[NormalizedModel, Tensor, Path, dict[str, str]], Callable[[Tensor], Any]]


def _export_torch_program(run: LoadedRun, out_path: StrPath, samples: Tensor | None,
                          tolerance: float, overwrite: bool, *, fmt: str, label: str,
                          as_what: str, save_and_load: SaveAndLoad,
                          quiet: bool = False) -> ExportReport:
    """The steps TorchScript and ExportedProgram share: the deployed model is saved with the
    run's metadata as an extra file, loaded back and checked against the whole model."""
    job = _deployment_export(run, out_path, samples, overwrite)
    target, batches = job.target, job.batches
    with staged(target, _weights_bytes(run)) as temp, \
            (_quiet_torch() if quiet else contextlib.nullcontext()):
        try:
            extra = {"cnnstudio.json": json.dumps(_metadata(run), ensure_ascii=False)}
            loaded = save_and_load(job.deployed, batches[0][:2], temp, extra)
        except OSError:
            raise  # a write failure (a full disk): staged says so
        except Exception as err:
            raise ExportError(f"PyTorch cannot save this network as {as_what} "
                              f"({type(err).__name__}: {_first_line(err)}); export it as ONNX "
                              "or Python instead") from None
        diff = _compare(target, label, batches, _references(job.reference, batches),
                        lambda batch: _torch_outputs(loaded, batch), tolerance)
    return _report(target, fmt, job.started, diff, batches, run=run, tolerance=tolerance)


def _torchscript_round_trip(deployed: NormalizedModel, example: Tensor, temp: Path,
                            extra: dict[str, str]) -> Any:
    with torch.no_grad():
        traced = torch.jit.trace(deployed, (example,), check_trace=False)
    torch.jit.save(traced, str(temp), _extra_files=extra)
    return torch.jit.load(str(temp), map_location="cpu")


def _pt2_round_trip(deployed: NormalizedModel, example: Tensor, temp: Path,
                    extra: dict[str, str]) -> Any:
    program = torch.export.export(deployed, (example,),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    # through buffers: torch.export wants a file name ending in .pt2, not a temporary one
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=extra)
    temp.write_bytes(buffer.getvalue())
    return torch.export.load(io.BytesIO(temp.read_bytes())).module()


@guarded("the TorchScript export")
def export_torchscript(run: LoadedRun, out_path: StrPath, samples: Tensor | None = None, *,
                       tolerance: float = 1e-5, overwrite: bool = False) -> ExportReport:
    """A traced TorchScript module (torch.jit.load), with the run's metadata as an extra file.

    Only the blocks of the main output are traced: tracing keeps every submodule of the model it
    records, so auxiliary heads would otherwise travel in the file, unused (GoogLeNet's 6.4 M)."""
    return _export_torch_program(run, out_path, samples, tolerance, overwrite,
                                 fmt="torchscript", label="TorchScript", as_what="TorchScript",
                                 save_and_load=_torchscript_round_trip, quiet=True)


@guarded("the ExportedProgram export")
def export_pt2(run: LoadedRun, out_path: StrPath, samples: Tensor | None = None, *,
               tolerance: float = 1e-5, overwrite: bool = False) -> ExportReport:
    """A torch.export ExportedProgram (.pt2, torch.export.load), any batch size, with the run's
    metadata as an extra file; the main output's blocks only, as for TorchScript."""
    return _export_torch_program(run, out_path, samples, tolerance, overwrite,
                                 fmt="pt2", label="ExportedProgram",
                                 as_what="an ExportedProgram", save_and_load=_pt2_round_trip)


@guarded("the state dict export")
def export_state_dict(run: LoadedRun, out_path: StrPath, *,
                      overwrite: bool = False) -> ExportReport:
    """The GraphModel state dict alone (keys blocks.<id>...), loadable with weights_only=True."""
    started = time.perf_counter()
    target = checked_destination(out_path, run, overwrite)
    state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    with staged(target, _weights_bytes(run)) as temp:
        torch.save(state, temp)
        loaded = torch.load(temp, weights_only=True, map_location="cpu")
        if loaded.keys() != state.keys() or not all(torch.equal(loaded[k], v)
                                                    for k, v in state.items()):
            raise ExportError(f"'{target}' did not read back as written; check the disk")
    return _report(target, "state_dict", started, run=run)


@guarded("the Python export")
def export_python(run: LoadedRun, out_path: StrPath, samples: Tensor | None = None, *,
                  tolerance: float = 1e-4, overwrite: bool = False) -> ExportReport:
    """A standalone PyTorch file; its network is run here on the weights and checked."""
    started = time.perf_counter()
    target = checked_destination(out_path, run, overwrite)
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
    with staged(target, len(source.encode("utf-8"))) as temp:
        temp.write_text(source, encoding="utf-8")
        diff = _compare(target, "Python", batches, _references(reference, batches),
                        predict, tolerance)
    return _report(target, "python", started, diff, batches, run=run, tolerance=tolerance)


@guarded("reading the project")
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


@guarded("the export")
def export_run(run_dir: StrPath, fmt: str, out_path: StrPath, *, overwrite: bool = False,
               benchmark_runs: int = BENCHMARK_RUNS) -> ExportReport:
    """Export a run folder in one of FORMATS (the `cnnstudio export` command); an existing
    file is replaced only with `overwrite` (see checked_destination for what is refused always)."""
    name = format_name(fmt)
    return export_loaded(load_run(run_dir), name, out_path, overwrite=overwrite,
                         benchmark_runs=benchmark_runs)


def format_name(fmt: str) -> str:
    """One of FORMATS for a format as a user may type it ("State-Dict"); ExportError if none."""
    name = re.sub(r"[\s-]+", "_", str(fmt).strip().lower())
    if name not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return name


@guarded("the export")
def export_loaded(run: LoadedRun, fmt: str, out_path: StrPath, *, overwrite: bool = False,
                  benchmark_runs: int = BENCHMARK_RUNS) -> ExportReport:
    """Export a loaded run (or project_run) in one of FORMATS; `benchmark_runs` (ONNX only)
    times each runtime that many times at batch 1, 0 for no timing."""
    name = format_name(fmt)
    if name == "onnx":
        return export_onnx(run, out_path, overwrite=overwrite, benchmark_runs=benchmark_runs)
    if name == "pt2":
        return export_pt2(run, out_path, overwrite=overwrite)
    if name == "torchscript":
        return export_torchscript(run, out_path, overwrite=overwrite)
    if name == "python":
        return export_python(run, out_path, overwrite=overwrite)
    return export_state_dict(run, out_path, overwrite=overwrite)


__all__ = [
    "BENCHMARK_RUNS", "DATA_FILE", "FORMATS", "INPUT_NAME", "MODEL_FILE", "OUTPUT_NAME",
    "PROJECT_FILE", "ExportError", "ExportReport", "LoadedRun", "NormalizedModel", "StrPath",
    "input_note",
    "export_loaded", "export_onnx", "export_pt2", "export_python", "export_run",
    "export_state_dict", "export_torchscript", "format_name", "load_run", "main_path_model",
    "project_run",
]