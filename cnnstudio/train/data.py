"""The datasets of the training engine: spec strings in, uint8 image arrays out.

    loaded = load_dataset("folder:~/pets", (3, 64, 64), validation_fraction=0.2, split_seed=0)
    loaded.train_x  # uint8 N×3×64×64; loaded.mean / loaded.std per channel, training split only

Spec forms: mnist-sample, mnist:DIR, fashion-mnist:DIR, cifar10:DIR, cifar100:DIR,
idx:IMAGES,LABELS, folder:DIR, npz:FILE. Images are kept as uint8 (a quarter of float32's
memory); the engine scales and normalises each batch. Every problem with the data becomes a
DatasetError whose message names the file, the problem and the fix; what the loader did on the
user's behalf (conversions, resizes, skipped files) is listed in `notes`. No file or array may
decode to more than datasets_common.MAX_DECODED_BYTES (4 GiB), checked from its header before
anything is read; a MemoryError below that limit becomes a DatasetError too.

The readers live in datasets_idx (IDX and the bundled sample), datasets_npz, datasets_folder
(with the streaming fallback) and datasets_torchvision; the shared array steps in
datasets_common.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnstudio.train.datasets_common import (
    DatasetError,
    LoadedDataset,
    Shape,
    check_input_shape,
)
from cnnstudio.train.datasets_folder import (
    FolderImages,
    Progress,
    StreamingDataset,
    load_folder,
)
from cnnstudio.train.datasets_idx import load_idx, load_mnist_sample
from cnnstudio.train.datasets_npz import load_npz

__all__ = [
    "FORMS",
    "AnyDataset",
    "DatasetError",
    "DatasetSpec",
    "FolderImages",
    "LoadedDataset",
    "StreamingDataset",
    "class_counts",
    "default_memory_limit",
    "describe",
    "load_dataset",
    "parse_spec",
    "sample_grid",
]

SAMPLE = "mnist-sample"
FORMS = {
    SAMPLE: "mnist-sample (the MNIST sample that ships with CNN Studio)",
    "mnist": "mnist:DIR",
    "fashion-mnist": "fashion-mnist:DIR",
    "cifar10": "cifar10:DIR",
    "cifar100": "cifar100:DIR",
    "idx": "idx:IMAGES,LABELS (two IDX files)",
    "folder": "folder:DIR (one subfolder per class)",
    "npz": "npz:FILE (arrays x and y)",
}
FALLBACK_MEMORY = 4 * 2**30

AnyDataset = LoadedDataset | StreamingDataset


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed spec: the kind and its paths (two for idx, none for the sample, else one)."""

    kind: str
    paths: tuple[Path, ...] = ()

    def __str__(self) -> str:
        return self.kind if not self.paths else f"{self.kind}:{','.join(map(str, self.paths))}"


def _accepted() -> str:
    return "the accepted forms are " + ", ".join(FORMS.values())


def parse_spec(text: str | DatasetSpec) -> DatasetSpec:
    """The DatasetSpec of 'kind:argument' (kind in any case; '~' expanded); DatasetError if bad.

    Paths are only parsed here; whether they exist is the loader's business.
    """
    if isinstance(text, DatasetSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"no dataset given; {_accepted()}")
    stripped = text.strip()
    if stripped.lower() == SAMPLE:
        return DatasetSpec(SAMPLE)
    kind, colon, argument = stripped.partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in FORMS or kind == SAMPLE:
        shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
        raise DatasetError(f"unknown dataset {shown!r}; {_accepted()}")
    argument = argument.strip()
    if not argument:
        needs = {"idx": "IMAGES,LABELS", "npz": "FILE"}.get(kind, "DIR")
        raise DatasetError(f"{kind!r} needs {needs} after the colon: {FORMS[kind]}")
    if kind != "idx":
        return DatasetSpec(kind, (Path(argument).expanduser(),))
    parts = [part.strip() for part in argument.split(",")]
    if len(parts) != 2 or not all(parts):
        raise DatasetError(
            f"'idx' needs two files separated by one comma, images first: "
            f"idx:IMAGES,LABELS (got {argument!r})"
        )
    return DatasetSpec(kind, tuple(Path(part).expanduser() for part in parts))


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


def _load(parsed: DatasetSpec, shape: Shape | None, fraction: float, seed: int,
          download: bool, memory_limit_bytes: int | None,
          progress: Progress | None) -> AnyDataset:
    text, kind, paths = str(parsed), parsed.kind, parsed.paths
    if kind == SAMPLE:
        return load_mnist_sample(text, shape)
    if kind == "idx":
        return load_idx(text, paths[0], paths[1], shape, fraction, seed)
    if kind == "npz":
        return load_npz(text, paths[0], shape, fraction, seed)
    if kind == "folder":
        limit = default_memory_limit() if memory_limit_bytes is None else int(memory_limit_bytes)
        return load_folder(text, paths[0], shape, fraction, seed, limit, progress)
    from cnnstudio.train import datasets_torchvision as tv

    loader = tv.load_mnist_like if kind in ("mnist", "fashion-mnist") else tv.load_cifar
    return loader(kind, text, paths[0], shape, bool(download))


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
