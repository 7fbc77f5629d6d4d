"""INT8 quantisation of a trained run's ONNX export, with a before/after report.

    report = quantize_run("runs/a", "model.int8.onnx")   # calibrates, writes, measures
    print(report.table())                                # float vs INT8, side by side

The float model is nn.export's own ONNX export (written to a temporary folder, checked against
PyTorch as every export is), pre-processed with onnxruntime's quant_pre_process and quantised
statically with quantize_static: QDQ format, INT8 weights per output channel, UINT8 activations
whose ranges are calibrated (min/max) on a few hundred TRAINING images of the run's dataset, fed
exactly as the exported model takes them (pixels / 255 in [0, 1]: it normalises inside). The
nodes after the last convolution or dense layer (softmax, the sigmoid of a binary output) stay
in float, so the probabilities keep their resolution.

Both models are then measured the same way on the run's VALIDATION split (at most
VALIDATION_CAP images, evenly spread): top-1 accuracy, file size (re-read from the written
file), batch-1 latency in onnxruntime on one CPU thread (median of `latency_runs` runs) and the
largest difference of any class probability. The INT8 file is written through a temporary file
and never replaces an existing one without `overwrite`, by the export's rules.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.core.summary import format_bytes
from cnnstudio.nn.export import DATA_FILE, export_onnx, load_run
from cnnstudio.nn.export_common import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    LoadedRun,
    checked_destination,
    guarded,
    input_note,
    median_ms,
    staged,
)
from cnnstudio.train.data import load_with_settings, sample_grid
from cnnstudio.train.datasets.common import DatasetError
from cnnstudio.train.inspect import validation_images, validation_labels

CALIBRATION_IMAGES = 300
MAX_CALIBRATION_IMAGES = 10_000
VALIDATION_CAP = 2_000
LATENCY_RUNS = 50
BATCH = 64  # images per onnxruntime call for calibration and the accuracy
# the layers whose weights are quantised; the nodes after the last of them stay in float
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
ACCURACY_WARNING = 0.01  # an INT8 model losing more than a point gets a note in the report

StrPath = str | os.PathLike


class QuantizeError(ExportError):
    """A run or network that cannot be quantised; the message says why and what to do."""


@dataclass(frozen=True)
class ModelFigures:
    """What was measured of one model file on the same validation images."""

    size_bytes: int
    accuracy: float  # top-1 on the validation images, 0..1
    latency_ms: float | None  # median at batch 1, one thread; None when not timed


@dataclass
class QuantizeReport:
    path: Path
    float: ModelFigures
    int8: ModelFigures
    max_probability_diff: float  # largest |p INT8 - p float| over every class and image
    agreement: float  # share of validation images given the same top class by both
    calibration_images: int
    validation_images: int
    validation_total: int  # images in the run's validation split
    latency_runs: int
    seconds: float
    input_note: str = ""  # what the file takes and gives, the pixel range above all
    notes: list[str] = field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        return self.int8.size_bytes / self.float.size_bytes

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, float, INT8, change): what the command line and the window show."""
        f, q = self.float, self.int8
        rows = [
            ("Validation accuracy", f"{f.accuracy:.2%}", f"{q.accuracy:.2%}",
             f"{(q.accuracy - f.accuracy) * 100:+.2f} points"),
            ("File size", format_bytes(f.size_bytes), format_bytes(q.size_bytes),
             f"{self.size_ratio:.2f}×"),
        ]
        if f.latency_ms is not None and q.latency_ms is not None:
            rows.append(("Time for one image", f"{f.latency_ms:.3f} ms", f"{q.latency_ms:.3f} ms",
                         f"{q.latency_ms / f.latency_ms:.2f}×"))
        return rows

    def details(self) -> list[str]:
        """The lines under the table: what was measured on what."""
        of_split = (f"all {self.validation_total:,}" if self.validation_images
                    == self.validation_total else f"{self.validation_images:,} (evenly spread) "
                    f"of the {self.validation_total:,}")
        lines = [f"Accuracy on {of_split} validation images; the same top class on "
                 f"{self.agreement:.2%} of them; largest difference of a class probability "
                 f"{self.max_probability_diff:.4f}.",
                 f"Calibrated on {self.calibration_images:,} training images."]
        if self.latency_runs:
            lines.append(f"Time: onnxruntime on one CPU thread, batch 1, median of "
                         f"{self.latency_runs} runs.")
        return lines + self.notes

    def table(self) -> str:
        """The report as text for a terminal: a table, then the details."""
        header = ("", "Float", "INT8", "Change")
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        text = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                          for i, cell in enumerate(row)).rstrip() for row in rows]
        return "\n".join([f"Wrote {self.path} (ONNX, INT8 quantised)", *text, *self.details(),
                          *([self.input_note] if self.input_note else [])])


