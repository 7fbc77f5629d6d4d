"""Looking inside a trained network: feature maps, filters, predictions and their mistakes.

The computations of the window's inspection views, kept free of Qt so that they are tested
against plain torch calls:

    x = normalise(images, data.mean, data.std)            # as the engine feeds the network
    maps = activations(model, image, ["conv1"], mean, std)  # {"conv1": 32×26×26 float32}
    probabilities = predictions(model, data.val_x, mean, std, kind=run.output_kind)
    matrix = confusion_matrix(data.val_y, probabilities.argmax(1), data.num_classes)

Images are uint8 C×H×W (one) or N×C×H×W (many), as the datasets hold them. Every function runs
the model in evaluation mode without gradients and leaves the model's mode as it found it.
`kind` says what the model's main output gives (core.outputs: logits, or probabilities when the
network ends in a softmax), so that softmax is applied exactly once.
"""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cnnstudio.core.files import file_kind
from cnnstudio.core.outputs import LOGITS
from cnnstudio.core.project import Project
from cnnstudio.nn.build import GraphModel
from cnnstudio.nn.probabilities import class_probabilities
from cnnstudio.train.datasets.common import (
    DatasetError,
    Shape,
    check_input_shape,
)
from cnnstudio.train.datasets.folder import decode

__all__ = [
    "ImageFileError",
    "InspectionError",
    "RunContents",
    "activations",
    "confusion_matrix",
    "conv_filters",
    "iter_predictions",
    "load_image_file",
    "most_confident_mistakes",
    "normalise",
    "output_probabilities",
    "predictions",
    "read_run",
    "top_k",
    "validation_images",
    "validation_labels",
]

PREDICT_BATCH = 512


class ImageFileError(Exception):
    """An image file that cannot be used; the message names the file and the fix."""


class InspectionError(Exception):
    """A run folder that cannot be inspected; the message names the file and the fix."""


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Evaluation mode and no gradients for the duration; the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _per_channel(values: Sequence[float] | np.ndarray | Tensor, channels: int) -> Tensor:
    flat = torch.as_tensor(np.asarray(values, dtype=np.float32).reshape(-1))
    if flat.numel() == 1:
        flat = flat.expand(channels)
    if flat.numel() != channels:
        raise ValueError(f"{flat.numel()} normalisation values for {channels} channels")
    return flat.reshape(1, channels, 1, 1)


def normalise(images: np.ndarray | Tensor, mean: Sequence[float] | np.ndarray,
              std: Sequence[float] | np.ndarray) -> Tensor:
    """uint8 images (C×H×W or N×C×H×W) as the network sees them: N×C×H×W float32,
    (x / 255 - mean) / std per channel, the engine's own arithmetic."""
    if isinstance(images, np.ndarray):  # read-only arrays (PIL's) are copied, others shared
        x = torch.from_numpy(np.require(images, requirements=["W"]))
    else:
        x = images
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"expected images C×H×W or N×C×H×W, got shape {tuple(x.shape)}")
    channels = x.shape[1]
    x = x.float().div(255.0)
    return (x - _per_channel(mean, channels)) / _per_channel(std, channels)


def activations(model: nn.Module, image: np.ndarray | Tensor, block_ids: Iterable[str],
                mean: Sequence[float] | np.ndarray,
                std: Sequence[float] | np.ndarray) -> dict[str, np.ndarray]:
    """Each block's output for one uint8 image C×H×W: C×H×W maps or vectors, raw values."""
    ids = list(block_ids)
    x = normalise(image, mean, std)
    with _evaluating(model):
        values = model.activations(x, ids)  # type: ignore[operator]
    return {block_id: values[block_id][0].detach().cpu().float().numpy() for block_id in ids}


def conv_filters(model: nn.Module, block_id: str) -> np.ndarray:
    """The learned kernels of a Conv2D block: float32 (filters, C_in / groups, kh, kw)."""
    blocks = getattr(model, "blocks", {})
    if block_id not in blocks:
        raise KeyError(f"no block with id {block_id!r} in this model")
    conv = getattr(blocks[block_id], "conv", None)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(  # noqa: TRY004 (the block is the wrong kind, not the argument)
            f"block {block_id!r} is not a convolution: it has no filters")
    return conv.weight.detach().cpu().float().numpy().copy()


