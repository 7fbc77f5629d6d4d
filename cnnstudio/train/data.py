"""The datasets of the training engine: spec strings in, uint8 image arrays out.

    loaded = load_dataset("folder:~/pets", (3, 64, 64), validation_fraction=0.2, split_seed=0)
    loaded.train_x  # uint8 N×3×64×64; loaded.mean / loaded.std per channel, training split only

The spec forms are declared in cnnstudio.core.sources (mnist-sample, mnist:DIR, ...,
folder:DIR, npz:FILE) and parsed there; `LOADERS` holds one loader per source id. Images are
kept as uint8 (a quarter of float32's memory); the engine scales and normalises each batch.
Every problem with the data becomes a DatasetError whose message names the file, the problem
and the fix; what the loader did on the user's behalf (conversions, resizes, skipped files)
is listed in `notes`. No file or array may decode to more than
datasets.common.MAX_DECODED_BYTES (4 GiB), checked from its header before anything is read;
a MemoryError below that limit becomes a DatasetError too.

The readers live in the datasets subpackage: idx (IDX and the bundled sample), npz, folder
(with the streaming fallback) and torchvision; the shared array steps in datasets.common.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.core.sources import SAMPLE_SOURCE, SourceSpec, SpecError, format_spec
from cnnstudio.core.sources import parse_spec as parse_source
from cnnstudio.train.datasets.common import (
    DatasetError,
    LoadedDataset,
    Shape,
    check_input_shape,
)
from cnnstudio.train.datasets.folder import (
    FolderImages,
    Progress,
    StreamingDataset,
    load_folder,
)
from cnnstudio.train.datasets.idx import load_idx, load_mnist_sample
from cnnstudio.train.datasets.npz import load_npz

__all__ = [
    "LOADERS",
    "AnyDataset",
    "DatasetError",
    "DatasetSpec",
    "FolderImages",
    "LoadRequest",
    "LoadedDataset",
    "StreamingDataset",
    "class_counts",
    "default_memory_limit",
    "describe",
    "load_dataset",
    "parse_spec",
    "sample_grid",
]

FALLBACK_MEMORY = 4 * 2**30

AnyDataset = LoadedDataset | StreamingDataset


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed spec as the loaders take it: the source id and its paths, '~' expanded."""

    kind: str
    paths: tuple[Path, ...] = ()

    def __str__(self) -> str:
        return format_spec(SourceSpec(self.kind, tuple(str(p) for p in self.paths)))


def parse_spec(text: str | DatasetSpec) -> DatasetSpec:
    """The DatasetSpec of 'kind:argument' (read by core.sources.parse_spec; '~' expanded);
    DatasetError listing the accepted forms if bad.

    Paths are only parsed here; whether they exist is the loader's business.
    """
    if isinstance(text, DatasetSpec):
        return text
    try:
        parsed = parse_source(text)
    except SpecError as err:
        raise DatasetError(str(err)) from None
    return DatasetSpec(parsed.kind, tuple(Path(p).expanduser() for p in parsed.paths))


def default_memory_limit() -> int:
    """A quarter of the machine's RAM (4 GiB where the system does not say)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY
    return pages * page_size // 4 if pages > 0 and page_size > 0 else FALLBACK_MEMORY


def load_dataset(
    spec: str | DatasetSpec,
    input_shape: tuple[int, int, int] | None = None,
    *,
    validation_fraction: float = 0.2,
    split_seed: int = 0,
    download: bool = False,
    memory_limit_bytes: int | None = None,
    progress: Progress | None = None,
) -> AnyDataset:
    """Load, convert to the Input block's (C, H, W) when given, and split a dataset.

    idx, folder and npz data are split at random with `validation_fraction` and `split_seed`;
    the sample and the torchvision datasets have fixed splits (their official test set
    validates). A folder whose decoded images exceed `memory_limit_bytes` (default: a quarter
    of the RAM) comes back as a StreamingDataset. `download` lets torchvision fetch MNIST,
    Fashion-MNIST or CIFAR. `progress(done, total)` is called while folder images are decoded.
    """
    parsed = parse_spec(spec)
    shape: Shape | None = check_input_shape(input_shape)
    try:
        fraction, seed = float(validation_fraction), int(split_seed)
    except (TypeError, ValueError):
        raise DatasetError(
            f"the validation fraction and split seed must be numbers, got "
            f"{validation_fraction!r} and {split_seed!r}"
        ) from None
    try:
        return _load(parsed, shape, fraction, seed, download, memory_limit_bytes, progress)
    except MemoryError:  # the readers refuse files over MAX_DECODED_BYTES; this is the rest
        raise DatasetError(
            f"not enough memory to load {parsed}: free some memory (close other programs), use "
            "a subset of the images, or a folder of image files (folder:DIR), which is read "
            "from disk while training"
        ) from None


@dataclass(frozen=True)
class LoadRequest:
    """What a loader is asked for. text: the spec as messages show it; paths: the spec's."""

    text: str
    kind: str
    paths: tuple[Path, ...]
    shape: Shape | None
    fraction: float
    seed: int
    download: bool
    memory_limit_bytes: int | None
    progress: Progress | None