@guarded("the INT8 quantisation")
def quantize_run(run: StrPath | LoadedRun, out_path: StrPath, *,
                 calibration: int = CALIBRATION_IMAGES, validation_cap: int = VALIDATION_CAP,
                 latency_runs: int = LATENCY_RUNS, per_channel: bool = True,
                 overwrite: bool = False, data: Any = None) -> QuantizeReport:
    """Quantise a run folder (or a loaded run) to an INT8 ONNX file at `out_path` and measure it
    against the float export. `data`: the run's dataset, split as in training, where the
    caller has it loaded already. Raises QuantizeError (an ExportError), or ExportError for
    the run folder and the output file."""
    started = time.perf_counter()
    if not 1 <= calibration <= MAX_CALIBRATION_IMAGES:
        raise QuantizeError(f"the number of calibration images must be from 1 to "
                            f"{MAX_CALIBRATION_IMAGES:,}, got {calibration}")
    if validation_cap < 1:
        raise QuantizeError(f"the validation cap must be at least 1, got {validation_cap}")
    loaded = run if isinstance(run, LoadedRun) else load_run(run)
    target = checked_destination(out_path, loaded, overwrite)
    dataset = data if data is not None else _run_dataset(loaded)
    _check_dataset(loaded, dataset)
    calibration_x, _ = sample_grid(dataset, calibration, seed=0)
    labels = validation_labels(dataset)
    picked = _spread(len(labels), validation_cap)
    val_x, val_y = validation_images(dataset, picked), labels[picked]
    with tempfile.TemporaryDirectory(prefix="cnnstudio-quantize-") as folder:
        work = Path(folder)
        float_path = work / "float.onnx"
        export_onnx(loaded, float_path, benchmark_runs=0)
        quantized = _quantize(float_path, work, calibration_x, per_channel)
        _add_metadata(quantized, len(calibration_x))
        float_p, float_figures = _measure(float_path, val_x, val_y, latency_runs)
        with staged(target, quantized.stat().st_size) as temp:
            temp.write_bytes(quantized.read_bytes())
            int8_p, int8_figures = _measure(temp, val_x, val_y, latency_runs)
    # the size as the file now lies at its place, not as it was meant to be written
    int8_figures = ModelFigures(target.stat().st_size, int8_figures.accuracy,
                                int8_figures.latency_ms)
    report = QuantizeReport(
        target, float_figures, int8_figures,
        float(np.max(np.abs(int8_p - float_p))) if len(val_y) else 0.0,
        float(np.mean(int8_p.argmax(1) == float_p.argmax(1))), len(calibration_x), len(val_y),
        len(labels), max(0, latency_runs), time.perf_counter() - started,
        input_note(loaded, "onnx"))
    if float_figures.accuracy - int8_figures.accuracy > ACCURACY_WARNING:
        report.notes.append(
            f"The INT8 model loses {(float_figures.accuracy - int8_figures.accuracy) * 100:.1f} "
            "points of accuracy: calibrate on more images (--calibration N on the command "
            f"line, up to {MAX_CALIBRATION_IMAGES:,}), or deploy the float ONNX export.")
    return report


# -- the run's data ------------------------------------------------------------------------------