def iter_predictions(model: nn.Module, x: np.ndarray, mean: Sequence[float] | np.ndarray,
                     std: Sequence[float] | np.ndarray, batch: int = PREDICT_BATCH, *,
                     kind: str | None = None) -> Iterator[np.ndarray]:
    """Class probabilities of the main output batch by batch, for progress or to stop early;
    the batches concatenate to predictions(...). `kind`: what the main output gives
    (RunContents.output_kind, or core.outputs.output_kind of the trained graph); by default
    the model's own `output_kind` (a GraphModel knows it), else logits."""
    step = max(1, int(batch))
    if kind is None:
        kind = str(getattr(model, "output_kind", LOGITS))
    with _evaluating(model):
        for start in range(0, len(x), step):
            values = model(normalise(x[start:start + step], mean, std))
            yield class_probabilities(values, kind).cpu().numpy()


def predictions(model: nn.Module, x: np.ndarray, mean: Sequence[float] | np.ndarray,
                std: Sequence[float] | np.ndarray, batch: int = PREDICT_BATCH, *,
                kind: str | None = None) -> np.ndarray:
    """Class probabilities N×K (float32, rows summing to 1) of uint8 images N×C×H×W, `batch`
    images at a time; `kind` as for iter_predictions."""
    parts = list(iter_predictions(model, x, mean, std, batch, kind=kind))
    if parts:
        return np.concatenate(parts)
    blank = np.zeros((1, *x.shape[1:]), np.uint8)
    (classes,) = next(iter_predictions(model, blank, mean, std, kind=kind)).shape[1:]
    return np.zeros((0, classes), np.float32)


def output_probabilities(values: np.ndarray | Sequence[float], kind: str = LOGITS) -> np.ndarray:
    """Class probabilities (float32) of main-output values already at hand (K or N×K, as
    activations() gives them), by the rule predictions() follows."""
    array = np.asarray(values, np.float32)
    rows = torch.from_numpy(np.ascontiguousarray(array.reshape(-1, array.shape[-1])))
    p = class_probabilities(rows, kind).numpy()
    return p.reshape(*array.shape[:-1], p.shape[-1])