def _load_sample(r: LoadRequest) -> AnyDataset:
    return load_mnist_sample(r.text, r.shape)


def _load_idx(r: LoadRequest) -> AnyDataset:
    return load_idx(r.text, r.paths[0], r.paths[1], r.shape, r.fraction, r.seed)


def _load_npz(r: LoadRequest) -> AnyDataset:
    return load_npz(r.text, r.paths[0], r.shape, r.fraction, r.seed)


def _load_folder(r: LoadRequest) -> AnyDataset:
    limit = default_memory_limit() if r.memory_limit_bytes is None else int(r.memory_limit_bytes)
    return load_folder(r.text, r.paths[0], r.shape, r.fraction, r.seed, limit, r.progress)


def _load_mnist_like(r: LoadRequest) -> AnyDataset:
    from cnnstudio.train.datasets import torchvision as tv  # torchvision costs seconds

    return tv.load_mnist_like(r.kind, r.text, r.paths[0], r.shape, r.download)


def _load_cifar(r: LoadRequest) -> AnyDataset:
    from cnnstudio.train.datasets import torchvision as tv

    return tv.load_cifar(r.kind, r.text, r.paths[0], r.shape, r.download)


# one loader per id of core.sources.SOURCES (tests/train/test_data.py checks it is complete)
LOADERS: dict[str, Callable[[LoadRequest], AnyDataset]] = {
    SAMPLE_SOURCE: _load_sample,
    "mnist": _load_mnist_like,
    "fashion-mnist": _load_mnist_like,
    "cifar10": _load_cifar,
    "cifar100": _load_cifar,
    "folder": _load_folder,
    "idx": _load_idx,
    "npz": _load_npz,
}


def _load(parsed: DatasetSpec, shape: Shape | None, fraction: float, seed: int,
          download: bool, memory_limit_bytes: int | None,
          progress: Progress | None) -> AnyDataset:
    request = LoadRequest(str(parsed), parsed.kind, parsed.paths, shape, fraction, seed,
                          bool(download), memory_limit_bytes, progress)
    return LOADERS[parsed.kind](request)


def load_with_settings(spec: str | DatasetSpec, input_shape: tuple[int, int, int] | None,
                       settings: Mapping[str, Any], *, download: bool = False) -> AnyDataset:
    """load_dataset with the split of a project's dataset settings (its `dataset` group)."""
    return load_dataset(spec, input_shape,
                        validation_fraction=settings.get("validation_fraction", 0.2),
                        split_seed=settings.get("split_seed", 0), download=download)


def _train_labels(loaded: AnyDataset) -> np.ndarray:
    if isinstance(loaded, StreamingDataset):
        return np.array([label for _, label in loaded.train_files], np.int64)
    return loaded.train_y


def _shown_classes(classes: list[str]) -> str:
    if len(classes) <= 5:
        return ", ".join(classes)
    return ", ".join(classes[:3]) + ", …, " + classes[-1]


def describe(loaded: AnyDataset) -> str:
    """One line: name, split sizes, image shape, classes (and skipped or streamed, if so)."""
    c, h, w = loaded.image_shape
    text = (
        f"{loaded.name}: {loaded.num_train:,} training + {loaded.num_val:,} validation images "
        f"of {c}×{h}×{w}, {loaded.num_classes} classes ({_shown_classes(loaded.classes)})"
    )
    if loaded.skipped:
        text += f", {loaded.skipped:,} unreadable skipped"
    if loaded.streaming:
        text += ", read from disk while training"
    return text


def class_counts(loaded: AnyDataset) -> dict[str, int]:
    """Training images per class, in class order (classes without images count 0)."""
    counts = np.bincount(_train_labels(loaded), minlength=loaded.num_classes)
    return {name: int(n) for name, n in zip(loaded.classes, counts)}


def sample_grid(loaded: AnyDataset, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to n training images (uint8 n×C×H×W) and labels for a preview grid.

    Classes take turns (class 0, 1, …, K-1, then again), each in a seeded random order, so a
    grid with K columns shows one class per column and rare classes still appear.
    """
    labels = _train_labels(loaded)
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(labels == k)) for k in range(loaded.num_classes)]
    picked: list[int] = []
    depth = 0
    while len(picked) < n and depth < max((len(p) for p in pools), default=0):
        picked += [int(p[depth]) for p in pools if depth < len(p)][: n - len(picked)]
        depth += 1
    index = np.array(picked, np.int64)
    if isinstance(loaded, StreamingDataset):
        images = loaded.train_set()
        shape = (0, *loaded.image_shape)
        stacked = [images[i][0].numpy() for i in picked]
        return (np.stack(stacked) if stacked else np.empty(shape, np.uint8)), labels[index]
    return np.ascontiguousarray(loaded.train_x[index]), labels[index]