def _run_dataset(run: LoadedRun) -> Any:
    """The run's dataset, split as in training (the spec recorded in data.json)."""
    if run.run_dir is None:
        raise QuantizeError("quantisation needs a trained run folder: it calibrates on the "
                            "run's training images and compares accuracy on its validation "
                            "images; train the project first")
    try:
        recorded = json.loads((run.run_dir / DATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    spec = str(recorded.get("spec") or run.project.dataset.get("spec") or "")
    if not spec:
        raise QuantizeError(f"{run.run_dir / DATA_FILE} does not say which dataset the run was "
                            "trained on, so there are no images to calibrate on; train the "
                            "project again")
    try:
        return load_with_settings(spec, run.input_shape, run.project.dataset)
    except DatasetError as err:
        raise QuantizeError(f"the run's dataset cannot be loaded, and quantisation calibrates "
                            f"on its training images: {err}") from None


def _check_dataset(run: LoadedRun, data: Any) -> None:
    if list(data.classes) != list(run.classes):
        raise QuantizeError(f"the dataset {data.name} now has other classes than when the run "
                            "was trained, so its accuracy cannot be compared; restore the "
                            "dataset as it was, or train the project again")
    for count, split in ((data.num_train, "training"), (data.num_val, "validation")):
        if count == 0:
            raise QuantizeError(
                f"the dataset {data.name} has no {split} images: quantisation calibrates on "
                "training images and compares accuracy on validation images; give the "
                "dataset a validation fraction above 0 and train again")


def _spread(total: int, cap: int) -> np.ndarray:
    """Indices of all images, or of `cap` of them evenly spread over the split."""
    if total <= cap:
        return np.arange(total, dtype=np.int64)
    return np.unique(np.linspace(0, total - 1, cap).round().astype(np.int64))


def _pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images as every export takes them: float32 in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / 255.0


def _batches(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(images), BATCH):
        yield _pixels(images[start:start + BATCH])


# -- quantising ----------------------------------------------------------------------------------


def _quantize(float_path: Path, work: Path, calibration_x: np.ndarray,
              per_channel: bool) -> Path:
    """The INT8 model in `work`: pre-processed, calibrated and quantised by onnxruntime."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = _batches(calibration_x)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    prepared = work / "prepared.onnx"
    try:  # shape inference and graph folding, as onnxruntime advises before quantising
        quant_pre_process(str(float_path), str(prepared))
    except Exception:  # a graph its shape inference cannot follow quantises without it
        prepared = float_path
    out = work / "int8.onnx"
    try:
        quantize_static(
            str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_output_tail(onnx.load(str(prepared))))
    except MemoryError:
        raise QuantizeError("out of memory while calibrating; calibrate on fewer images "
                            "(--calibration) or close other programs") from None
    except Exception as err:
        raise QuantizeError(f"onnxruntime cannot quantise this network "
                            f"({type(err).__name__}: {_first_line(err)}); deploy the float "
                            "ONNX export instead, and please report this network") from None
    quantized = onnx.load(str(out))
    if not any(node.op_type == "DequantizeLinear" for node in quantized.graph.node):
        raise QuantizeError("onnxruntime found nothing to quantise in this network (it has no "
                            "convolution or dense layer it supports); deploy the float ONNX "
                            "export instead")
    return out


def _output_tail(model: Any) -> list[str]:
    """The names of the nodes between the last weighted layer and the outputs (softmax, the
    sigmoid of a binary output): quantising them would round the probabilities to 1/256."""
    producers = {name: node for node in model.graph.node for name in node.output}
    tail: list[str] = []
    seen: set[str] = set()
    pending = [output.name for output in model.graph.output]
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen or node.op_type in WEIGHTED_OPS:
            continue
        seen.add(node.name)
        tail.append(node.name)
        pending.extend(node.input)
    return tail


def _add_metadata(path: Path, calibration_images: int) -> None:
    """Say in the file what it is: the export's metadata plus how it was quantised."""
    import onnx

    model = onnx.load(str(path))
    props = {prop.key: prop.value for prop in model.metadata_props}
    props["quantization"] = (f"INT8 static (onnxruntime QDQ), calibrated on {calibration_images} "
                             "training images")
    onnx.helper.set_model_props(model, props)
    model.doc_string = (model.doc_string + " (INT8 quantised)").strip()
    onnx.save(model, str(path))


# -- measuring -----------------------------------------------------------------------------------


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # comparable and steady figures on a busy machine
    options.inter_op_num_threads = 1
    try:  # from the bytes, so that no handle keeps the file open while it moves
        return ort.InferenceSession(path.read_bytes(), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as err:
        raise QuantizeError(f"onnxruntime cannot load the {path.stem} model "
                            f"({type(err).__name__}: {_first_line(err)}); please report this "
                            "network") from None


def _measure(path: Path, images: np.ndarray, labels: np.ndarray,
             latency_runs: int) -> tuple[np.ndarray, ModelFigures]:
    """The model's class probabilities of the images, and its figures."""
    session = _session(path)

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    probabilities = np.concatenate([run(batch) for batch in _batches(images)]) if len(images) \
        else np.zeros((0, 1), np.float32)
    if not np.isfinite(probabilities).all():
        raise QuantizeError(f"the {path.stem} model gives NaN or infinite probabilities on the "
                            "validation images; deploy the float ONNX export instead")
    accuracy = float(np.mean(probabilities.argmax(1) == labels)) if len(labels) else 0.0
    one = _pixels(images[:1])
    latency = median_ms(lambda: run(one), latency_runs) if len(images) else None
    return probabilities, ModelFigures(path.stat().st_size, accuracy, latency)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


__all__ = ["CALIBRATION_IMAGES", "VALIDATION_CAP", "ModelFigures",
           "QuantizeError", "QuantizeReport", "quantize_run"]