def confusion_matrix(labels: np.ndarray | Sequence[int], predicted: np.ndarray | Sequence[int],
                     classes: int) -> np.ndarray:
    """K×K int64 counts: row = true class, column = predicted class."""
    true = np.asarray(labels, dtype=np.int64).reshape(-1)
    guess = np.asarray(predicted, dtype=np.int64).reshape(-1)
    if true.shape != guess.shape:
        raise ValueError(f"{true.size} labels but {guess.size} predictions")
    k = int(classes)
    if true.size and (min(true.min(), guess.min()) < 0 or max(true.max(), guess.max()) >= k):
        raise ValueError(f"a label or prediction is outside the {k} classes")
    return np.bincount(true * k + guess, minlength=k * k).reshape(k, k)


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray | Sequence[int],
                            n: int) -> np.ndarray:
    """Indices of up to n misclassified samples, the most confident (highest probability of the
    wrong prediction) first; equal confidences keep their dataset order."""
    p = np.asarray(probabilities)
    true = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(p) == 0 or n <= 0:
        return np.zeros(0, np.int64)
    guess = p.argmax(axis=1)
    wrong = np.flatnonzero(guess != true)
    confidence = p[wrong, guess[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order[:n]].astype(np.int64)


def top_k(probabilities: np.ndarray | Sequence[float], k: int = 5) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """The k most probable classes of one probability vector: (class indices, probabilities),
    most probable first (ties: the lower class index first). k is capped at the class count."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")[: max(0, min(int(k), p.size))]
    return order.astype(np.int64), p[order]


def load_image_file(path: str | Path, input_shape: Sequence[int]) -> np.ndarray:
    """An image file as the network takes it: uint8 C×H×W, converted and resized exactly as the
    folder datasets do (grey ↔ colour, alpha dropped, bilinear resize, EXIF rotation).

    Raises ImageFileError for a missing, unreadable or unsupported file."""
    try:
        shape: Shape | None = check_input_shape(input_shape)
    except DatasetError as err:
        raise ImageFileError(str(err)) from None
    assert shape is not None
    if shape[0] not in (1, 3, 4):
        raise ImageFileError(f"the network takes {shape[0]}-channel images; only grey (1), "
                             "colour (3) and RGBA (4) networks can read an image file")
    file = Path(path)
    try:
        mode = file.stat().st_mode  # before anything opens it: a pipe would wait for a writer
    except (FileNotFoundError, NotADirectoryError):
        raise ImageFileError(f"cannot open '{file}': the file does not exist") from None
    except OSError as err:
        raise ImageFileError(f"cannot open '{file}': {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise ImageFileError(f"cannot open '{file}': it is a folder; choose an image file")
    if not stat.S_ISREG(mode):
        raise ImageFileError(
            f"cannot open '{file}': it is {file_kind(mode)}, not a regular file; "
            "choose an image file saved on disk (PNG, JPEG or BMP)")
    try:
        array, _ = decode(file, shape)
    except MemoryError:
        raise ImageFileError(f"'{file.name}' is too large to open") from None
    except Exception as err:  # PIL raises many types for a bad file; all mean "unreadable"
        reason = " ".join(str(err).replace(repr(str(file)), "").split()) or type(err).__name__
        raise ImageFileError(
            f"cannot read '{file.name}' as an image ({reason[:120]}); use a PNG, JPEG or BMP "
            "file") from None
    return np.array(array, dtype=np.uint8, order="C")  # a writable copy of PIL's pixels


def validation_labels(data: Any) -> np.ndarray:
    """The validation labels of a LoadedDataset or a StreamingDataset (int64)."""
    if getattr(data, "streaming", False):
        return np.array([label for _, label in data.val_files], np.int64)
    return np.asarray(data.val_y, dtype=np.int64)


def validation_images(data: Any, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Validation images by index, uint8 N×C×H×W (a streamed folder decodes them from disk)."""
    index = np.asarray(indices, dtype=np.int64).reshape(-1)
    if not getattr(data, "streaming", False):
        return np.ascontiguousarray(data.val_x[index])
    images = data.val_set()
    stacked = [images[int(i)][0].numpy() for i in index]
    shape = (0, *data.image_shape)
    return np.stack(stacked) if stacked else np.zeros(shape, np.uint8)


@dataclass(eq=False)
class RunContents:
    """A finished run read back for inspection: the trained model (eval mode, CPU), what its
    main output gives (`output_kind`, for predictions) and, when the dataset can still be
    loaded, its data (`data_problem` says why not otherwise)."""

    run_dir: Path
    project: Project
    model: GraphModel
    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    input_shape: Shape
    data: Any
    data_problem: str = ""
    output_kind: str = LOGITS


def read_run(run_dir: str | Path, *, load_data: bool = True) -> RunContents:
    """project.cnnproj, model.pt (weights_only) and data.json of a run folder, then its dataset
    split as in training. Raises InspectionError when the run itself is unreadable; a dataset
    that is gone only leaves `data` empty, since filters and predictions need no data."""
    from cnnstudio.nn.export import DATA_FILE, ExportError, load_run
    from cnnstudio.train.data import load_with_settings

    folder = Path(run_dir)
    try:
        run = load_run(folder)
    except ExportError as err:
        raise InspectionError(str(err)) from None
    contents = RunContents(folder, run.project, run.model, list(run.classes),
                           np.asarray(run.mean, np.float32), np.asarray(run.std, np.float32),
                           run.input_shape, None, output_kind=run.output_kind)
    if not load_data:
        return contents
    try:
        recorded = json.loads((folder / DATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    settings = run.project.dataset
    spec = str(recorded.get("spec") or settings.get("spec") or "mnist-sample")
    try:
        data = load_with_settings(spec, run.input_shape, settings)
    except DatasetError as err:
        contents.data_problem = f"the run's dataset cannot be loaded: {err}"
        return contents
    if list(data.classes) != contents.classes:
        contents.data_problem = (f"the dataset {spec} now has other classes than when the run "
                                 "was trained; only the filters and predictions are shown")
        return contents
    contents.data = data
    return contents
